#!/usr/bin/env bash
# The `demo` stage of `make test`: the whole platform as a user meets it, on
# the local platform from scratch.
#   1. make demo-down, then make demo            (must exit 0)
#   2. make demo again                           (must exit 0 with changed=0 and failed=0 on every host)
#   3. site.yml --check --diff, the dry run the docs advertise (the same)
#   4. the researcher's journeys (journeys.py)   (every journey must pass)
#   5. no secret of the local platform in any log of steps 1-4
#   6. make demo-down                            (always)
# Each step's output is kept in .cache/test-logs/demo-<step>.log; a failure
# prints the failing step (and, for the journeys, the failing journey step).
set -uo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$root" || exit 1
logs=$root/.cache/test-logs
mkdir -p "$logs"
rc=0

step() { printf '\n---- demo: %s\n' "$*"; }
fail() { printf 'DEMO FAILED: %s\n' "$*"; rc=1; }

# The browser of the journeys: Debian's Chromium and ChromeDriver on this
# machine (as a person's browser would be), driven by Selenium from the venv.
ensure_browser() {
  command -v chromium >/dev/null && command -v chromedriver >/dev/null && return 0
  step "installing chromium and chromium-driver (the journeys' browser)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
}

# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
  step "make demo-down"
  make -s demo-down >"$logs/demo-down.log" 2>&1 || fail "make demo-down (see $logs/demo-down.log)"
  exit "$rc"
}
trap cleanup EXIT

step "make demo-down (start from scratch)"
make -s demo-down >"$logs/demo-down-before.log" 2>&1 || { fail "make demo-down before the run (see $logs/demo-down-before.log)"; exit 1; }

step "make demo (first run)"
start=$(date +%s)
make demo >"$logs/demo-first.log" 2>&1
first=$?
grep -E '^[A-Za-z0-9_.-]+ +: ok=' "$logs/demo-first.log"
if [ "$first" -ne 0 ]; then
  fail "the first make demo failed (exit $first) after $(( $(date +%s) - start )) s (see $logs/demo-first.log)"
  grep -E -A3 '^fatal: |^failed: ' "$logs/demo-first.log" | cut -c1-400 | tail -30
  exit 1
fi
echo "first make demo: $(( $(date +%s) - start )) s"

# no_op LOG WHAT EXIT: every recap line of every playbook in LOG says
# changed=0 and failed=0, and the run exited 0.
no_op() {
  local recaps changed
  recaps=$(grep -E '^[A-Za-z0-9_.-]+ +: ok=' "$1")
  printf '%s\n' "$recaps"
  changed=$(echo "$recaps" | grep -vE 'changed=0 +unreachable=0 +failed=0' || true)
  if [ "$3" -ne 0 ] || [ -z "$recaps" ] || [ -n "$changed" ]; then
    fail "$2 was not a no-op (exit $3); hosts: $(echo "$changed" | awk '{print $1}' | sort -u | tr '\n' ' ')"
    grep -E -B2 '^changed: |^fatal: |^failed: ' "$1" | cut -c1-300 | tail -40
  fi
}
step "make demo (second run: must change nothing)"
start=$(date +%s)
make demo >"$logs/demo-second.log" 2>&1
second=$?
echo "second make demo: $(( $(date +%s) - start )) s, exit $second"
no_op "$logs/demo-second.log" "the second make demo" "$second"
step "site.yml --check --diff (the dry run: must pass and change nothing)"
start=$(date +%s)
PATH=$root/.venv/bin:$PATH ANSIBLE_COLLECTIONS_PATH=$root/.cache/collections ANSIBLE_CONFIG=$root/ansible.cfg \
  ansible-playbook playbooks/site.yml --check --diff >"$logs/demo-check.log" 2>&1
check=$?
echo "site.yml --check --diff: $(( $(date +%s) - start )) s, exit $check"
no_op "$logs/demo-check.log" "site.yml --check --diff" "$check"
step "the researcher's journeys"
if ensure_browser; then
  python tests/integration/demo/journeys.py 2>&1 | tee "$logs/demo-journeys.log"
  [ "${PIPESTATUS[0]}" -eq 0 ] || { fail "journeys:"; grep -E '^JOURNEY FAILED' "$logs/demo-journeys.log"; }
else
  fail "could not install the browser for the journeys"
fi
step "no secret of the local platform in the stage's logs"
# The local platform's secrets are random files beside the inventory (.cache).
secrets=0
for f in "$root"/.cache/local-secrets/* "$root"/.cache/local-nfs-backup-password; do
  [ -f "$f" ] || continue
  value=$(awk '{print $1; exit}' "$f")
  [ "${#value}" -ge 8 ] || continue
  secrets=$((secrets + 1))
  if grep -lF -- "$value" "$logs"/demo-*.log; then
    fail "the secret in $f appears in the logs above"
  fi
done
echo "$secrets secrets looked for in $(find "$logs" -name 'demo-*.log' | wc -l) logs"
[ "$secrets" -gt 0 ] || fail "no secret of the local platform found to look for (.cache/local-secrets)"
exit $rc

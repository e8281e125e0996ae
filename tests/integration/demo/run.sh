#!/usr/bin/env bash
# The `demo` stage of `make test`: the whole platform as a user meets it, on
# the local platform from scratch.
#   1. make demo-down, then make demo            (must exit 0)
#   2. make demo again                           (must exit 0 with changed=0 and failed=0 on every host)
#   3. the researcher's journeys (journeys.py)   (every journey must pass)
#   4. make demo-down                            (always)
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

step "make demo (second run: must change nothing)"
start=$(date +%s)
make demo >"$logs/demo-second.log" 2>&1
second=$?
echo "second make demo: $(( $(date +%s) - start )) s, exit $second"
# Every recap line of every playbook: changed=0 and failed=0.
recaps=$(grep -E '^[A-Za-z0-9_.-]+ +: ok=' "$logs/demo-second.log")
printf '%s\n' "$recaps"
changed=$(echo "$recaps" | grep -vE 'changed=0 +unreachable=0 +failed=0' || true)
if [ "$second" -ne 0 ] || [ -z "$recaps" ] || [ -n "$changed" ]; then
  fail "the second make demo was not a no-op (exit $second); hosts: $(echo "$changed" | awk '{print $1}' | sort -u | tr '\n' ' ')"
  grep -E -B2 '^changed: |^fatal: |^failed: ' "$logs/demo-second.log" | cut -c1-300 | tail -40
fi

step "the researcher's journeys"
if ensure_browser; then
  python tests/integration/demo/journeys.py 2>&1 | tee "$logs/demo-journeys.log"
  [ "${PIPESTATUS[0]}" -eq 0 ] || { fail "journeys:"; grep -E '^JOURNEY FAILED' "$logs/demo-journeys.log"; }
else
  fail "could not install the browser for the journeys"
fi
exit $rc

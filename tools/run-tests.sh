#!/usr/bin/env bash
# `make test`: every stage the project tests, a per-stage timing summary at
# the end, and a non-zero exit if any stage failed. Stages run in order and
# all of them run even when one fails.
#   FEDGPU_STAGES   stages to run (default: all of them, in this order)
#   arguments       Molecule scenario names (default: every scenario)
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
all_stages="lint changelog unit sanity demo openstack molecule"
stages=${FEDGPU_STAGES:-$all_stages}
scenarios=("$@")
if [ ${#scenarios[@]} -eq 0 ]; then
  for f in extensions/molecule/*/molecule.yml; do
    d=${f%/molecule.yml}; scenarios+=("${d##*/}")
  done
fi

results=()
failed_logs=()
failed=0
passed=0
# Each stage's output also goes to .cache/test-logs/<stage>.log; the lines
# that say why a stage failed are printed again after the summary, so that
# the end of the output (all a CI front end may show) carries the reason.
logdir=$root/.cache/test-logs
mkdir -p "$logdir"
run_stage() { # run_stage NAME COMMAND...
  local name=$1 start rc log
  shift
  log=$logdir/${name//[^A-Za-z0-9_.-]/_}.log
  printf '\n==== %s: %s\n' "$name" "$*"
  start=$(date +%s)
  "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  local secs=$(( $(date +%s) - start ))
  if [ "$rc" -eq 0 ]; then passed=$((passed + 1)); results+=("$(printf '%-34s %-6s %5ss' "$name" ok "$secs")")
  else failed=$((failed + 1)); failed_logs+=("$name=$log"); results+=("$(printf '%-34s %-6s %5ss' "$name" FAILED "$secs")"); fi
  return 0
}

t0=$(date +%s)
for stage in $stages; do
  case $stage in
    lint)
      # ansible-lint installs the collection under $HOME/.ansible: a HOME of
      # this tree's own keeps another checkout's copy out of the way.
      mkdir -p .cache/lint-home
      run_stage lint env HOME="$root/.cache/lint-home" ansible-lint --offline --profile production --nocolor ;;
    changelog)
      run_stage changelog antsibull-changelog lint ;;
    unit)
      run_stage unit python -m pytest -q tests/unit ;;
    sanity)
      run_stage sanity tools/sanity.sh ;;
    demo)
      # The whole platform as a user meets it: make demo twice (the second
      # must change nothing), the researcher's journeys, make demo-down
      # (tests/integration/demo).
      run_stage demo bash tests/integration/demo/run.sh ;;
    openstack)
      # Real Keystone, Nova, Placement, Neutron and Glance for two sites on
      # loopback (tests/integration/openstack).
      run_stage openstack bash tests/integration/openstack/run.sh ;;
    molecule)
      for s in "${scenarios[@]}"; do
        run_stage "molecule:$s" molecule test -s "$s"
      done ;;
    *)
      echo "unknown stage $stage" >&2; failed=$((failed + 1)) ;;
  esac
done

printf '\n==== timing summary (wall seconds)\n'
printf '%s\n' "${results[@]}"
printf '%-34s %-6s %5ss\n' total "" "$(( $(date +%s) - t0 ))"
for entry in "${failed_logs[@]}"; do
  # Why it failed: Ansible's fatal/failed task lines, Molecule and pytest
  # errors, each cut to 400 characters; the whole log is named.
  printf '\n==== why %s failed (full log: %s)\n' "${entry%%=*}" "${entry#*=}"
  grep -E -B1 'fatal: |failed: |FAILED|ERROR|Error:|AssertionError|^E |^SKIPPED' "${entry#*=}" | cut -c1-400 | tail -n 40
done
echo "stages: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

#!/usr/bin/env bash
# `make test`: every stage the project tests, a per-stage timing summary at
# the end, and a non-zero exit if any stage failed. Stages run in order and
# all of them run even when one fails.
#   FEDGPU_STAGES   stages to run (default: all of them, in this order)
#   FEDGPU_TEST_JOBS 2 (default): lint and sanity beside the unit stage; 1: one after the other
#   arguments       Molecule scenario names (default: every scenario)
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
all_stages="lint sanity changelog unit demo openstack molecule"
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
# A stage, or a part of one, that could not run here is reported as skipped,
# never as ok: pytest's "N skipped" and the "SKIPPED: <reason>" notes that
# scenarios print for what needs a GPU or a real cluster are counted, and a
# stage whose tests all skipped is "skipped", not "ok". The reasons are
# printed after the summary.
skipped=0
skip_notes=()
skips_in() { # skips_in LOG: "<pytest passed> <pytest skipped> <notes>"
  local summary p s n
  summary=$(grep -E '^[=]* *[0-9]+ (passed|skipped|failed|error)' "$1" | tail -n 1)
  p=$(grep -oE '[0-9]+ passed' <<<"$summary" | grep -oE '[0-9]+'); s=$(grep -oE '[0-9]+ skipped' <<<"$summary" | grep -oE '[0-9]+')
  n=$(grep -cE '"?msg"?: "?SKIPPED: |^SKIPPED \[' "$1")
  echo "${p:-0} ${s:-0} ${n:-0}"
}
# account_stage NAME LOG RC SECS: the stage's line in the summary, from its log.
account_stage() {
  local name=$1 log=$2 rc=$3 secs=$4 p s n status note
  read -r p s n < <(skips_in "$log")
  note=""
  if [ "$rc" -ne 0 ]; then
    status=FAILED; failed=$((failed + 1)); failed_logs+=("$name=$log")
  elif [ "$s" -gt 0 ] && [ "$p" -eq 0 ]; then
    status=SKIPPED; skipped=$((skipped + 1)); note="all $s tests skipped"
  else
    status=ok; passed=$((passed + 1))
    [ "$s" -gt 0 ] && note="$s tests skipped"
    [ "$n" -gt 0 ] && note="${note:+$note, }$n parts skipped"
  fi
  if [ -n "$note" ]; then
    skip_notes+=("$name=$log")
  fi
  results+=("$(printf '%-34s %-7s %5ss  %s' "$name" "$status" "$secs" "$note")")
}
stage_log() { echo "$logdir/${1//[^A-Za-z0-9_.-]/_}.log"; }
run_stage() { # run_stage NAME COMMAND...
  local name=$1 start rc log
  shift
  log=$(stage_log "$name")
  printf '\n==== %s: %s\n' "$name" "$*"
  start=$(date +%s)
  "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  account_stage "$name" "$log" "$rc" "$(( $(date +%s) - start ))"
  return 0
}
# The static stages (lint, sanity) and the unit stage are each one process
# that keeps one core busy, with nothing to wait for: when the unit stage
# runs too, lint and sanity run beside it (FEDGPU_TEST_JOBS=1: one after the
# other). The stages that start containers and services run one at a time.
# The background ones write only to their logs, printed whole when they end.
background_stages=()
start_background() { # start_background NAME COMMAND...: run it in the background, output to its log
  local name=$1 log
  shift
  log=$(stage_log "$name")
  ( start=$(date +%s); "$@" >"$log" 2>&1; echo "$? $(( $(date +%s) - start ))" >"$log.rc" ) &
  background_stages+=("$name")
  printf '\n==== %s: %s (in the background, beside the next stages)\n' "$name" "$*"
}
finish_background() { # wait for the background stages, print their logs, count them
  local name log rc secs
  wait
  for name in "${background_stages[@]}"; do
    log=$(stage_log "$name")
    read -r rc secs <"$log.rc"
    printf '\n==== %s (ran in the background)\n' "$name"
    cat "$log"
    account_stage "$name" "$log" "$rc" "$secs"
  done
  background_stages=()
}
# How lint and sanity run: beside the unit stage when it runs too and FEDGPU_TEST_JOBS allows.
static_stage=run_stage
case " $stages " in *" unit "*) [ "${FEDGPU_TEST_JOBS:-2}" -gt 1 ] && static_stage=start_background ;; esac

t0=$(date +%s)
for stage in $stages; do
  case $stage in
    lint)
      # ansible-lint installs the collection under $HOME/.ansible: a HOME of
      # this tree's own keeps another checkout's copy out of the way.
      mkdir -p .cache/lint-home
      $static_stage lint env HOME="$root/.cache/lint-home" ansible-lint --offline --profile production --nocolor ;;
    changelog)
      run_stage changelog antsibull-changelog lint ;;
    unit)
      # tests/integration/kubernetes: a real cluster when KUBECONFIG is set, else skipped with that reason.
      run_stage unit python -m pytest -q -rs tests/unit tests/integration/kubernetes
      finish_background ;;
    sanity)
      $static_stage sanity tools/sanity.sh ;;
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

finish_background
printf '\n==== timing summary (wall seconds)\n'
printf '%s\n' "${results[@]}"
printf '%-34s %-7s %5ss\n' total "" "$(( $(date +%s) - t0 ))"
for entry in "${skip_notes[@]}"; do
  # What was skipped and why: pytest's -rs lines and the scenarios' notes.
  printf '\n==== skipped in %s (full log: %s)\n' "${entry%%=*}" "${entry#*=}"
  sed 's/\x1b\[[0-9;]*m//g' "${entry#*=}" | grep -oE '"?msg"?: "?SKIPPED: .*|^SKIPPED \[.*' | sed 's/^"\?msg"\?: "\?//; s/"$//' | sort -u | cut -c1-300 | head -n 20
done
for entry in "${failed_logs[@]}"; do
  # Why it failed: Ansible's fatal/failed task lines, Molecule and pytest
  # errors, each cut to 400 characters; the whole log is named.
  printf '\n==== why %s failed (full log: %s)\n' "${entry%%=*}" "${entry#*=}"
  grep -E -B1 'fatal: |failed: |FAILED|ERROR|Error:|AssertionError|^E |^SKIPPED' "${entry#*=}" | cut -c1-400 | tail -n 40
done
echo "stages: $passed passed, $skipped skipped, $failed failed"
[ "$failed" -eq 0 ]

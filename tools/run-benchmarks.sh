#!/usr/bin/env bash
# `make benchmark`: every script under benchmarks/, each printing its figures.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
rc=0
for b in benchmarks/*; do
  case $b in
    *.sh) cmd=(bash "$b") ;;
    *.py) cmd=(python "$b") ;;
    *) continue ;;
  esac
  printf '\n==== %s\n' "$b"
  "${cmd[@]}" || rc=1
done
exit $rc

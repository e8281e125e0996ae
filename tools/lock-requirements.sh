#!/usr/bin/env bash
# Refresh constraints.txt: the exact versions of every Python package that the
# tests, the linters and the execution environment run with. Installs
# requirements.txt, unconstrained, into a throwaway virtual environment and
# writes what pip chose. Run it to move to newer releases on purpose, then
# `make bootstrap` and `make unit`: the execution environment's pins
# (execution-environment.yml, ee/requirements.txt, ee/requirements.yml) must
# follow, and tests/unit/test_execution_environment.py says which differ.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$python" -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install -q --disable-pip-version-check -r "$root/requirements.txt"
{
  echo "# The exact versions that the tests run with (pip install -r requirements.txt -c constraints.txt,"
  echo "# tools/bootstrap-host.sh), so that a release upstream changes nothing until it is tested here."
  echo "# requirements.txt keeps the ranges; refresh this file with tools/lock-requirements.sh."
  "$tmp/venv/bin/pip" freeze --disable-pip-version-check --exclude-editable | LC_ALL=C sort -f
} > "$root/constraints.txt"
echo "constraints.txt: $(grep -c '==' "$root/constraints.txt") packages pinned" >&2

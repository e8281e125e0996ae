#!/usr/bin/env bash
# Everything a fresh Debian 12 machine (as root) needs before `make`:
# Debian packages and the Python virtual environment with the pinned
# requirements, at the versions of constraints.txt. Idempotent and quick when nothing is missing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${VENV:-$root/.venv}
python=${PYTHON:-python3}

# postgresql-15: a throwaway server for the accounting tests and benchmarks (tests/unit/accounting/pgserver.py)
# prometheus, prometheus-alertmanager: promtool and amtool check and test the alert rules and configs (tests/unit/monitoring)
packages=(docker.io debootstrap apt-cacher-ng shellcheck openssh-client rsync git python3-venv ca-certificates curl postgresql-15 prometheus prometheus-alertmanager)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[bootstrap] installing Debian packages: ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian's apt-cacher-ng package starts a daemon of its own; ours runs
  # with a config of its own (tools/local/substrate.sh), so stop that one.
  pkill -x apt-cacher-ng 2>/dev/null || true
fi

stamp=$venv/.requirements.sha256
want=$(cat "$root/requirements.txt" "$root/constraints.txt" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[bootstrap] installing Python requirements into $venv" >&2
  [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$root/requirements.txt" -c "$root/constraints.txt"
  echo "$want" > "$stamp"
fi

# The repository root is the collection: make it importable by its name.
link=$root/.cache/collections/ansible_collections/fedgpu/platform
if [ ! -L "$link" ]; then
  mkdir -p "$(dirname "$link")"
  ln -sfn ../../../.. "$link"
fi

#!/usr/bin/env bash
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# The OpenStack integration stage: starts two real OpenStack sites on
# loopback (sites.sh, from the pytest session fixture), runs the tests in
# this directory against them, stops the sites.
#
#   bash tests/integration/openstack/run.sh [pytest args]
#
# FEDGPU_VENV: the Ansible venv to run pytest/ansible from (default
# <repo>/.venv, made by tools/bootstrap-host.sh).  It needs ansible-core,
# openstacksdk, pytest and PyYAML.  The OpenStack services get their own venv
# (FEDGPU_OS_VENV, default <repo>/.cache/openstack-venv), made by sites.sh.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "${HERE}/../../.." && pwd)"
FEDGPU_VENV="${FEDGPU_VENV:-${ROOT}/.venv}"
PY="${FEDGPU_VENV}/bin/python"
if [ ! -x "$PY" ]; then
  echo "run.sh: no Python at ${PY}; set FEDGPU_VENV to the Ansible venv" >&2
  exit 2
fi
missing="$("$PY" - <<'PYEOF'
import importlib.util
print(' '.join(m for m in ('ansible', 'openstack', 'pytest', 'yaml') if importlib.util.find_spec(m) is None))
PYEOF
)"
if [ -n "$missing" ]; then
  echo "run.sh: ${FEDGPU_VENV} lacks Python modules: ${missing} (ansible-core, openstacksdk, pytest, PyYAML)" >&2
  exit 2
fi
if [ "${FEDGPU_OS_REUSE:-0}" != 1 ]; then
  # The session fixture stops the sites; this also covers an interrupted run.
  trap 'bash "${HERE}/sites.sh" stop >/dev/null 2>&1 || true' EXIT
fi
cd "$ROOT"
start=$(date +%s)
rc=0
"$PY" -m pytest "${HERE}" -p no:cacheprovider -q -rs --durations=10 "$@" || rc=$?
echo "openstack integration stage: $(( $(date +%s) - start ))s, pytest rc=${rc}"
exit "$rc"

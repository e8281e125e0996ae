#!/usr/bin/env bash
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Real OpenStack "sites" on loopback for the integration tests.
#
#   sites.sh install              Debian packages + OpenStack venv (cached)
#   sites.sh start [--sites N]    install, then start N sites (default 2)
#   sites.sh stop | status
#   sites.sh stop-site NAME | start-site NAME
#
# Environment: FEDGPU_OS_VENV (default <repo>/.cache/openstack-venv),
# FEDGPU_OS_RUN (default <repo>/.cache/openstack-sites), FEDGPU_OS_SITES.
# Everything listens on 127.0.0.0/8 only.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "${HERE}/../../.." && pwd)"
OS_VENV="${FEDGPU_OS_VENV:-${ROOT}/.cache/openstack-venv}"
export FEDGPU_OS_RUN="${FEDGPU_OS_RUN:-${ROOT}/.cache/openstack-sites}"

# Versions checked together (shared/docs/openstack-substrate.md).
PINS=(keystone==30.0.0 nova==34.0.0 openstack-placement==16.0.0 neutron==29.0.0
      glance==33.0.0 gunicorn==27.0.1 PyMySQL==1.2.4)
DEBS=(mariadb-server mariadb-client rabbitmq-server python3-venv)

log() { echo "[sites $(date +%H:%M:%S)] $*" >&2; }

install_debs() {
  local missing=()
  for p in "${DEBS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  log "apt-get install ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  # No systemd here: keep the packages' maintainer scripts from starting
  # their daemons (we start our own instances on loopback).
  local policy=/usr/sbin/policy-rc.d created=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod 755 "$policy"
    created=1
  fi
  local rc=0
  if ! command -v apt-get >/dev/null; then
    rc=1
  else
    $sudo apt-get update -qq || true
    DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || rc=$?
  fi
  [ "$created" -eq 1 ] && $sudo rm -f "$policy"
  if [ "$rc" -ne 0 ]; then
    log "dependency unavailable: Debian packages ${missing[*]} cannot be installed"
    exit 4
  fi
  return 0
}

install_venv() {
  local stamp="${OS_VENV}/.fedgpu-pins"
  local want
  want="$(printf '%s\n' "${PINS[@]}")"
  if [ -x "${OS_VENV}/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    :
  else
    log "creating ${OS_VENV} (${PINS[*]})"
    local py=/usr/bin/python3
    [ -x "$py" ] || py="$(command -v python3)"
    if ! "$py" -m venv "$OS_VENV"; then
      log "dependency unavailable: python3-venv (cannot create ${OS_VENV})"
      exit 4
    fi
    if ! "${OS_VENV}/bin/pip" install -q --disable-pip-version-check "${PINS[@]}"; then
      log "dependency unavailable: PyPI packages ${PINS[*]} cannot be installed"
      exit 4
    fi
    echo "$want" > "$stamp"
  fi
  # The ML2 driver that binds every port: registered by entry point.
  local site
  site="$("${OS_VENV}/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  cp "${HERE}/fakebind.py" "${site}/fedgpu_fakebind.py"
  mkdir -p "${site}/fedgpu_fakebind-0.1.dist-info"
  printf 'Metadata-Version: 2.1\nName: fedgpu-fakebind\nVersion: 0.1\n' > "${site}/fedgpu_fakebind-0.1.dist-info/METADATA"
  printf '[neutron.ml2.mechanism_drivers]\nfedgpu_fakebind = fedgpu_fakebind:FakeBindMechanismDriver\n' \
    > "${site}/fedgpu_fakebind-0.1.dist-info/entry_points.txt"
}

cmd="${1:-status}"
[ "$#" -gt 0 ] && shift
case "$cmd" in
  install)
    install_debs; install_venv ;;
  start)
    t0=$(date +%s)
    install_debs; install_venv
    log "installed in $(( $(date +%s) - t0 ))s"
    "${OS_VENV}/bin/python" "${HERE}/sitectl.py" start "$@"
    log "start took $(( $(date +%s) - t0 ))s" ;;
  stop|status|stop-site|start-site)
    if [ ! -x "${OS_VENV}/bin/python" ]; then
      [ "$cmd" = status ] && { echo "not installed"; exit 3; }
      exit 0
    fi
    exec "${OS_VENV}/bin/python" "${HERE}/sitectl.py" "$cmd" "$@" ;;
  *)
    echo "usage: $0 install|start [--sites N]|stop|status|stop-site NAME|start-site NAME" >&2; exit 2 ;;
esac

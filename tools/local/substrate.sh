#!/usr/bin/env bash
# Local substrate: Debian systemd containers acting as VMs.
#
# The one place that installs/starts the Docker engine, builds and caches the
# Debian base images (debootstrap), creates the project's Docker network and
# starts the optional package cache. `make demo`, `make test` and every
# Molecule scenario go through it.  Container settings live in one place too:
# roles/local_hosts/vars/main.yml.
#
# Usage: substrate.sh [docker|image DIST|images|network|cache|cache-stop|all|status]
#
# Inputs (environment):
#   FEDGPU_DISTS           images to build for `images`/`all` (default "trixie bookworm")
#   FEDGPU_IMAGE_REPO      image repository name            (default fedgpu/debian)
#   FEDGPU_CACHE_DIR       where root-fs tarballs are cached  (default /var/cache/fedgpu)
#   FEDGPU_EXTRA_CA_CERTS  space separated PEM files trusted inside the images
#                          (default: /usr/local/share/ca-certificates/*.crt)
#   FEDGPU_DEBIAN_MIRROR   mirror for debootstrap          (default http://deb.debian.org/debian)
#   FEDGPU_NETWORK         Docker network name              (default fedgpu-local)
#   FEDGPU_SUBNET          its fixed subnet                 (default 172.28.71.0/24);
#                          Docker picks addresses in its upper half, the lower
#                          half is for hosts with fixed addresses
#   FEDGPU_APT_CACHE       1 to run the apt-cacher-ng package cache (default 1)
set -euo pipefail

IMAGE_REPO=${FEDGPU_IMAGE_REPO:-fedgpu/debian}
CACHE_DIR=${FEDGPU_CACHE_DIR:-/var/cache/fedgpu}
MIRROR=${FEDGPU_DEBIAN_MIRROR:-http://deb.debian.org/debian}
NETWORK=${FEDGPU_NETWORK:-fedgpu-local}
SUBNET=${FEDGPU_SUBNET:-172.28.71.0/24}
APT_CACHE=${FEDGPU_APT_CACHE:-1}
DISTS=${FEDGPU_DISTS:-trixie bookworm}
if [ -z "${FEDGPU_EXTRA_CA_CERTS+x}" ]; then
  FEDGPU_EXTRA_CA_CERTS=$(find /usr/local/share/ca-certificates -name '*.crt' 2>/dev/null | sort | tr '\n' ' ')
fi
# Packages every local host starts with: what a minimal cloud image has.
BASE_PACKAGES=systemd,systemd-sysv,dbus,python3,python3-apt,ca-certificates,iproute2,iputils-ping,procps,sudo,gnupg,curl,less,apt-transport-https

log() { printf '[substrate] %s\n' "$*" >&2; }

gateway() { # first address of the subnet: the host side of the network
  python3 -c "import ipaddress,sys; print(next(ipaddress.ip_network(sys.argv[1]).hosts()))" "$SUBNET"
}

dynamic_range() { # upper half of the subnet: Docker's pick; the lower half is for fixed addresses
  python3 -c "import ipaddress,sys; print(list(ipaddress.ip_network(sys.argv[1]).subnets(1))[1])" "$SUBNET"
}

ensure_pkg() { # ensure_pkg CMD PACKAGE
  command -v "$1" >/dev/null 2>&1 && return 0
  log "installing Debian package $2"
  if [ -z "$(find /var/lib/apt/lists -name '*Packages*' -mmin -1440 2>/dev/null | head -1)" ]; then
    apt-get update -qq
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}

cmd_docker() {
  ensure_pkg dockerd docker.io
  if docker info >/dev/null 2>&1; then return 0; fi
  log "starting dockerd"
  mkdir -p /var/log
  nohup /usr/sbin/dockerd >/var/log/fedgpu-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && return 0
    sleep 1
  done
  log "dockerd did not start; see /var/log/fedgpu-dockerd.log"
  tail -20 /var/log/fedgpu-dockerd.log >&2 || true
  return 1
}

inputs_digest() { # what an image is built from: any change rebuilds it
  local dist=$1
  {
    echo "$dist $MIRROR $BASE_PACKAGES"
    sed -n '/^build_rootfs()/,/^}/p' "$0"
    for c in $FEDGPU_EXTRA_CA_CERTS; do sha256sum < "$c"; done
  } | sha256sum | cut -c1-12
}

build_rootfs() { # build_rootfs DIST TARBALL
  local dist=$1 out=$2 root
  ensure_pkg debootstrap debootstrap
  root=$(mktemp -d /var/tmp/fedgpu-rootfs.XXXXXX)
  log "debootstrap $dist (about a minute)"
  debootstrap --variant=minbase --include="$BASE_PACKAGES" "$dist" "$root" "$MIRROR" >"$root.log" 2>&1 \
    || { tail -30 "$root.log" >&2; rm -rf "$root" "$root.log"; return 1; }
  # Extra CA certificates (a TLS-intercepting proxy, a site CA) trusted inside.
  for c in $FEDGPU_EXTRA_CA_CERTS; do
    install -m 0644 "$c" "$root/usr/local/share/ca-certificates/$(basename "${c%.*}").crt"
  done
  chroot "$root" update-ca-certificates >/dev/null 2>&1
  # A container, not a VM: no getty on consoles, no kernel-facing units.
  for u in getty.target console-getty.service systemd-udevd.service systemd-udev-trigger.service \
           systemd-modules-load.service sys-kernel-config.mount sys-kernel-debug.mount \
           systemd-remount-fs.service systemd-firstboot.service; do
    ln -sf /dev/null "$root/etc/systemd/system/$u"
  done
  rm -f "$root/etc/machine-id" "$root/var/lib/dbus/machine-id"
  : > "$root/etc/machine-id"
  echo 'APT::Install-Recommends "false";' > "$root/etc/apt/apt.conf.d/90fedgpu-no-recommends"
  # Keep the package lists debootstrap fetched: apt modules with a
  # cache_valid_time then work at once; they are refreshed when stale.
  rm -rf "$root"/var/cache/apt/archives/*.deb
  tar -C "$root" --numeric-owner -cf "$out.tmp" . && mv "$out.tmp" "$out"
  rm -rf "$root" "$root.log"
}

cmd_image() {
  local dist=${1:?dist}
  local digest tag tarball
  digest=$(inputs_digest "$dist")
  tag="$IMAGE_REPO:$dist"
  if [ "$(docker image inspect -f '{{ index .Config.Labels "fedgpu.inputs" }}' "$tag" 2>/dev/null || true)" = "$digest" ]; then
    return 0
  fi
  mkdir -p "$CACHE_DIR"
  tarball="$CACHE_DIR/debian-$dist-$digest.tar"
  [ -f "$tarball" ] || build_rootfs "$dist" "$tarball"
  log "importing $tag ($digest)"
  docker import -c "LABEL fedgpu.inputs=$digest" -c 'CMD ["/lib/systemd/systemd"]' \
    -c 'ENV container=docker' "$tarball" "$tag" >/dev/null
  # Older tarballs of this dist are stale now.
  find "$CACHE_DIR" -name "debian-$dist-*.tar" ! -name "$(basename "$tarball")" -delete
}

cmd_network() {
  if docker network inspect "$NETWORK" >/dev/null 2>&1; then return 0; fi
  log "creating network $NETWORK ($SUBNET)"
  docker network create --subnet "$SUBNET" --gateway "$(gateway)" --ip-range "$(dynamic_range)" "$NETWORK" >/dev/null
}

cmd_cache() { # apt-cacher-ng on the network's gateway, with a config of our own
  local gw dir=$CACHE_DIR/apt-cacher-ng conf
  [ "$APT_CACHE" = 1 ] || return 0
  cmd_network
  gw=$(gateway)
  ensure_pkg apt-cacher-ng apt-cacher-ng
  mkdir -p "$dir/etc" "$dir/cache" "$dir/log" "$dir/run"
  chown -R apt-cacher-ng: "$dir/cache" "$dir/log" "$dir/run" 2>/dev/null || true
  # Only deb.debian.org is reachable: the packaged backends name other mirrors.
  conf="CacheDir: $dir/cache
LogDir: $dir/log
SupportDir: /usr/lib/apt-cacher-ng
PidFile: $dir/run/pid
SocketPath: $dir/run/socket
BindAddress: $gw
Port: 3142
Remap-debrep: file:deb_mirror*.gz /debian ; http://deb.debian.org/debian/
Remap-secdeb: security.debian.org deb.debian.org/debian-security ; http://deb.debian.org/debian-security/
ExThreshold: 4
PassThroughPattern: ^$"
  if [ "$(cat "$dir/etc/acng.conf" 2>/dev/null)" != "$conf" ]; then
    printf '%s' "$conf" > "$dir/etc/acng.conf"
    cmd_cache_stop
  fi
  if ! cache_running; then
    log "starting apt-cacher-ng on $gw:3142"
    /usr/sbin/apt-cacher-ng -c "$dir/etc" ForeGround=0
    for _ in $(seq 1 20); do
      (exec 3<>"/dev/tcp/$gw/3142") 2>/dev/null && break
      sleep 0.5
    done
  fi
}

cache_running() {
  local pid
  pid=$(cat "$CACHE_DIR/apt-cacher-ng/run/pid" 2>/dev/null) || return 1
  kill -0 "$pid" 2>/dev/null
}

cmd_cache_stop() {
  local pid
  pid=$(cat "$CACHE_DIR/apt-cacher-ng/run/pid" 2>/dev/null) || return 0
  kill "$pid" 2>/dev/null || true
  sleep 1
}

cmd_status() {
  docker info --format 'docker {{ .ServerVersion }} ({{ .Driver }})' 2>/dev/null || echo "docker: not running"
  docker image ls "$IMAGE_REPO" --format '{{ .Repository }}:{{ .Tag }} {{ .CreatedSince }}' 2>/dev/null || true
  docker network inspect "$NETWORK" --format '{{ .Name }} {{ range .IPAM.Config }}{{ .Subnet }}{{ end }}' 2>/dev/null || true
  if cache_running; then echo "apt cache: http://$(gateway):3142"; else echo "apt cache: off"; fi
}

case "${1:-all}" in
  docker) cmd_docker ;;
  image) cmd_docker; cmd_image "${2:?usage: substrate.sh image DIST}" ;;
  images) cmd_docker; for d in $DISTS; do cmd_image "$d"; done ;;
  network) cmd_docker; cmd_network ;;
  cache) cmd_docker; cmd_cache ;;
  cache-stop) cmd_cache_stop ;;
  gateway) gateway ;;
  all) cmd_docker; for d in $DISTS; do cmd_image "$d"; done; cmd_network; cmd_cache ;;
  status) cmd_status ;;
  *) echo "usage: $0 [docker|image DIST|images|network|cache|cache-stop|gateway|all|status]" >&2; exit 2 ;;
esac

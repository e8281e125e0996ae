#!/usr/bin/env bash
# ansible-test sanity on a copy of the collection in a temporary
# ansible_collections/fedgpu/platform tree (ansible-test requires that
# layout), with the offline pip bootstrap (tools/ansible-test-get-pip.py).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
python=${FEDGPU_PYTHON:-$(command -v python3)}
pyver=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
pip_version=$("$python" - <<'PY'
from ansible_test._internal.python_requirements import get_venv_packages
from ansible_test._internal.host_configs import PythonConfig
class P: version = None
print(get_venv_packages(P)['pip'])
PY
)
cache=~/.ansible/test/cache
mkdir -p "$cache"
install -m 0644 "$root/tools/ansible-test-get-pip.py" "$cache/get_pip_${pip_version//./_}.py"

work=$(mktemp -d /tmp/fedgpu-sanity.XXXXXX)
trap 'rm -rf "$work"' EXIT
dest=$work/ansible_collections/fedgpu/platform
mkdir -p "$dest"
# The files git knows (tracked or not ignored) that are there (not deleted in
# the working tree): what a build of the collection holds.
(cd "$root" && git ls-files -co --exclude-standard -z |
  while IFS= read -r -d '' f; do if [ -e "$f" ]; then printf '%s\0' "$f"; fi; done |
  xargs -0 cp --parents -t "$dest")
cd "$dest"
git init -q && git add -A >/dev/null
ansible-test sanity --local --python "$pyver" --color no "$@"

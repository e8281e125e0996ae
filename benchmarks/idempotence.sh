#!/usr/bin/env bash
# Wall time of the first and the second site.yml run on a fresh local
# platform, and their ratio (second / first). The second run must report
# changed=0; the script fails if it does not.
# Run through `make benchmark` (or after `make substrate`).
set -euo pipefail
cd "$(dirname "$0")/.."
export ANSIBLE_CONFIG=${ANSIBLE_CONFIG:-$PWD/ansible.cfg}
log=$(mktemp -d /tmp/fedgpu-bench.XXXXXX)

ansible-playbook playbooks/local_down.yml >"$log/down.log"
ansible-playbook playbooks/local_up.yml >"$log/up.log"

run() { # run N: time one site.yml run, keep its log
  local start end
  start=$(date +%s.%N)
  ansible-playbook playbooks/site.yml >"$log/site-$1.log"
  end=$(date +%s.%N)
  python3 -c "print(f'{$end - $start:.1f}')"
}
first=$(run 1)
second=$(run 2)
changed=$(awk '/ changed=/ { for (i = 1; i <= NF; i++) if ($i ~ /^changed=/) { split($i, a, "="); s += a[2] } } END { print s + 0 }' "$log/site-2.log")
nodes=$(grep -c ' : ok=' "$log/site-2.log")

printf 'site.yml on %s local nodes\n' "$nodes"
printf 'first run:  %6.1f s\n' "$first"
printf 'second run: %6.1f s (changed=%s)\n' "$second" "$changed"
python3 -c "print(f'ratio second/first: {$second / $first:.2f}')"
echo "logs: $log"
[ "$changed" -eq 0 ]

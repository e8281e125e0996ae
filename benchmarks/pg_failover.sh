#!/usr/bin/env bash
# Failover under load, three times, on the local containers of the Molecule
# scenario postgresql_ha: a writer on the witness records every acknowledged
# commit, the primary's postgres is killed with SIGKILL, repmgrd promotes the
# standby; the old primary is rejoined before the next run. Prints recovery
# time (kill -> first acknowledged write) and lost acknowledged writes per run,
# and the medians. Goal: median <= 15 s, 0 lost.
# Load and kills go only to this scenario's containers (pgha-*).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PWD/.venv/bin:$PATH
export ANSIBLE_COLLECTIONS_PATH=${ANSIBLE_COLLECTIONS_PATH:-$PWD/.cache/collections}
runs=${RUNS:-3}
# The writer and the failover tasks live with the Molecule scenario.
export MOLECULE_SCENARIO_DIRECTORY=$PWD/extensions/molecule/postgresql_ha
mkdir -p benchmarks/results

# KEEP=1 reuses (and keeps) a converged scenario; otherwise the script makes
# its own and removes it at the end.
if [ "${KEEP:-}" != 1 ] || ! docker inspect pgha-db1 >/dev/null 2>&1; then
  trap 'molecule destroy -s postgresql_ha >/dev/null 2>&1' EXIT
  molecule destroy -s postgresql_ha >/dev/null
  molecule create -s postgresql_ha >/dev/null
  molecule converge -s postgresql_ha >/dev/null
fi
inventory=$(find "$HOME/.ansible/tmp" -maxdepth 2 -path '*.postgresql_ha/inventory' | head -1)

for run in $(seq 1 "$runs"); do
  ansible-playbook -i "$inventory" benchmarks/pg_failover.yml -e run="$run" >"benchmarks/results/pg_failover-$run.log"
done

python3 - "$runs" <<'PY'
import json, statistics, sys
runs = int(sys.argv[1])
rows = [json.load(open(f'benchmarks/results/pg_failover-{i}.json')) for i in range(1, runs + 1)]
print(f"{'run':>3} {'victim':>9} {'new primary':>12} {'recovery s':>11} {'acked':>7} {'lost':>5}")
for i, r in enumerate(rows, 1):
    print(f"{i:>3} {r['victim']:>9} {','.join(r['new_primary']):>12} {r['recovery_s']:>11} {r['acked']:>7} {r['lost']:>5}")
rec = [r['recovery_s'] for r in rows]
lost = [r['lost'] for r in rows]
print(f"median recovery: {statistics.median(rec):.2f} s   median lost: {statistics.median(lost)}   (goal: <= 15 s, 0 lost)")
sys.exit(0 if statistics.median(rec) <= 15 and max(lost) == 0 else 1)
PY

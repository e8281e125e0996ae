# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Provisioning benchmark: wall time of fedgpu.platform.openstack_federation_cluster for 1 node and for N nodes on two sites.

Runs the module (as Ansible runs it, without a playbook) against the loopback
test sites of tests/integration/openstack/sites.sh: a cluster of one node on
site-a, then a cluster of N nodes split over site-a and site-b (each time
including the per-site network setup), removing each cluster afterwards
(teardown not timed).  Goal: N nodes in about 1.5x the time of one.

    python benchmarks/provision.py [--nodes 10] [--runs 1]

It uses the running test sites, or starts two and stops them afterwards.

Results are printed and written to benchmarks/results/provision.json.
"""
import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'integration', 'openstack'))
import osenv  # noqa: E402 pylint: disable=wrong-import-position
from osenv import reexec_in_venv, sites_down, sites_up  # noqa: E402 pylint: disable=wrong-import-position
COLLECTIONS = os.path.join(ROOT, '.cache', 'collections')


def run_module(args):
    """Run the openstack_federation_cluster module as Ansible runs it (osenv.run_module); its wall time and result."""
    start = time.perf_counter()
    result = osenv.run_module(args)
    elapsed = time.perf_counter() - start
    if result.get('failed'):
        raise SystemExit('module failed: %s' % result.get('msg'))
    return elapsed, result


def provision(name, groups):
    elapsed, result = run_module({'name': name, 'groups': groups})
    run_module({'name': name, 'state': 'absent'})
    return elapsed, len(result['created'])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--nodes', type=int, default=10)
    parser.add_argument('--runs', type=int, default=1)
    args = parser.parse_args()
    reexec_in_venv()
    started = sites_up(2)
    try:
        return run(args)
    finally:
        if started:
            sites_down()


def run(args):
    if not os.path.exists(os.path.join(COLLECTIONS, 'ansible_collections', 'fedgpu', 'platform')):
        os.makedirs(os.path.join(COLLECTIONS, 'ansible_collections', 'fedgpu'), exist_ok=True)
        os.symlink(ROOT, os.path.join(COLLECTIONS, 'ansible_collections', 'fedgpu', 'platform'))
    image = 'fedgpu-test-image'
    one, many = [], []
    half = args.nodes // 2
    for _run in range(args.runs):
        one.append(provision('bench-one', [{'name': 'cpu', 'count': 1, 'flavor': 'm1.tiny', 'image': image, 'site': 'site-a'}])[0])
        elapsed, created = provision('bench-many', [
            {'name': 'a', 'count': half, 'flavor': 'm1.tiny', 'image': image, 'site': 'site-a'},
            {'name': 'b', 'count': args.nodes - half, 'flavor': 'm1.tiny', 'image': image, 'site': 'site-b'}])
        assert created == args.nodes
        many.append(elapsed)
    result = {'nodes': args.nodes, 'one_node_s': min(one), 'n_nodes_s': min(many), 'ratio': min(many) / min(one), 'runs': args.runs}
    result['goal_met'] = result['ratio'] <= 1.5
    print('1 node on site-a:                 %6.1f s' % result['one_node_s'])
    print('%d nodes on site-a and site-b:    %6.1f s' % (args.nodes, result['n_nodes_s']))
    print('ratio %.2f (goal about 1.5: %s)' % (result['ratio'], 'met' if result['goal_met'] else 'NOT met'))
    out_dir = os.path.join(ROOT, 'benchmarks', 'results')
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, 'provision.json'), 'w') as f:
        json.dump(result, f, indent=2)
    return 0


if __name__ == '__main__':
    sys.exit(main())

# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Provisioning benchmark: wall time of fedgpu.platform.openstack_federation_cluster for 1 node and for N nodes on two sites.

Runs the module (as Ansible runs it, without a playbook) against the loopback
test sites of tests/integration/openstack/sites.sh: a cluster of one node on
site-a, then a cluster of N nodes split over site-a and site-b (each time
including the per-site network setup), removing each cluster afterwards
(teardown not timed).  Goal: N nodes in about 1.5x the time of one.

    python benchmarks/provision.py [--nodes 10] [--runs 1] [--trace]

--trace runs the module in this process instead (as Ansible would, without
the fork) and records every OpenStack API request it makes: where the time of
one node and of N nodes goes, by request kind, and how much of it overlaps.

It uses the running test sites, or starts two and stops them afterwards.

Results are printed and written to benchmarks/results/provision.json.
"""
import argparse
import collections
import contextlib
import io
import json
import os
import re
import sys
import threading
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


def run_module_traced(args):
    """Run the module in this process, recording (thread, method, url, start, end) of every API request."""
    import keystoneauth1.session  # pylint: disable=import-outside-toplevel
    if COLLECTIONS not in sys.path:
        sys.path.insert(0, COLLECTIONS)
    from ansible.module_utils import basic  # pylint: disable=import-outside-toplevel
    from ansible.module_utils.common.text.converters import to_bytes  # pylint: disable=import-outside-toplevel
    from ansible_collections.fedgpu.platform.plugins.modules import openstack_federation_cluster as module  # pylint: disable=import-outside-toplevel
    args = dict(args, clouds_yaml=osenv.CLOUDS_YAML, clouds=[{'name': osenv.SITE_A}, {'name': osenv.SITE_B}],
                _ansible_check_mode=False, _ansible_diff=False)
    basic._ANSIBLE_ARGS = to_bytes(json.dumps({'ANSIBLE_MODULE_ARGS': args}))  # pylint: disable=protected-access
    basic._ANSIBLE_PROFILE = 'legacy'  # pylint: disable=protected-access
    records = []
    original = keystoneauth1.session.Session.request

    def request(self, url, method, *a, **kw):
        start = time.perf_counter()
        try:
            return original(self, url, method, *a, **kw)
        finally:
            service = (kw.get('endpoint_filter') or {}).get('service_type') or ('identity' if '/auth/' in url or url.endswith('/v3') else '')
            records.append((threading.current_thread().name, method, '%s %s' % (service, url), start, time.perf_counter()))

    keystoneauth1.session.Session.request = request
    out = io.StringIO()
    start = time.perf_counter()
    try:
        with contextlib.redirect_stdout(out):
            module.main()
    except SystemExit:
        pass
    finally:
        keystoneauth1.session.Session.request = original
    elapsed = time.perf_counter() - start
    result = json.loads(out.getvalue())
    if result.get('failed'):
        raise SystemExit('module failed: %s' % result.get('msg'))
    return elapsed, result, [(t, m, u, s - start, e - start) for t, m, u, s, e in records]


def request_kind(method, url):
    """'compute POST /servers' from a request ('<service> <url>'), ids and query strings left out."""
    service, url = url.split(' ', 1)
    path = re.sub(r'\?.*$', '', url)
    if '://' in path:
        path = '/' + path.split('://', 1)[1].split('/', 1)[-1]
    path = re.sub(r'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32}', '{id}', path)
    path = re.sub(r'^/(v[0-9.]+)(?=/|$)', '', path) or '/'
    return '%s %s %s' % (service or '?', method, path)


def report_trace(label, elapsed, records):
    """Print where the time went: requests by kind (count, summed seconds), and the union of request time."""
    kinds = collections.OrderedDict()
    for _thread, method, url, start, end in sorted(records, key=lambda r: r[3]):
        k = kinds.setdefault(request_kind(method, url), [0, 0.0, [], []])
        k[0] += 1
        k[1] += end - start
        k[2].append(end - start)
        k[3].append((start, end))
    busy, last = 0.0, 0.0
    for start, end in sorted((r[3], r[4]) for r in records):
        if end > last:
            busy += end - max(start, last)
            last = end
    print('%s: %.2f s wall, %d requests, %.2f s with a request in flight, %.2f s without one' % (
        label, elapsed, len(records), busy, elapsed - busy))
    print('  count  summed s  each: min - max s  first start - last end s  kind')
    for kind, (count, seconds, each, spans) in sorted(kinds.items(), key=lambda kv: -kv[1][1]):
        print('  %5d  %8.2f  %7.2f - %5.2f    %6.2f - %6.2f         %s' % (
            count, seconds, min(each), max(each), min(s for s, _e in spans), max(e for _s, e in spans), kind))


def provision(name, groups, trace=False):
    if trace:
        elapsed, result, records = run_module_traced({'name': name, 'groups': groups})
        report_trace('%s (%d nodes)' % (name, len(result['created'])), elapsed, records)
        run_module_traced({'name': name, 'state': 'absent'})
    else:
        elapsed, result = run_module({'name': name, 'groups': groups})
        run_module({'name': name, 'state': 'absent'})
    return elapsed, len(result['created'])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--nodes', type=int, default=10)
    parser.add_argument('--runs', type=int, default=1)
    parser.add_argument('--trace', action='store_true', help='run the module in-process and show where its time goes')
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
        one.append(provision('bench-one', [{'name': 'cpu', 'count': 1, 'flavor': 'm1.tiny', 'image': image, 'site': 'site-a'}],
                             args.trace)[0])
        elapsed, created = provision('bench-many', [
            {'name': 'a', 'count': half, 'flavor': 'm1.tiny', 'image': image, 'site': 'site-a'},
            {'name': 'b', 'count': args.nodes - half, 'flavor': 'm1.tiny', 'image': image, 'site': 'site-b'}], args.trace)
        assert created == args.nodes
        many.append(elapsed)
    result = {'nodes': args.nodes, 'one_node_s': min(one), 'n_nodes_s': min(many), 'ratio': min(many) / min(one), 'runs': args.runs,
              'in_process': args.trace}
    result['goal_met'] = result['ratio'] <= 1.5
    print('1 node on site-a:                 %6.1f s' % result['one_node_s'])
    print('%d nodes on site-a and site-b:    %6.1f s' % (args.nodes, result['n_nodes_s']))
    print('ratio %.2f (goal about 1.5: %s)' % (result['ratio'], 'met' if result['goal_met'] else 'NOT met'))
    out_dir = os.path.join(ROOT, 'benchmarks', 'results')
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, 'provision-trace.json' if args.trace else 'provision.json'), 'w') as f:
        json.dump(result, f, indent=2)
    return 0


if __name__ == '__main__':
    sys.exit(main())

# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Inventory benchmark: fedgpu.platform.openstack_federation vs openstack.cloud.openstack.

Both plugins read the same clouds (the loopback test sites of
tests/integration/openstack/sites.sh) through a loopback TCP proxy that adds
``--latency`` seconds (default 0.1) before every request reaches the cloud,
as a far-away site would.  Each plugin's inventory parse is timed in-process
(``InventoryManager``), so Python and Ansible start-up are not counted; the
cached run is our plugin with the inventory cache enabled and warm.

    python benchmarks/inventory.py [--latency 0.1] [--runs 3]

It uses the running test sites, or starts three and stops them afterwards.

openstack.cloud 2.5 needs openstacksdk < 4.15, so it runs in its own venv
(``--bench-venv``, default .cache/bench-venv: ansible-core + openstacksdk
4.14.0, created when missing); our plugin runs in FEDGPU_VENV (default
.venv).  Results are printed and written to
benchmarks/results/inventory.json.  Goal: ratio >= 3, cached <= 0.3 s.
"""
import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'integration', 'openstack'))
from osenv import default_venv, reexec_in_venv, sites_down, sites_up  # noqa: E402 pylint: disable=wrong-import-position
PORTS = (5000, 8774, 9696, 9292, 8778)

HARNESS = r'''
import json, os, sys, time
from ansible.parsing.dataloader import DataLoader
from ansible.inventory.manager import InventoryManager
from ansible.plugins.loader import init_plugin_loader
init_plugin_loader()
path, runs = sys.argv[1], int(sys.argv[2])
times, hosts = [], None
for _ in range(runs):
    t = time.perf_counter()
    inv = InventoryManager(loader=DataLoader(), sources=[path])
    times.append(time.perf_counter() - t)
    hosts = len(inv.hosts)
print(json.dumps({'times': times, 'hosts': hosts}))
'''


class DelayProxy(object):
    """Loopback TCP proxy: 127.0.1.N:port -> 127.0.0.N:port, each request delayed."""

    def __init__(self, pairs, latency):
        self.pairs = pairs
        self.latency = latency
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.requests = 0

    async def _pipe(self, reader, writer, delay):
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                if delay:
                    self.requests += 1
                    await asyncio.sleep(self.latency)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            try:
                writer.close()
            except Exception:  # pylint: disable=broad-except
                pass

    def _handler(self, target):
        async def handle(reader, writer):
            try:
                up_reader, up_writer = await asyncio.open_connection(*target)
            except OSError:
                writer.close()
                return
            await asyncio.gather(self._pipe(reader, up_writer, True), self._pipe(up_reader, writer, False))
        return handle

    async def _start(self):
        for listen, target in self.pairs:
            await asyncio.start_server(self._handler(target), listen[0], listen[1])
        self.ready.set()

    def start(self):
        def run():
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(self._start())
            self.loop.run_forever()
        threading.Thread(target=run, daemon=True).start()
        self.ready.wait(10)


def ensure_bench_venv(path):
    py = os.path.join(path, 'bin', 'python')
    check = [py, '-c', 'import openstack, ansible; assert openstack.version.__version__.startswith("4.14")']
    if os.path.exists(py) and subprocess.run(check, capture_output=True, check=False).returncode == 0:
        return py
    subprocess.run([sys.executable, '-m', 'venv', path], check=True)
    subprocess.run([os.path.join(path, 'bin', 'pip'), 'install', '-q', 'ansible-core==2.19.*', 'openstacksdk==4.14.0'], check=True)
    return py


def collections_path(venv_python):
    """Where the `ansible` package (with openstack.cloud) is installed."""
    out = subprocess.run([venv_python, '-c', 'import ansible_collections, os; print(os.path.dirname(list(ansible_collections.__path__)[0]))'],
                         capture_output=True, text=True, check=False)
    return out.stdout.strip() if out.returncode == 0 else None


def timed(python, inventory_file, runs, env):
    with tempfile.NamedTemporaryFile('w', suffix='.py', delete=False) as f:
        f.write(HARNESS)
    try:
        proc = subprocess.run([python, f.name, inventory_file, str(runs)], capture_output=True, text=True, env=env, check=False)
    finally:
        os.unlink(f.name)
    if proc.returncode != 0:
        raise SystemExit('harness failed for %s:\n%s' % (inventory_file, proc.stderr[-3000:]))
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--clouds-yaml', default=os.path.join(ROOT, '.cache', 'openstack-sites', 'clouds.yaml'))
    parser.add_argument('--latency', type=float, default=0.1, help='seconds added before each request (default 0.1)')
    parser.add_argument('--runs', type=int, default=3)
    parser.add_argument('--bench-venv', default=os.path.join(ROOT, '.cache', 'bench-venv'))
    parser.add_argument('--venv', default=default_venv(), help='venv for our plugin (FEDGPU_VENV)')
    args = parser.parse_args()
    reexec_in_venv()
    import yaml  # pylint: disable=import-outside-toplevel
    started = sites_up(3) if not os.environ.get('FEDGPU_BENCH_NO_SITES') else False
    try:
        return run(args, yaml)
    finally:
        if started:
            sites_down()


def run(args, yaml):
    with open(args.clouds_yaml) as f:
        clouds = yaml.safe_load(f)['clouds']
    names = sorted(n for n in clouds if not n.endswith('-admin'))
    pairs = []
    proxied = {'clouds': {}}
    for name in names:
        cloud = json.loads(json.dumps(clouds[name]))
        host = cloud['auth']['auth_url'].split('//', 1)[1].split(':', 1)[0]
        proxy_host = '127.0.1.' + host.rsplit('.', 1)[1]
        for port in PORTS:
            pairs.append(((proxy_host, port), (host, port)))
        cloud['auth']['auth_url'] = cloud['auth']['auth_url'].replace(host, proxy_host)
        cloud['compute_endpoint_override'] = 'http://%s:8774/v2.1' % proxy_host
        cloud['network_endpoint_override'] = 'http://%s:9696' % proxy_host
        cloud['image_endpoint_override'] = 'http://%s:9292' % proxy_host
        cloud['placement_endpoint_override'] = 'http://%s:8778' % proxy_host
        proxied['clouds'][name] = cloud
    proxy = DelayProxy(pairs, args.latency)
    proxy.start()

    work = tempfile.mkdtemp(prefix='fedgpu-bench-')
    clouds_file = os.path.join(work, 'clouds.yaml')
    with open(clouds_file, 'w') as f:
        yaml.safe_dump(proxied, f)
    os.chmod(clouds_file, 0o600)
    ours = os.path.join(work, 'bench.openstack_federation.yml')
    ours_cached = os.path.join(work, 'cached.openstack_federation.yml')
    theirs = os.path.join(work, 'openstack.yml')
    base = {'plugin': 'fedgpu.platform.openstack_federation', 'clouds_yaml': clouds_file, 'clouds': names, 'only_clusters': False,
            'fail_on_errors': True}
    with open(ours, 'w') as f:
        yaml.safe_dump(base, f)
    with open(ours_cached, 'w') as f:
        yaml.safe_dump(dict(base, cache=True, cache_plugin='ansible.builtin.jsonfile', cache_connection=os.path.join(work, 'cache'),
                            cache_timeout=3600), f)
    with open(theirs, 'w') as f:
        yaml.safe_dump({'plugin': 'openstack.cloud.openstack', 'only_clouds': names, 'expand_hostvars': False, 'fail_on_errors': True,
                        'all_projects': False}, f)

    our_py = os.path.join(args.venv, 'bin', 'python')
    env = dict(os.environ, OS_CLIENT_CONFIG_FILE=clouds_file, ANSIBLE_INVENTORY_UNPARSED_FAILED='true', PYTHONWARNINGS='ignore',
               ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, '.cache', 'collections'))
    if not os.path.exists(os.path.join(ROOT, '.cache', 'collections', 'ansible_collections', 'fedgpu', 'platform')):
        os.makedirs(os.path.join(ROOT, '.cache', 'collections', 'ansible_collections', 'fedgpu'), exist_ok=True)
        os.symlink(ROOT, os.path.join(ROOT, '.cache', 'collections', 'ansible_collections', 'fedgpu', 'platform'))
    result = {'clouds': names, 'latency_s': args.latency, 'runs': args.runs}
    r = timed(our_py, ours, args.runs, env)
    result['ours'] = {'best_s': min(r['times']), 'times_s': r['times'], 'hosts': r['hosts']}
    timed(our_py, ours_cached, 1, env)  # fill the cache
    r = timed(our_py, ours_cached, args.runs, env)
    result['ours_cached'] = {'best_s': min(r['times']), 'times_s': r['times'], 'hosts': r['hosts']}

    bench_py = ensure_bench_venv(args.bench_venv)
    coll = collections_path(our_py)
    env_theirs = dict(env, ANSIBLE_COLLECTIONS_PATH=coll or '')
    r = timed(bench_py, theirs, args.runs, env_theirs)
    result['openstack_cloud'] = {'best_s': min(r['times']), 'times_s': r['times'], 'hosts': r['hosts'], 'openstacksdk': '4.14.0'}
    result['ratio'] = result['openstack_cloud']['best_s'] / result['ours']['best_s']
    result['goal_ratio_met'] = result['ratio'] >= 3
    result['goal_cached_met'] = result['ours_cached']['best_s'] <= 0.3
    result['proxied_requests'] = proxy.requests

    print('clouds: %s, added latency per request: %.0f ms, best of %d' % (', '.join(names), args.latency * 1000, args.runs))
    print('  openstack.cloud.openstack      %6.2f s  (%d hosts)' % (result['openstack_cloud']['best_s'], result['openstack_cloud']['hosts']))
    print('  fedgpu openstack_federation    %6.2f s  (%d hosts)' % (result['ours']['best_s'], result['ours']['hosts']))
    print('  fedgpu, inventory cache warm   %6.3f s' % result['ours_cached']['best_s'])
    print('  ratio %.1fx (goal >= 3x: %s); cached %.3f s (goal <= 0.3 s: %s)' % (
        result['ratio'], 'met' if result['goal_ratio_met'] else 'NOT met', result['ours_cached']['best_s'],
        'met' if result['goal_cached_met'] else 'NOT met'))
    out_dir = os.path.join(ROOT, 'benchmarks', 'results')
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, 'inventory.json'), 'w') as f:
        json.dump(result, f, indent=2)
    return 0


if __name__ == '__main__':
    sys.exit(main())

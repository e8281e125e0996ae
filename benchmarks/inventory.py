# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Inventory benchmark: fedgpu.platform.openstack_federation vs openstack.cloud.openstack, whole processes.

Each figure is the wall time of a whole ``ansible-inventory -i <file> --list``
process (Python and Ansible start-up included, as a user sees it), the median
of ``--runs`` rounds; the variants run interleaved, one of each per round, so
drifts of the machine hit them all alike:

- bare: ``ansible-inventory`` on an empty static inventory (the floor);
- openstack.cloud.openstack and ours on the 3 loopback test sites, directly
  and through a loopback TCP proxy that adds ``--latency`` seconds (default
  0.1) before every request reaches a cloud, as a far-away site would;
- ours with the inventory cache warm (goal: within 0.1 s of bare);
- ours with 9 cloud entries (3 per site, each on its own proxy address, so
  each is a cloud of its own with its own token) at the same latency
  (goal: as fast as with 3).  The 9 share the 3 sites' API workers and
  this machine's CPUs, which 9 real clouds would not: so it also runs ours on
  3 and 9 stand-in clouds (tests/unit/plugins/fake_openstack_api.py: Keystone
  and Nova answers from memory, ``--latency`` late, 7 servers each) to
  show how the plugin itself scales.

Goal: ours >= 3x faster than openstack.cloud at the added latency.  It also
prints where our time goes: per cloud, the token and the server list (from
``-vvv``), and the fixed cost (cached minus bare).

    python benchmarks/inventory.py [--latency 0.1] [--runs 5] [--servers 20]

It uses the running test sites, or starts three and stops them afterwards;
it makes ``--servers`` servers (``bench-*``, spread over the sites) when the
project has fewer, and removes those it made.

openstack.cloud 2.5 needs openstacksdk < 4.15, so it runs in its own venv
(``--bench-venv``, default .cache/bench-venv: ansible-core + openstacksdk
4.14.0, created when missing); our plugin runs in FEDGPU_VENV (default
.venv).  Results are printed and written to benchmarks/results/inventory.json.
"""
import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'integration', 'openstack'))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'unit', 'plugins'))
from osenv import default_venv, reexec_in_venv, sites_down, sites_up  # noqa: E402 pylint: disable=wrong-import-position
from fake_openstack_api import FakeCloud, nova_server  # noqa: E402 pylint: disable=wrong-import-position
PORTS = (5000, 8774, 9696, 9292, 8778)
# Proxy addresses: 127.0.<k>.<site> for the k-th cloud entry on a site.
ENTRIES_PER_SITE = 3


class DelayProxy(object):
    """Loopback TCP proxy: 127.0.k.N:port -> 127.0.0.N:port; what a client sends arrives ``latency`` seconds later.

    A line with a fixed one-way delay: every write of the client is forwarded
    ``latency`` after it arrived, in order, without waiting for the writes
    before it (a request sent in two writes, headers then body, is delayed
    once, as on a real network).  Answers are not delayed.
    """

    def __init__(self, pairs, latency):
        self.pairs = pairs
        self.latency = latency
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.writes = 0

    async def _forward(self, queue, writer):
        while True:
            due, data = await queue.get()
            if data is None:
                break
            wait = due - self.loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()

    async def _pipe(self, reader, writer, delay):
        queue = asyncio.Queue()
        forward = asyncio.ensure_future(self._forward(queue, writer))
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                if delay:
                    self.writes += 1
                queue.put_nowait((self.loop.time() + (self.latency if delay else 0), data))
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            queue.put_nowait((0, None))
            try:
                await forward
            except (ConnectionError, asyncio.CancelledError):
                pass
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


# ------------------------------------------------------------------ servers

def ensure_servers(clouds_file, names, wanted):
    """At least ``wanted`` servers in the project, over the sites; returns what this made (to remove)."""
    import openstack.config  # pylint: disable=import-outside-toplevel
    config = openstack.config.OpenStackConfig(config_files=[clouds_file])
    conns = dict((n, openstack.connection.Connection(config=config.get_one(cloud=n))) for n in names)
    have = sum(len(list(c.compute.servers())) for c in conns.values())
    made = dict((n, {'servers': [], 'network': None}) for n in names)
    if have >= wanted:
        return conns, made
    print('making %d servers for the benchmark...' % (wanted - have), flush=True)
    for i in range(wanted - have):
        name = names[i % len(names)]
        conn = conns[name]
        if not made[name]['network']:
            net = conn.network.create_network(name='fedgpu-bench')
            conn.network.create_subnet(network_id=net.id, name='fedgpu-bench', ip_version=4, cidr='10.99.0.0/24')
            made[name]['network'] = net
        gpu = i < len(names)  # one GPU node per site
        flavor = conn.compute.find_flavor('g1.a100' if gpu else 'm1.tiny')
        image = conn.image.find_image('fedgpu-test-image')
        server = conn.compute.create_server(
            name='bench-%s-%d' % (name, i), flavor_id=flavor.id, image_id=image.id, networks=[{'uuid': made[name]['network'].id}],
            metadata={'fedgpu_cluster': 'bench', 'fedgpu_group': 'gpu' if gpu else 'cpu', 'fedgpu_index': str(i + 1)})
        made[name]['servers'].append(server)
    for name in names:
        for server in made[name]['servers']:
            conns[name].compute.wait_for_server(server, wait=120)
    return conns, made


def remove_servers(conns, made):
    for name, what in made.items():
        for server in what['servers']:
            conns[name].compute.delete_server(server)
        for server in what['servers']:
            conns[name].compute.wait_for_delete(server, wait=120)
        if what['network']:
            conns[name].network.delete_network(what['network'])


# ------------------------------------------------------------------ timing

def run_inventory(venv, source, env, extra=()):
    """Wall time of a whole ``ansible-inventory --list`` process, and its hosts (its output with ``extra`` options)."""
    cmd = [os.path.join(venv, 'bin', 'ansible-inventory'), '-i', source, '--list'] + list(extra)
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit('%s failed (rc %s):\n%s' % (' '.join(cmd), proc.returncode, proc.stderr[-3000:]))
    if extra:  # -vvv: messages among the JSON
        return elapsed, None, proc.stdout + proc.stderr
    hosts = len(json.loads(proc.stdout).get('_meta', {}).get('hostvars', {}))
    return elapsed, hosts, proc.stderr


def proxied_clouds(clouds, names, entries_per_site):
    """clouds.yaml entries that reach the sites through the proxy: ``entries_per_site`` clouds per site."""
    pairs = []
    out = {}
    for name in names:
        cloud = clouds[name]
        host = cloud['auth']['auth_url'].split('//', 1)[1].split(':', 1)[0]
        for k in range(1, entries_per_site + 1):
            proxy_host = '127.0.%d.%s' % (k, host.rsplit('.', 1)[1])
            entry = json.loads(json.dumps(cloud))
            entry['auth']['auth_url'] = entry['auth']['auth_url'].replace(host, proxy_host)
            entry['compute_endpoint_override'] = 'http://%s:8774/v2.1' % proxy_host
            entry['network_endpoint_override'] = 'http://%s:9696' % proxy_host
            entry['image_endpoint_override'] = 'http://%s:9292' % proxy_host
            entry['placement_endpoint_override'] = 'http://%s:8778' % proxy_host
            out[name if k == 1 else '%s-%d' % (name, k)] = entry
            pairs += [((proxy_host, port), (host, port)) for port in PORTS]
    return out, pairs


def write_yaml(yaml, path, data, mode=None):
    with open(path, 'w') as f:
        yaml.safe_dump(data, f)
    if mode:
        os.chmod(path, mode)
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--clouds-yaml', default=os.path.join(ROOT, '.cache', 'openstack-sites', 'clouds.yaml'))
    parser.add_argument('--latency', type=float, default=0.1, help='seconds added before each request (default 0.1)')
    parser.add_argument('--runs', type=int, default=5, help='rounds; figures are medians (default 5)')
    parser.add_argument('--servers', type=int, default=20, help='servers the project must have (default 20)')
    parser.add_argument('--keep-servers', action='store_true', help='leave the servers it made (for another run)')
    parser.add_argument('--bench-venv', default=os.path.join(ROOT, '.cache', 'bench-venv'))
    parser.add_argument('--venv', default=default_venv(), help='venv for our plugin (FEDGPU_VENV)')
    args = parser.parse_args()
    reexec_in_venv()
    import yaml  # pylint: disable=import-outside-toplevel
    started = sites_up(3) if not os.environ.get('FEDGPU_BENCH_NO_SITES') else False
    try:
        return run(args, yaml, keep_servers=started or args.keep_servers)
    finally:
        if started:
            sites_down()


def run(args, yaml, keep_servers=False):
    with open(args.clouds_yaml) as f:
        clouds = yaml.safe_load(f)['clouds']
    names = sorted(n for n in clouds if not n.endswith('-admin'))
    conns, made = ensure_servers(args.clouds_yaml, names, args.servers)
    try:
        return measure(args, yaml, clouds, names)
    finally:
        if not keep_servers:  # sites this run started are stopped (and wiped) anyway
            remove_servers(conns, made)


def measure(args, yaml, clouds, names):
    proxied, pairs = proxied_clouds(clouds, names, ENTRIES_PER_SITE)
    proxy = DelayProxy(pairs, args.latency)
    proxy.start()

    work = tempfile.mkdtemp(prefix='fedgpu-bench-')
    direct_file = write_yaml(yaml, os.path.join(work, 'direct-clouds.yaml'), {'clouds': dict((n, clouds[n]) for n in names)}, 0o600)
    proxied_file = write_yaml(yaml, os.path.join(work, 'clouds.yaml'), {'clouds': proxied}, 0o600)
    nine = sorted(proxied)
    fakes = [FakeCloud([nova_server('fake%d-%d' % (c, i), index=i) for i in range(1, 8)], page=1000, delay=args.latency).__enter__()
             for c in range(9)]
    fake_file = write_yaml(yaml, os.path.join(work, 'fake-clouds.yaml'), {'clouds': dict(('fake-%d' % i, f.cloud()) for i, f in enumerate(fakes))},
                           0o600)
    base = {'plugin': 'fedgpu.platform.openstack_federation', 'only_clusters': False, 'fail_on_errors': True}
    sources = {
        'bare': write_yaml(yaml, os.path.join(work, 'empty.yml'), {'all': {'hosts': {}}}),
        'ours_direct': write_yaml(yaml, os.path.join(work, 'direct.openstack_federation.yml'), dict(base, clouds_yaml=direct_file, clouds=names)),
        'ours': write_yaml(yaml, os.path.join(work, 'bench.openstack_federation.yml'), dict(base, clouds_yaml=proxied_file, clouds=names)),
        'ours_9': write_yaml(yaml, os.path.join(work, 'nine.openstack_federation.yml'), dict(base, clouds_yaml=proxied_file, clouds=nine)),
        'fake_3': write_yaml(yaml, os.path.join(work, 'fake3.openstack_federation.yml'), dict(
            base, clouds_yaml=fake_file, clouds=['fake-%d' % i for i in range(3)])),
        'fake_9': write_yaml(yaml, os.path.join(work, 'fake9.openstack_federation.yml'), dict(
            base, clouds_yaml=fake_file, clouds=['fake-%d' % i for i in range(9)])),
        'ours_cached': write_yaml(yaml, os.path.join(work, 'cached.openstack_federation.yml'), dict(
            base, clouds_yaml=proxied_file, clouds=names, cache=True, cache_plugin='ansible.builtin.jsonfile',
            cache_connection=os.path.join(work, 'cache'), cache_timeout=3600)),
        'peer': write_yaml(yaml, os.path.join(work, 'openstack.yml'), {
            'plugin': 'openstack.cloud.openstack', 'only_clouds': names, 'expand_hostvars': False, 'fail_on_errors': True, 'all_projects': False}),
    }
    cfg = os.path.join(work, 'ansible.cfg')
    with open(cfg, 'w') as f:
        f.write('[defaults]\n')
    collections = os.path.join(ROOT, '.cache', 'collections')
    if not os.path.exists(os.path.join(collections, 'ansible_collections', 'fedgpu', 'platform')):
        os.makedirs(os.path.join(collections, 'ansible_collections', 'fedgpu'), exist_ok=True)
        os.symlink(ROOT, os.path.join(collections, 'ansible_collections', 'fedgpu', 'platform'))
    env = dict((k, v) for k, v in os.environ.items() if not k.startswith('OS_'))
    env.update(ANSIBLE_CONFIG=cfg, ANSIBLE_INVENTORY_UNPARSED_FAILED='true', PYTHONWARNINGS='ignore', ANSIBLE_COLLECTIONS_PATH=collections)
    bench_venv = os.path.dirname(os.path.dirname(ensure_bench_venv(args.bench_venv)))
    peer_env = dict(env, ANSIBLE_COLLECTIONS_PATH=collections_path(os.path.join(args.venv, 'bin', 'python')) or '')
    variants = [  # (key, venv, source, env)
        ('bare', args.venv, sources['bare'], env),
        ('peer_direct', bench_venv, sources['peer'], dict(peer_env, OS_CLIENT_CONFIG_FILE=direct_file)),
        ('ours_direct', args.venv, sources['ours_direct'], env),
        ('peer', bench_venv, sources['peer'], dict(peer_env, OS_CLIENT_CONFIG_FILE=proxied_file)),
        ('ours', args.venv, sources['ours'], env),
        ('ours_cached', args.venv, sources['ours_cached'], env),
        ('ours_9', args.venv, sources['ours_9'], env),
        ('fake_3', args.venv, sources['fake_3'], env),
        ('fake_9', args.venv, sources['fake_9'], env),
        ('bare_peer_venv', bench_venv, sources['bare'], env),
    ]
    run_inventory(args.venv, sources['ours_cached'], env)  # fills the cache (and warms the file system cache)
    run_inventory(bench_venv, sources['peer'], dict(peer_env, OS_CLIENT_CONFIG_FILE=direct_file))
    times = dict((key, []) for key, _v, _s, _e in variants)
    hosts = {}
    for _round in range(args.runs):
        for key, venv, source, venv_env in variants:
            elapsed, n, _err = run_inventory(venv, source, venv_env)
            times[key].append(elapsed)
            hosts[key] = n
    med = dict((key, statistics.median(t)) for key, t in times.items())
    best = dict((key, min(t)) for key, t in times.items())
    # Where the time goes: per cloud, from our -vvv lines, at the added latency.
    phases = {}
    for key in ('ours', 'ours_9', 'fake_3', 'fake_9'):
        _elapsed, _n, err = run_inventory(args.venv, sources[key], env, ['-vvv'])
        phases[key] = {
            'clouds': [dict(cloud=m.group(1), token_s=float(m.group(2)), servers_s=float(m.group(3)))
                       for m in re.finditer(r'cloud (\S+)(?: \(\S+\))? \([^)]*\): token ([0-9.]+)s, servers ([0-9.]+)s', err)],
            'query_s': float(next(iter(re.findall(r'clouds queried in ([0-9.]+)s', err)), 'nan')),
        }
    result = {
        'clouds': names, 'clouds_9': nine, 'latency_s': args.latency, 'runs': args.runs, 'hosts': hosts,
        'median_s': med, 'best_s': best, 'times_s': times, 'phases': phases, 'proxied_client_writes': proxy.writes,
        'ratio_direct': med['peer_direct'] / med['ours_direct'], 'ratio': med['peer'] / med['ours'],
        'cached_above_bare_s': med['ours_cached'] - med['bare'], 'nine_vs_three_s': med['ours_9'] - med['ours'],
        'ratio_best': best['peer'] / best['ours'], 'cached_above_bare_best_s': best['ours_cached'] - best['bare'],
    }
    result['fake_nine_vs_three_s'] = med['fake_9'] - med['fake_3']
    for fake in fakes:
        fake.__exit__(None, None, None)
    result['goal_ratio_met'] = result['ratio'] >= 3
    result['goal_cached_met'] = result['cached_above_bare_s'] <= 0.1
    report(result, args)
    out_dir = os.path.join(ROOT, 'benchmarks', 'results')
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, 'inventory.json'), 'w') as f:
        json.dump(result, f, indent=2)
    shutil.rmtree(work, ignore_errors=True)  # its clouds.yaml files hold the test sites' passwords
    return 0


def report(r, args):
    med, best, hosts = r['median_s'], r['best_s'], r['hosts']
    lat = '+%.0f ms' % (args.latency * 1000)
    print('ansible-inventory --list, whole process, median (best) of %d interleaved runs; sites: %s' % (args.runs, ', '.join(r['clouds'])))
    rows = [
        ('bare ansible-inventory (empty static inventory)', 'bare', ''),
        ('  the same in the openstack.cloud venv', 'bare_peer_venv', ''),
        ('openstack.cloud.openstack, 3 clouds, direct', 'peer_direct', ''),
        ('fedgpu openstack_federation, 3 clouds, direct', 'ours_direct', '%.2fx faster' % r['ratio_direct']),
        ('openstack.cloud.openstack, 3 clouds, %s' % lat, 'peer', ''),
        ('fedgpu openstack_federation, 3 clouds, %s' % lat, 'ours', '%.2fx faster' % r['ratio']),
        ('fedgpu openstack_federation, 9 clouds, %s' % lat, 'ours_9', '%+.3f s vs 3 clouds' % r['nine_vs_three_s']),
        ('fedgpu openstack_federation, 3 stand-in clouds, %s' % lat, 'fake_3', ''),
        ('fedgpu openstack_federation, 9 stand-in clouds, %s' % lat, 'fake_9', '%+.3f s vs 3 clouds' % r['fake_nine_vs_three_s']),
        ('fedgpu openstack_federation, cache warm', 'ours_cached', '%+.3f s vs bare' % r['cached_above_bare_s']),
    ]
    for label, key, note in rows:
        count = hosts[key] if key not in ('bare', 'bare_peer_venv') else '-'
        print('  %-56s %6.3f s (%.3f)  %3s hosts  %s' % (label, med[key], best[key], count, note))
    print('goals: >= 3x faster than openstack.cloud at %s: %s (%.2fx); cache warm within 0.1 s of bare: %s (%+.3f s)' % (
        lat, 'met' if r['goal_ratio_met'] else 'NOT met', r['ratio'], 'met' if r['goal_cached_met'] else 'NOT met', r['cached_above_bare_s']))
    print('  best runs (least disturbed by the load of the machine): %.2fx; cache warm %+.3f s vs bare' % (
        r['ratio_best'], r['cached_above_bare_best_s']))
    print('where our time goes (%s): bare start %.3f s; plugin, config and cache fixed cost %.3f s (cached - bare); query %.3f s (3 clouds - cached)'
          % (lat, med['bare'], med['ours_cached'] - med['bare'], med['ours'] - med['ours_cached']))
    for key, label in (('ours', '3 clouds'), ('ours_9', '9 clouds'), ('fake_3', '3 stand-ins'), ('fake_9', '9 stand-ins')):
        ph = r['phases'][key]
        per = ', '.join('%s %.3f+%.3f' % (c['cloud'], c['token_s'], c['servers_s']) for c in ph['clouds'])
        print('  %s: all clouds in parallel %.3f s; per cloud token+servers (s): %s' % (label, ph['query_s'], per))


if __name__ == '__main__':
    sys.exit(main())

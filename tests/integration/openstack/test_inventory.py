# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""fedgpu.platform.openstack_federation inventory against two real OpenStack sites."""
import json
import os
import subprocess

import pytest
import yaml

from osenv import BIN, CLOUDS_YAML, IMAGE, SITE_A, SITE_B, SITES_SH, ansible_env, cluster_servers, run_cluster, run_playbook, tagged


def ok(result):
    assert not result.get('failed'), result.get('msg')
    return result


def inv_groups(cpu=1):
    return [
        {'name': 'frontend', 'flavor': 'm1.tiny', 'image': IMAGE, 'site': SITE_A},
        {'name': 'gpu', 'count': 1, 'flavor': 'g1.a100', 'image': IMAGE, 'site': SITE_B},
        {'name': 'cpu', 'count': cpu, 'flavor': 'm1.small', 'image': IMAGE, 'site': SITE_A},
    ]


CLUSTER_VARS = {
    'fedgpu_cluster_name': 'inv',
    'fedgpu_clouds_yaml': CLOUDS_YAML,
    'fedgpu_clouds': [{'name': SITE_A}, {'name': SITE_B}],
    'fedgpu_node_groups': inv_groups(),
    'fedgpu_ssh_cidrs': ['192.0.2.0/24'],
}


@pytest.fixture(scope='module')
def clusters(sites, conns):
    """Cluster 'inv' made by playbooks/provision.yml, and another cluster."""
    proc = run_playbook('provision.yml', CLUSTER_VARS)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert 'inv-gpu-1 on site-b: 10.42.2.' in proc.stdout and '1 x A100 GPU' in proc.stdout
    ok(run_cluster({'name': 'other', 'groups': [{'name': 'solo', 'flavor': 'm1.tiny', 'image': IMAGE, 'site': SITE_B}]}))
    yield
    # Teardown asks for the cluster's name first.
    proc = run_playbook('teardown.yml', CLUSTER_VARS)
    assert proc.returncode != 0 and 'Confirm with -e fedgpu_teardown_confirm=inv' in proc.stdout
    assert len(cluster_servers(conns, 'inv')) == 3
    proc = run_playbook('teardown.yml', dict(CLUSTER_VARS, fedgpu_teardown_confirm='inv'))
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert 'Removed 3 servers' in proc.stdout
    assert cluster_servers(conns, 'inv') == {} and tagged(conns, 'inv') == {}
    ok(run_cluster({'name': 'other', 'state': 'absent'}))


def write_inventory(tmp_path, **extra):
    config = {
        'plugin': 'fedgpu.platform.openstack_federation',
        'clouds_yaml': CLOUDS_YAML,
        'clouds': [SITE_A, {'name': SITE_B, 'region': 'RegionB'}],
        'clusters': ['inv'],
        'jump_user': 'ubuntu',
        'compose': {'ansible_user': "'ubuntu'", 'node_label': "fedgpu_group ~ '-' ~ fedgpu_index"},
        'groups': {'has_gpu': 'fedgpu_gpu.count >= 1'},
        'keyed_groups': [{'key': 'fedgpu_flavor', 'prefix': 'flavor'}, {'key': 'node_label', 'prefix': 'label'}],
    }
    config.update(extra)
    path = tmp_path / 'test.openstack_federation.yml'
    path.write_text(yaml.safe_dump(config))
    return str(path)


def inventory(path, *args, env=None):
    proc = subprocess.run([os.path.join(BIN, 'ansible-inventory'), '-i', path, '--list'] + list(args), capture_output=True, text=True,
                          env=ansible_env(env), check=False)
    return proc


def plain(value):
    """Undo ansible-inventory's marking of untrusted strings."""
    if isinstance(value, dict):
        if set(value) == {'__ansible_unsafe'}:
            return value['__ansible_unsafe']
        return dict((k, plain(v)) for k, v in value.items())
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def listing(path, *args, env=None):
    proc = inventory(path, *args, env=env)
    assert proc.returncode == 0, proc.stderr
    data = plain(json.loads(proc.stdout))
    hosts = data.get('_meta', {}).get('hostvars', {})
    groups = dict((k, sorted(v.get('hosts', []))) for k, v in data.items() if k != '_meta')
    return hosts, groups, proc.stderr


def test_groups_hostvars_and_jump_host(clusters, conns, tmp_path):
    hosts, groups, _err = listing(write_inventory(tmp_path))
    assert sorted(hosts) == ['inv-cpu-1', 'inv-frontend-1', 'inv-gpu-1']
    assert groups['site_site_a'] == ['inv-cpu-1', 'inv-frontend-1']
    assert groups['site_site_b'] == ['inv-gpu-1']
    assert groups['cluster_inv'] == sorted(hosts)
    assert groups['frontend'] == ['inv-frontend-1'] and groups['gpu'] == ['inv-gpu-1'] and groups['cpu'] == ['inv-cpu-1']
    assert groups['gpu_A100'] == ['inv-gpu-1']
    assert groups['has_gpu'] == ['inv-gpu-1']
    assert groups['flavor_m1_small'] == ['inv-cpu-1'] and groups['flavor_g1_a100'] == ['inv-gpu-1']
    # keyed_groups see what compose made (documented order).
    assert groups['label_gpu_1'] == ['inv-gpu-1']

    fe = hosts['inv-frontend-1']
    server = conns[SITE_A].compute.get_server(fe['fedgpu_server_id'])
    fixed = [a['addr'] for a in server.addresses['fedgpu-inv'] if a['OS-EXT-IPS:type'] == 'fixed']
    floating = [a['addr'] for a in server.addresses['fedgpu-inv'] if a['OS-EXT-IPS:type'] == 'floating']
    assert fe['fedgpu_private_ip'] == fixed[0] and fe['fedgpu_public_ip'] == floating[0]
    assert fe['ansible_host'] == floating[0] and 'ansible_ssh_common_args' not in fe
    assert fe['fedgpu_frontend'] is True and fe['ansible_user'] == 'ubuntu'

    gpu = hosts['inv-gpu-1']
    server = conns[SITE_B].compute.get_server(gpu['fedgpu_server_id'])
    assert gpu['ansible_host'] == server.addresses['fedgpu-inv'][0]['addr'] == gpu['fedgpu_private_ip']
    assert gpu['fedgpu_public_ip'] is None
    assert gpu['ansible_ssh_common_args'] == '-o ProxyJump=ubuntu@%s' % floating[0]
    assert gpu['fedgpu_site'] == SITE_B and gpu['fedgpu_region'] == 'RegionB'
    assert gpu['fedgpu_gpu'] == {'count': 1, 'model': 'A100'} and gpu['fedgpu_flavor'] == 'g1.a100'
    assert gpu['fedgpu_cluster'] == 'inv' and gpu['fedgpu_group'] == 'gpu' and gpu['fedgpu_index'] == 1

    # No cluster filter: the other cluster shows up too; a metadata filter narrows.
    hosts, groups, _err = listing(write_inventory(tmp_path, clusters=[]))
    assert 'other-solo-1' in hosts and groups['cluster_other'] == ['other-solo-1']
    hosts, _groups, _err = listing(write_inventory(tmp_path, clusters=[], metadata={'fedgpu_group': 'solo'}))
    assert sorted(hosts) == ['other-solo-1']


def test_cache_and_one_site_down(clusters, tmp_path):
    cache_dir = tmp_path / 'cache'
    cached = write_inventory(tmp_path, cache=True, cache_plugin='ansible.builtin.jsonfile', cache_connection=str(cache_dir), cache_timeout=3600,
                             timeout=5)
    hosts, _groups, _err = listing(cached)
    assert sorted(hosts) == ['inv-cpu-1', 'inv-frontend-1', 'inv-gpu-1']
    files = os.listdir(str(cache_dir))
    assert len(files) == 1
    cache_file = os.path.join(str(cache_dir), files[0])
    mtime = os.stat(cache_file).st_mtime_ns

    # Site B's entry point (Keystone) stops answering.
    subprocess.run(['bash', SITES_SH, 'stop-site', SITE_B, 'keystone'], check=True)
    try:
        # Cache hit: no query (site B is down, yet its node is there), and
        # reading the cache does not rewrite it (its lifetime is not extended).
        hosts, _groups, err = listing(cached)
        assert sorted(hosts) == ['inv-cpu-1', 'inv-frontend-1', 'inv-gpu-1'] and 'cannot be queried' not in err
        assert os.stat(cache_file).st_mtime_ns == mtime
        # Without the cache: site B is reported and skipped, site A answers.
        hosts, _groups, err = listing(cached, '--flush-cache')
        assert sorted(hosts) == ['inv-cpu-1', 'inv-frontend-1']
        assert 'cloud site-b (RegionB) cannot be queried' in ' '.join(err.split()) and 'skipped' in err
        # Strict mode fails instead.
        proc = inventory(write_inventory(tmp_path, timeout=5, fail_on_errors=True))
        assert 'inv-cpu-1' not in proc.stdout and 'cloud site-b (RegionB) cannot be queried' in ' '.join(proc.stderr.split())
    finally:
        subprocess.run(['bash', SITES_SH, 'start-site', SITE_B], check=True)
    hosts, _groups, _err = listing(write_inventory(tmp_path))
    assert 'inv-gpu-1' in hosts

# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/deploy.yml end to end: cloud API -> inventory -> configuration.

The test sites' servers are records without machines; StandIns gives each
ACTIVE server a systemd container of the same name, and the test inventory
(the real openstack_federation plugin, with a ``compose`` override of the
connection only) points Ansible at it.  deploy.yml provisions on both sites,
reads the servers into the inventory, waits for them and applies site.yml to
the groups that the plugin's group_map gave them; a second run changes
nothing; growing the GPU group by one configures the new node, which joins
the HTCondor pool with its MIG devices, and changes the others only where
they list their peers; shrinking it back deletes the server and the central
manager forgets the execute point at once (its ads invalidated, not left to
expire), again changing the others only where they list their peers.
"""
import json
import os
import re
import subprocess
import tempfile
import time

import pytest
import yaml

from osenv import BIN, CLOUDS_YAML, HERE, IMAGE, ROOT, SITE_A, SITE_B, ansible_env, cluster_servers, run_playbook
from standins import StandIns

CLUSTER = 'dep'
# The test's table: the front end and workers of the HTCondor pool (the full
# table of inventories/openstack also brings storage, the database and the hub,
# which the demo stage runs).
GROUP_MAP = {
    'frontend': ['platform', 'htcondor_central_manager', 'htcondor_access_point'],
    'cpu': ['platform', 'workers', 'htcondor_execute'],
    'gpu': ['platform', 'workers', 'gpu_workers', 'htcondor_execute'],
}
# What growing the pool may change on the nodes that were there: their lists of
# peers (names, and the firewall's set of platform addresses, reloaded).
PEER_TASKS = {'fedgpu.platform.common : List every platform node in /etc/hosts', 'fedgpu.platform.common : Write the firewall ruleset',
              'fedgpu.platform.common : Reload nftables'}
# What shrinking it may change besides: the central manager invalidates the departed node's ads.
PRUNE_TASKS = {'fedgpu.platform.htcondor : Invalidate the ads of each departed host'}


def description(gpus):
    return {
        'fedgpu_cluster_name': CLUSTER,
        'fedgpu_clouds_yaml': CLOUDS_YAML,
        'fedgpu_clouds': [{'name': SITE_A}, {'name': SITE_B}],
        'fedgpu_node_groups': [
            {'name': 'frontend', 'flavor': 'm1.small', 'image': IMAGE, 'site': SITE_A},
            {'name': 'cpu', 'count': 1, 'flavor': 'm1.small', 'image': IMAGE, 'site': SITE_B},
            {'name': 'gpu', 'count': gpus, 'flavor': 'g1.a100', 'image': IMAGE, 'site': SITE_B},
        ],
        'fedgpu_ssh_cidrs': ['192.0.2.0/24'],
        'fedgpu_deploy_connect_timeout': 120,
    }


@pytest.fixture(scope='module')
def inventory_dir(sites, tmp_path_factory):
    path = tmp_path_factory.mktemp('deploy-inventory')
    (path / 'dep.openstack_federation.yml').write_text(yaml.safe_dump({
        'plugin': 'fedgpu.platform.openstack_federation',
        'clouds_yaml': CLOUDS_YAML,
        'clouds': [SITE_A, SITE_B],
        'clusters': [CLUSTER],
        'fail_on_errors': True,
        'group_map': GROUP_MAP,
        # The stand-ins are containers named as the servers: only the connection changes.
        'compose': {'ansible_connection': "'community.docker.docker'", 'ansible_host': 'inventory_hostname',
                    'ansible_python_interpreter': "'/usr/bin/python3'"},
    }))
    os.symlink(os.path.join(HERE, 'deploy_inventory', 'group_vars'), str(path / 'group_vars'))
    return str(path)


def deploy(inventory_dir, gpus, standins):
    """ansible-playbook -i <the test inventory> playbooks/deploy.yml, as an operator runs it.

    Stopped at once if the stand-in hypervisor fails (it would wait for servers that never answer).
    """
    path = inventory_dir.rstrip('/') + '-description.json'
    with open(path, 'w') as f:
        json.dump(description(gpus), f)
    with tempfile.TemporaryFile('w+') as out:
        proc = subprocess.Popen([os.path.join(BIN, 'ansible-playbook'), '-i', inventory_dir, '-e', '@' + path,
                                 os.path.join(ROOT, 'playbooks', 'deploy.yml')], stdout=out, stderr=subprocess.STDOUT, text=True, env=ansible_env())
        while proc.poll() is None:
            if standins.errors:
                proc.kill()
                proc.wait()
                raise standins.errors[0]
            time.sleep(1)
        out.seek(0)
        text = out.read()
    # The whole output, for a failure's reader (pytest shows the tail).
    with open(os.path.join(os.path.dirname(inventory_dir), 'deploy-%d.log' % len(os.listdir(os.path.dirname(inventory_dir)))), 'w') as f:
        f.write(text)
    return subprocess.CompletedProcess(proc.args, proc.returncode, text, '')


def recap(stdout):
    """{host: {ok, changed, failed, ...}} from the PLAY RECAP."""
    out = {}
    for host, counts in re.findall(r'^(\S+)\s+:\s+(ok=.*)$', stdout.split('PLAY RECAP', 1)[-1], re.M):
        out[host] = {k: int(v) for k, v in re.findall(r'(\w+)=(\d+)', counts)}
    return out


def changed_tasks(stdout):
    """{host: [task names that changed it]} from the default callback's output."""
    out = {}
    task = None
    for line in stdout.splitlines():
        m = re.match(r'^(?:TASK|RUNNING HANDLER) \[(.*)\]', line)
        if m:
            task = m.group(1)
            continue
        m = re.match(r'^changed: \[([^\]]+?)(?: -> [^\]]+)?\]', line)
        if m:
            out.setdefault(m.group(1), []).append(task)
    return out


def condor_status(host):
    proc = subprocess.run(['docker', 'exec', host, 'condor_status', '-af', 'Machine', 'GPUs'], capture_output=True, text=True, check=False)
    return proc.stdout + proc.stderr


def wait_status(host, want, timeout=90):
    deadline = time.time() + timeout
    while True:
        out = condor_status(host)
        if want(out) or time.time() > deadline:
            return out
        time.sleep(3)


@pytest.mark.slow
def test_deploy_provisions_configures_grows_and_shrinks(sites, conns, inventory_dir):
    with StandIns(conns, CLUSTER) as standins:
        try:
            first = deploy(inventory_dir, 0, standins)
            assert first.returncode == 0, first.stdout[-6000:]
            hosts = recap(first.stdout)
            assert set(hosts) == {'localhost', 'dep-frontend-1', 'dep-cpu-1'}, hosts
            assert all(c['failed'] == 0 and c['unreachable'] == 0 for c in hosts.values()), hosts
            assert hosts['dep-cpu-1']['changed'] > 0
            # The execute point joined the pool that the front end runs.
            out = wait_status('dep-frontend-1', lambda o: 'dep-cpu-1' in o)
            assert 'dep-cpu-1' in out, out

            again = deploy(inventory_dir, 0, standins)
            assert again.returncode == 0, again.stdout[-6000:]
            assert {h: c['changed'] for h, c in recap(again.stdout).items()} == {'localhost': 0, 'dep-frontend-1': 0, 'dep-cpu-1': 0}, \
                changed_tasks(again.stdout)

            grown = deploy(inventory_dir, 1, standins)
            assert grown.returncode == 0, grown.stdout[-6000:]
            hosts = recap(grown.stdout)
            assert set(hosts) == {'localhost', 'dep-frontend-1', 'dep-cpu-1', 'dep-gpu-1'}, hosts
            changed = changed_tasks(grown.stdout)
            assert len(changed.get('dep-gpu-1', [])) > 10, changed.get('dep-gpu-1')
            for old in ('dep-frontend-1', 'dep-cpu-1'):
                assert set(changed.get(old, [])) <= PEER_TASKS, (old, changed.get(old))
            # The new node joined the pool with the seven MIG devices that its emulated A100 was split into.
            out = wait_status('dep-frontend-1', lambda o: re.search(r'dep-gpu-1\S*\s+7\b', o))
            assert re.search(r'dep-gpu-1\S*\s+7\b', out), out
            assert set(cluster_servers(conns, CLUSTER)) == {'dep-frontend-1', 'dep-cpu-1', 'dep-gpu-1'}

            shrunk = deploy(inventory_dir, 0, standins)
            assert shrunk.returncode == 0, shrunk.stdout[-6000:]
            hosts = recap(shrunk.stdout)
            assert set(hosts) == {'localhost', 'dep-frontend-1', 'dep-cpu-1'}, hosts
            changed = changed_tasks(shrunk.stdout)
            assert set(changed.get('dep-cpu-1', [])) <= PEER_TASKS, changed.get('dep-cpu-1')
            assert set(changed.get('dep-frontend-1', [])) <= PEER_TASKS | PRUNE_TASKS, changed.get('dep-frontend-1')
            assert 'fedgpu.platform.htcondor : Invalidate the ads of each departed host' in changed.get('dep-frontend-1', []), changed
            assert set(cluster_servers(conns, CLUSTER)) == {'dep-frontend-1', 'dep-cpu-1'}
            # Gone from the pool when the run ends (an ad left to expire stays for minutes).
            out = condor_status('dep-frontend-1')
            assert 'dep-cpu-1' in out and 'dep-gpu-1' not in out, out
        finally:
            proc = run_playbook('teardown.yml', dict(description(0), fedgpu_teardown_confirm=CLUSTER))
            assert proc.returncode == 0, proc.stdout[-3000:]
        standins.stop()
        started = [name for _t, event, names in standins.log if event == 'started' for name in names]
        assert sorted(started) == ['dep-cpu-1', 'dep-frontend-1', 'dep-gpu-1'], standins.log
        # The shrink deleted the GPU node's server (its stand-in went with it) before the teardown took the rest.
        removed = [names for _t, event, names in standins.log if event == 'removed']
        assert removed and removed[0] == ['dep-gpu-1'], standins.log

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""fedgpu.platform.openstack_federation_cluster: input checks, and whole runs against two fake sites."""
import contextlib
import io
import json
import os
import subprocess
import sys

import pytest
import yaml
from ansible.module_utils.testing import patch_module_args

from ansible_collections.fedgpu.platform.plugins.modules import openstack_federation_cluster as mod
from ansible_collections.fedgpu.platform.tests.unit.plugins.fake_openstack import FakeConnection

FIXTURES = os.path.join(os.path.dirname(__file__), '..', '..', 'fixtures', 'openstack_federation')
with open(os.path.join(FIXTURES, 'validate.yml')) as handle:
    CASES = yaml.safe_load(handle)

GROUP_DEFAULTS = {'count': 1, 'flavor': None, 'vcpus': None, 'ram': None, 'gpus': None, 'gpu_model': None, 'volume_size': None,
                  'site': None, 'sites': None, 'public_ip': None, 'metadata': {}}
KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHk0Hq1oM3bSmsyJ3mGx2i8Q0cJ0h6c3nF0vG8pIbK0n ops'
GPU_FLAVOR = {'name': 'g1.a100', 'vcpus': 4, 'ram': 8192, 'extra_specs': {'resources:CUSTOM_FAKE_GPU': '1', 'gpu:model': 'A100'}}
CREATING = ('create_', 'delete_', 'set_tags', 'post', 'add_interface', 'remove_interface')


def params(**over):
    base = {'name': 'ml', 'state': 'present', 'clouds': [{'name': 'a'}, {'name': 'b'}],
            'groups': [{'name': 'frontend', 'flavor': 'm1.small', 'image': 'img', 'site': 'a'},
                       {'name': 'gpu', 'count': 2, 'gpus': 1, 'image': 'img', 'sites': ['b', 'a']}]}
    base.update(over)
    base['groups'] = [dict(GROUP_DEFAULTS, **g) for g in base['groups']]
    return base


@pytest.mark.parametrize('case', CASES, ids=[c['id'] for c in CASES])
def test_validate_spec(case):
    errors = mod.validate_spec(params(**case['params']))
    if not case['errors']:
        assert errors == []
    for expected in case['errors']:
        assert any(expected in e for e in errors), (expected, errors)


def test_public_ip_defaults_to_the_frontend_only():
    assert mod.public_ip_of({'name': 'frontend', 'public_ip': None}, 'frontend') is True
    assert mod.public_ip_of({'name': 'gpu', 'public_ip': None}, 'frontend') is False
    assert mod.public_ip_of({'name': 'gpu', 'public_ip': True}, 'frontend') is True
    assert mod.public_ip_of({'name': 'bastion', 'public_ip': None}, 'bastion') is True


def test_default_cidr_per_site_position():
    assert mod.default_cidr(1) == '10.42.1.0/24'
    assert mod.default_cidr(2) == '10.42.2.0/24'


# ------------------------------------------------------------ whole runs

@pytest.fixture
def sites(monkeypatch):
    """Two fake sites; the module connects to them instead of clouds.yaml's."""
    clouds = {
        'a': FakeConnection('a', region='RegionOne', flavors=[{'name': 'm1.small', 'vcpus': 2, 'ram': 2048}, GPU_FLAVOR]),
        'b': FakeConnection('b', region='RegionTwo', flavors=[{'name': 'm1.small', 'vcpus': 2, 'ram': 2048}, GPU_FLAVOR]),
    }

    def connect(cloud, region=None, clouds_yaml=None, timeout=None):
        return clouds[cloud]

    monkeypatch.setattr(mod, 'connect', connect)
    return clouds


def run(args, check=False, diff=False):
    """The module's main() in this process; its JSON result."""
    args = dict(args, _ansible_check_mode=check, _ansible_diff=diff)
    args.setdefault('clouds', [{'name': 'a'}, {'name': 'b'}])
    out = io.StringIO()
    with patch_module_args(args), contextlib.redirect_stdout(out):
        with pytest.raises(SystemExit):
            mod.main()
    return json.loads(out.getvalue())


def ok(result):
    assert not result.get('failed'), result.get('msg')
    return result


def changing_calls(*conns):
    return [name for conn in conns for name in conn.changes() if name.split('.')[1].startswith(CREATING)]


def cluster_args(gpu=2, cpu=1):
    return {'name': 'ml', 'ssh_public_key': KEY, 'groups': [
        {'name': 'frontend', 'flavor': 'm1.small', 'image': 'img', 'site': 'a'},
        {'name': 'gpu', 'count': gpu, 'gpus': 1, 'gpu_model': 'a100', 'image': 'img', 'sites': ['b', 'a']},
        {'name': 'cpu', 'count': cpu, 'vcpus': 2, 'image': 'img'},
    ]}


@pytest.mark.parametrize('group, expected', [
    ({'flavor': 'm1.small', 'vcpus': 2}, 'parameters are mutually exclusive: flavor|vcpus found in groups'),
    ({'flavor': 'm1.small', 'gpu_model': 'A100'}, 'parameters are mutually exclusive: flavor|gpu_model found in groups'),
    ({}, 'one of the following is required: flavor, vcpus, ram, gpus, gpu_model found in groups'),
    ({'flavor': 'm1.small', 'site': 'a', 'sites': ['b']}, 'parameters are mutually exclusive: site|sites found in groups'),
])
def test_argument_spec_rules(sites, group, expected):
    result = run({'name': 'ml', 'groups': [dict(group, name='w', image='img')]})
    assert result['failed'] and expected in result['msg']
    assert changing_calls(*sites.values()) == []


def test_groups_required_when_present(sites):
    result = run({'name': 'ml'})
    assert result['failed'] and 'state is present but all of the following are missing: groups' in result['msg']
    assert ok(run({'name': 'ml', 'state': 'absent'}))['changed'] is False


def test_unknown_site_fails_before_any_call(sites):
    result = run({'name': 'ml', 'groups': [{'name': 'w', 'flavor': 'm1.small', 'image': 'img', 'site': 'z'}]})
    assert result['failed'] and "group 'w': unknown site 'z' (clouds: a, b)" in result['msg']
    assert result['changed'] is False
    assert all(conn.calls == [] for conn in sites.values())


def test_check_mode_plans_and_creates_nothing(sites):
    planned = ok(run(cluster_args(), check=True, diff=True))
    assert planned['changed'] is True
    assert planned['created'] == ['ml-cpu-1', 'ml-frontend-1', 'ml-gpu-1', 'ml-gpu-2']
    assert planned['diff'] == {'before': {'nodes': []}, 'after': {'nodes': planned['created']}}
    assert changing_calls(*sites.values()) == []
    assert [(n['name'], n['site'], n['id'], n['flavor']) for n in planned['nodes']] == [
        ('ml-cpu-1', 'a', None, 'm1.small'), ('ml-frontend-1', 'a', None, 'm1.small'),
        ('ml-gpu-1', 'b', None, 'g1.a100'), ('ml-gpu-2', 'b', None, 'g1.a100')]
    assert planned['sites']['a']['changes'][:3] == ['network', 'subnet', 'router']

    applied = ok(run(cluster_args(), diff=True))
    assert applied['created'] == planned['created']
    assert [(n['name'], n['site']) for n in applied['nodes']] == [(n['name'], n['site']) for n in planned['nodes']]
    for name in ('a', 'b'):
        assert applied['sites'][name]['changes'] == planned['sites'][name]['changes'], name


def test_provision_result_rerun_scale_and_teardown(sites):
    result = ok(run(cluster_args()))
    assert result['changed'] is True and result['removed'] == [] and result['rescheduled'] == []
    nodes = dict((n['name'], n) for n in result['nodes'])
    front = nodes['ml-frontend-1']
    assert front['site'] == 'a' and front['region'] == 'RegionOne' and front['frontend'] is True and front['status'] == 'ACTIVE'
    assert front['public_ip'] and front['private_ip']
    gpu = nodes['ml-gpu-1']
    assert gpu['site'] == 'b' and gpu['region'] == 'RegionTwo' and gpu['public_ip'] is None
    assert gpu['gpu'] == {'count': 1, 'model': 'A100'} and gpu['flavor'] == 'g1.a100'
    # Server metadata, security groups and key pair as created.
    made = sites['a'].created('server')
    front_attrs = next(a for a in made if a['name'] == 'ml-frontend-1')
    assert front_attrs['metadata'] == {'fedgpu_cluster': 'ml', 'fedgpu_group': 'frontend', 'fedgpu_index': '1', 'fedgpu_site': 'a',
                                       'fedgpu_frontend': 'true'}
    assert front_attrs['security_groups'] == [{'name': 'fedgpu-ml-nodes'}, {'name': 'fedgpu-ml-frontend'}]
    assert front_attrs['key_name'] == 'fedgpu-ml'
    # The sites part of the result.
    site_a = result['sites']['a']
    net = sites['a'].network
    assert site_a['network_id'] == net.networks(tags=['fedgpu-cluster:ml'])[0].id
    assert site_a['router_id'] == net.routers(tags=['fedgpu-cluster:ml'])[0].id
    assert sorted(site_a['security_groups']) == ['frontend', 'nodes'] and site_a['cidr'] == '10.42.1.0/24'
    assert result['sites']['b']['cidr'] == '10.42.2.0/24'

    # A re-run changes nothing and calls nothing that changes.
    for conn in sites.values():
        conn.calls[:] = []
    again = ok(run(cluster_args()))
    assert again['changed'] is False and again['created'] == [] and again['nodes'] == result['nodes']
    assert changing_calls(*sites.values()) == []

    # Scaling: one GPU node less, two CPU nodes more; the kept servers stay.
    scaled = ok(run(cluster_args(gpu=1, cpu=3)))
    assert scaled['removed'] == ['ml-gpu-2'] and scaled['created'] == ['ml-cpu-2', 'ml-cpu-3']
    assert dict((n['name'], n['id']) for n in scaled['nodes'])['ml-gpu-1'] == gpu['id']

    # Teardown, check mode first; a bystander cluster stays.
    bystander = ok(run({'name': 'other', 'groups': [{'name': 'solo', 'flavor': 'm1.small', 'image': 'img', 'site': 'a'}]}))
    for conn in sites.values():
        conn.calls[:] = []
    preview = ok(run({'name': 'ml', 'state': 'absent'}, check=True))
    assert preview['changed'] is True and preview['removed'] == ['ml-cpu-1', 'ml-cpu-2', 'ml-cpu-3', 'ml-frontend-1', 'ml-gpu-1']
    assert changing_calls(*sites.values()) == []
    gone = ok(run({'name': 'ml', 'state': 'absent'}))
    assert gone['removed'] == preview['removed'] and gone['nodes'] == []
    for name in ('a', 'b'):
        assert gone['sites'][name]['changes'] == preview['sites'][name]['changes']
    assert [s.name for conn in sites.values() for s in conn.compute.servers()] == ['other-solo-1']
    assert bystander['nodes'][0]['id'] == sites['a'].compute.servers()[0].id
    assert sites['a'].network.networks(tags=['fedgpu-cluster:ml']) == [] and sites['a'].network.networks(tags=['fedgpu-cluster:other'])
    assert ok(run({'name': 'ml', 'state': 'absent'}))['changed'] is False


def test_failed_boot_is_rescheduled_on_the_next_site(sites):
    sites['b'].fail_boots = 1
    args = {'name': 'ml', 'groups': [{'name': 'gpu', 'count': 2, 'flavor': 'g1.a100', 'image': 'img', 'sites': ['b', 'a']}]}
    result = ok(run(dict(args, parallelism=1)))
    assert sorted((n['name'], n['site']) for n in result['nodes']) == [('ml-gpu-1', 'a'), ('ml-gpu-2', 'b')]
    assert result['rescheduled'] == [{'name': 'ml-gpu-1', 'site': 'b', 'error': 'No valid host was found.'}]
    # The failed server is gone; site a, not planned, got the network when the node fell back to it.
    assert [s.status for s in sites['b'].compute.servers()] == ['ACTIVE']
    assert result['sites']['a']['changes'][:2] == ['network', 'subnet'] and result['sites']['a']['network_id']


def test_refused_boot_is_rescheduled_too(sites):
    sites['a'].refuse_boots = 1
    result = ok(run({'name': 'ml', 'groups': [{'name': 'cpu', 'flavor': 'm1.small', 'image': 'img'}]}))
    assert [(n['name'], n['site']) for n in result['nodes']] == [('ml-cpu-1', 'b')]
    assert result['rescheduled'][0]['site'] == 'a' and 'Quota exceeded' in result['rescheduled'][0]['error']


def test_node_that_no_site_boots_fails_and_keeps_the_others(sites):
    sites['a'].fail_boots = 5
    sites['b'].fail_boots = 1
    args = {'name': 'ml', 'parallelism': 1, 'groups': [{'name': 'gpu', 'count': 2, 'flavor': 'g1.a100', 'image': 'img', 'sites': ['b', 'a']}]}
    result = run(args)
    assert result['failed'] and result['changed'] is True
    assert result['created'] == ['ml-gpu-2']
    assert 'node ml-gpu-1 (group gpu) could not be created on any site: b: No valid host was found.; a: No valid host' in result['msg']
    assert [s.name for conn in sites.values() for s in conn.compute.servers()] == ['ml-gpu-2']


def test_quota_decides_the_site_before_booting(sites):
    sites['a'].compute.instances = 1
    result = ok(run({'name': 'ml', 'groups': [{'name': 'cpu', 'count': 3, 'flavor': 'm1.small', 'image': 'img', 'sites': ['a', 'b']}]}))
    assert [(n['name'], n['site']) for n in result['nodes']] == [('ml-cpu-1', 'a'), ('ml-cpu-2', 'b'), ('ml-cpu-3', 'b')]
    assert result['rescheduled'] == [] and result['sites']['a']['capacity']['instances'] == 1


def test_nothing_can_host_a_group(sites):
    result = run({'name': 'ml', 'groups': [{'name': 'big', 'gpus': 8, 'image': 'img'}, {'name': 'x', 'flavor': 'm1.small', 'image': 'nope'}]})
    assert result['failed'] and result['changed'] is False
    assert "group 'big': no site can host it (a: no flavor meets the requirements; b: no flavor meets the requirements)" in result['msg']
    assert "group 'x': no site can host it (a: image 'nope' not found; b: image 'nope' not found)" in result['msg']
    assert changing_calls(*sites.values()) == []


def test_old_name_redirects(tmp_path):
    """``fedgpu.platform.cluster`` (meta/runtime.yml) resolves to this module, as ansible-doc and playbooks see it."""
    collections = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..', '..', '.cache', 'collections'))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections, HOME=str(tmp_path), PYTHONWARNINGS='ignore')
    doc = os.path.join(os.path.dirname(sys.executable), 'ansible-doc')
    proc = subprocess.run([doc, '--json', 'fedgpu.platform.cluster'], env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    (name, entry), = json.loads(proc.stdout).items()
    assert name == 'fedgpu.platform.cluster' and entry['doc']['module'] == 'openstack_federation_cluster'

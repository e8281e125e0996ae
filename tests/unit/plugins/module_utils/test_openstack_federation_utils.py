# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Placement and flavor logic of the OpenStack federation, without a cloud."""
import copy
import os

import pytest
import yaml

from ansible_collections.fedgpu.platform.plugins.module_utils import openstack_federation as of

FIXTURES = os.path.join(os.path.dirname(__file__), '..', '..', 'fixtures', 'openstack_federation')
with open(os.path.join(FIXTURES, 'placement.yml')) as _f:
    PLACEMENT = yaml.safe_load(_f)


@pytest.mark.parametrize('case', PLACEMENT, ids=[c['id'] for c in PLACEMENT])
def test_plan_placement(case):
    requests = []
    for r in case['requests']:
        only = r.get('only', r['candidates'])
        requests.append({'key': r['key'], 'candidates': r['candidates'], 'needs': dict((s, dict(r['need'])) for s in only)})
    placed, unplaced = of.plan_placement(requests, copy.deepcopy(case['capacity']))
    got = dict((req['key'], site) for req, site in placed)
    got.update((req['key'], None) for req, _reason in unplaced)
    assert [got[r['key']] for r in case['requests']] == case['expect']


def test_unplaced_reason_names_each_site():
    req = {'key': 'x', 'candidates': ['a', 'b'], 'needs': {'a': {'instances': 1, 'cores': 8}}}
    _placed, unplaced = of.plan_placement([req], {'a': {'instances': 1, 'cores': 4}, 'b': {}})
    reason = unplaced[0][1]
    assert 'a: cores quota left 4, needs 8' in reason and 'b: cannot host it' in reason


@pytest.mark.parametrize('specs, expected', [
    ({}, {'count': 0, 'model': None, 'resources': {}}),
    ({'resources:CUSTOM_FAKE_GPU': '1', 'gpu:model': 'A100'}, {'count': 1, 'model': 'A100', 'resources': {'CUSTOM_FAKE_GPU': 1}}),
    ({'resources:VGPU': '2'}, {'count': 2, 'model': None, 'resources': {'VGPU': 2}}),
    ({'resources1:PGPU': '1', 'resources2:PGPU': '1'}, {'count': 2, 'model': None, 'resources': {'PGPU': 2}}),
    ({'pci_passthrough:alias': 'a100:2'}, {'count': 2, 'model': 'a100', 'resources': {}}),
    ({'pci_passthrough:alias': 'a100:1,t4:1', 'gpu_model': 'mixed'}, {'count': 2, 'model': 'mixed', 'resources': {}}),
    ({'resources:CUSTOM_BAREMETAL': '1', 'gpu:model': 'A100'}, {'count': 0, 'model': None, 'resources': {}}),
    ({'resources:VGPU': 'many'}, {'count': 0, 'model': None, 'resources': {}}),
    ({'hw:cpu_policy': 'dedicated', 'resources:VCPU': '4'}, {'count': 0, 'model': None, 'resources': {}}),
])
def test_gpu_info(specs, expected):
    assert of.gpu_info(specs) == expected


FLAVORS = [of.flavor_facts(f) for f in [
    {'id': '1', 'name': 'm1.tiny', 'vcpus': 1, 'ram': 512, 'disk': 1},
    {'id': '2', 'name': 'm1.small', 'vcpus': 2, 'ram': 2048, 'disk': 10},
    {'id': '3', 'name': 'm1.large', 'vcpus': 8, 'ram': 16384, 'disk': 20},
    {'id': '4', 'name': 'g1.a100', 'vcpus': 8, 'ram': 32768, 'extra_specs': {'resources:CUSTOM_FAKE_GPU': '1', 'gpu:model': 'A100'}},
    {'id': '5', 'name': 'g2.a100', 'vcpus': 16, 'ram': 65536, 'extra_specs': {'resources:CUSTOM_FAKE_GPU': '2', 'gpu:model': 'A100'}},
    {'id': '6', 'name': 'g1.t4', 'vcpus': 4, 'ram': 16384, 'extra_specs': {'pci_passthrough:alias': 't4:1'}},
]]


@pytest.mark.parametrize('kwargs, expected', [
    ({'name': 'm1.small'}, 'm1.small'),
    ({'name': '3'}, 'm1.large'),
    ({'name': 'nope'}, None),
    ({'vcpus': 2}, 'm1.small'),
    ({'vcpus': 2, 'ram': 4096}, 'm1.large'),
    ({'vcpus': 9}, 'g2.a100'),
    ({'gpus': 1}, 'g1.t4'),
    ({'gpus': 1, 'gpu_model': 'a100'}, 'g1.a100'),
    ({'gpus': 2}, 'g2.a100'),
    ({'gpus': 4}, None),
    ({'gpu_model': 'h100'}, None),
])
def test_match_flavor(kwargs, expected):
    flavor = of.match_flavor(FLAVORS, **kwargs)
    assert (flavor['name'] if flavor else None) == expected


def test_node_need_and_candidates():
    need = of.node_need(FLAVORS[3], public_ip=True)
    assert need == {'instances': 1, 'cores': 8, 'ram': 32768, 'floating_ips': 1, 'gpu': {'CUSTOM_FAKE_GPU': 1}}
    assert of.candidate_sites({'site': 'b'}, ['a', 'b']) == ['b']
    assert of.candidate_sites({'sites': ['b', 'a']}, ['a', 'b']) == ['b', 'a']
    assert of.candidate_sites({}, ['a', 'b']) == ['a', 'b']


def test_server_addresses():
    server = {'addresses': {'fedgpu-x': [
        {'version': 6, 'addr': 'fd00::5', 'OS-EXT-IPS:type': 'fixed'},
        {'version': 4, 'addr': '10.42.1.5', 'OS-EXT-IPS:type': 'fixed'},
        {'version': 4, 'addr': '172.24.4.9', 'OS-EXT-IPS:type': 'floating'},
    ], 'other': [{'version': 4, 'addr': '192.168.0.3', 'OS-EXT-IPS:type': 'fixed'}]}}
    assert of.server_addresses(server, 'fedgpu-x') == ('10.42.1.5', '172.24.4.9')
    assert of.server_addresses({'addresses': {}}) == (None, None)
    assert of.server_addresses({'addresses': {'other': [{'version': 4, 'addr': '192.168.0.3'}]}}, 'fedgpu-x') == ('192.168.0.3', None)


def test_unknown_cloud_is_a_clear_error(tmp_path):
    clouds = tmp_path / 'clouds.yaml'
    clouds.write_text('clouds:\n  a:\n    auth: {auth_url: "http://127.0.0.1:1/v3"}\n  b:\n    auth: {auth_url: "http://127.0.0.1:1/v3"}\n')
    with pytest.raises(of.FederationError, match=r"unknown cloud 'c' \(clouds.yaml has: a, b\)"):
        of.load_cloud_config('c', clouds_yaml=str(clouds))

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cluster's servers (module_utils/openstack_servers.py): reconciliation without a cloud, lifecycle against a fake connection."""
import os

import pytest
import yaml

from ansible_collections.fedgpu.platform.plugins.module_utils import openstack_servers as srv
from ansible_collections.fedgpu.platform.plugins.module_utils.openstack_federation import FederationError
from ansible_collections.fedgpu.platform.plugins.module_utils.openstack_network import SiteNetwork
from ansible_collections.fedgpu.platform.tests.unit.plugins.fake_openstack import FakeConnection, Obj

FIXTURES = os.path.join(os.path.dirname(__file__), '..', '..', 'fixtures', 'openstack_federation')
with open(os.path.join(FIXTURES, 'reconcile.yml')) as handle:
    RECONCILE = yaml.safe_load(handle)


def server(name, group, index, status='ACTIVE', created_at='t0'):
    md = {'fedgpu_cluster': 'ml', 'fedgpu_group': group}
    if index is not None:
        md['fedgpu_index'] = str(index)
    return Obj(name=name, metadata=md, status=status, created_at=created_at)


@pytest.mark.parametrize('case', RECONCILE, ids=[c['id'] for c in RECONCILE])
def test_reconcile_nodes(case):
    existing = [('site-a', server(*entry)) for entry in case['servers']]
    keep, remove, missing = srv.reconcile_nodes(existing, case['groups'])
    assert sorted(s.name for _site, s in keep) == sorted(case['keep'])
    assert sorted(s.name for _site, s in remove) == sorted(case['remove'])
    assert ['%s-%d' % (g['name'], index) for g, index in missing] == case['missing']


def test_server_attrs_boot_from_volume():
    md = srv.server_metadata('ml', 'gpu', 2, 'a', False, {'owner': 'lab', 'n': 1})
    assert md == {'owner': 'lab', 'n': '1', 'fedgpu_cluster': 'ml', 'fedgpu_group': 'gpu', 'fedgpu_index': '2', 'fedgpu_site': 'a',
                  'fedgpu_frontend': 'false'}
    plain = srv.server_attrs('ml-gpu-2', 'f1', 'img1', 'net1', ['fedgpu-ml-nodes'], md)
    assert plain['image_id'] == 'img1' and 'block_device_mapping' not in plain and 'key_name' not in plain
    assert plain['security_groups'] == [{'name': 'fedgpu-ml-nodes'}] and plain['networks'] == [{'uuid': 'net1'}]
    volume = srv.server_attrs('ml-gpu-2', 'f1', 'img1', 'net1', [], md, key_name='fedgpu-ml', volume_size=20)
    assert volume['image_id'] == '' and volume['key_name'] == 'fedgpu-ml'
    assert volume['block_device_mapping'] == [{'boot_index': 0, 'uuid': 'img1', 'source_type': 'image', 'destination_type': 'volume',
                                               'volume_size': 20, 'delete_on_termination': True}]


@pytest.fixture
def site():
    conn = FakeConnection('a')
    external = conn.network.networks(is_router_external=True)[0]
    net, _changes = SiteNetwork(conn, 'ml', 'a').ensure('10.42.1.0/24', {}, external_network=external)
    conn.net = net
    conn.external = external
    conn.calls[:] = []
    return conn


def attrs_on(conn, name='ml-cpu-1', group='cpu', frontend=False):
    return srv.server_attrs(name, conn.compute.flavors_[0].id, 'img', conn.net['network'].id, [],
                            srv.server_metadata('ml', group, 1, 'a', frontend))


def floating(conn):
    return {'network_id': conn.external.id, 'tag': 'fedgpu-cluster:ml', 'description': 'fedgpu cluster ml', 'wait': 1}


def test_create_server_with_floating_ip(site):
    made = srv.create_server(site, attrs_on(site, 'ml-frontend-1', 'frontend', True), 5, floating(site))
    assert made.status == 'ACTIVE'
    fip = site.network.ips_[0]
    assert fip.tags == ['fedgpu-cluster:ml']
    node = srv.describe_server(made, {'name': 'a', 'region': 'RegionOne'}, 'fedgpu-ml')
    assert node == {'name': 'ml-frontend-1', 'id': made.id, 'group': 'frontend', 'index': 1, 'site': 'a', 'region': 'RegionOne',
                    'status': 'ACTIVE', 'flavor': 'm1.small', 'private_ip': '10.42.0.10', 'public_ip': fip.floating_ip_address,
                    'frontend': True, 'gpu': {'count': 0, 'model': None}}


def test_failed_boot_is_deleted_and_raised(site):
    site.fail_boots = 1
    with pytest.raises(FederationError, match='No valid host was found'):
        srv.create_server(site, attrs_on(site), 5, floating(site))
    assert site.compute.servers() == [] and site.network.ips_ == []
    assert site.changes() == ['compute.create_server', 'compute.delete_server']


def test_delete_server_releases_its_floating_ips(site):
    made = srv.create_server(site, attrs_on(site, 'ml-frontend-1', 'frontend', True), 5, floating(site))
    srv.delete_server(site, made, 5)
    assert site.compute.servers() == [] and site.network.ips_ == []


def test_boot_anywhere_tries_the_sites_in_order():
    tried = []
    failures = []

    def attempt(name):
        tried.append(name)
        if name != 'c':
            raise RuntimeError('No valid host was found.')
        return name, 'server'

    assert srv.boot_anywhere('ml-gpu-1 (group gpu)', ['a', 'b', 'c'], attempt, lambda s, e: failures.append((s, str(e)))) == ('c', 'server')
    assert tried == ['a', 'b', 'c']
    assert failures == [('a', 'No valid host was found.'), ('b', 'No valid host was found.')]
    with pytest.raises(FederationError) as err:
        srv.boot_anywhere('ml-gpu-1 (group gpu)', ['a', 'b'], attempt)
    assert str(err.value) == ('node ml-gpu-1 (group gpu) could not be created on any site: a: No valid host was found.; '
                              'b: No valid host was found.')


def test_planned_node_has_the_shape_of_a_described_one():
    flavor = {'name': 'g1.a100', 'gpu': {'count': 1, 'model': 'A100', 'resources': {'VGPU': 1}}}
    node = srv.planned_node('ml-gpu-1', 'gpu', 1, {'name': 'b', 'region': 'RegionTwo'}, flavor, False)
    assert node == {'name': 'ml-gpu-1', 'id': None, 'group': 'gpu', 'index': 1, 'site': 'b', 'region': 'RegionTwo', 'status': None,
                    'flavor': 'g1.a100', 'private_ip': None, 'public_ip': None, 'frontend': False, 'gpu': {'count': 1, 'model': 'A100'}}

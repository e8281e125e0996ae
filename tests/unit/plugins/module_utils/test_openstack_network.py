# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cluster's network on one site (module_utils/openstack_network.py) against a fake connection."""
import pytest

from ansible_collections.fedgpu.platform.plugins.module_utils import openstack_network
from ansible_collections.fedgpu.platform.plugins.module_utils.openstack_federation import resource_name
from ansible_collections.fedgpu.platform.plugins.module_utils.openstack_network import SiteNetwork, frontend_rules, node_rules
from ansible_collections.fedgpu.platform.tests.unit.plugins.fake_openstack import FakeConnection, Obj

KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHk0Hq1oM3bSmsyJ3mGx2i8Q0cJ0h6c3nF0vG8pIbK0n ops'
RULES = {'nodes': node_rules(['10.42.1.0/24', '10.42.2.0/24']), 'frontend': frontend_rules(['192.0.2.0/24'], [443])}
ALL = ['network', 'subnet', 'router', 'router interface', 'security group fedgpu-ml-nodes', 'security group fedgpu-ml-frontend',
       'key pair fedgpu-ml']


def ensure(conn, check=False, rules=None, key=KEY):
    external = next(iter(conn.network.networks(is_router_external=True)), None)
    return SiteNetwork(conn, 'ml', 'a').ensure('10.42.1.0/24', rules or RULES, external_network=external, dns_nameservers=['192.0.2.53'],
                                               public_key=key, check=check)


def without_rules(changes):
    return [c for c in changes if not c.startswith('rule ')]


def test_resource_name():
    assert resource_name('ml') == 'fedgpu-ml'


def test_empty_site_gets_everything_once():
    conn = FakeConnection('a')
    res, changes = ensure(conn)
    assert without_rules(changes) == ALL
    assert len([c for c in changes if c.startswith('rule ')]) == 3 + 3  # nodes: 2 subnets + self; frontend: ssh, 443, icmp
    assert [n.name for n in conn.network.networks(tags=['fedgpu-cluster:ml'])] == ['fedgpu-ml']
    assert conn.created('subnet') == [{'network_id': res['network'].id, 'name': 'fedgpu-ml', 'cidr': '10.42.1.0/24', 'ip_version': 4,
                                       'dns_nameservers': ['192.0.2.53']}]
    assert conn.network.ports(device_id=res['router'].id, network_id=res['network'].id)
    assert sorted(res['security_groups']) == ['frontend', 'nodes']
    assert res['keypair'].name == 'fedgpu-ml'
    # The rules of a group go in one request.
    assert conn.changes().count('network.post') == 2
    # A second run finds it all and changes nothing.
    conn.calls[:] = []
    again, changes = ensure(conn)
    assert changes == [] and conn.changes() == []
    assert again['network'].id == res['network'].id and again['router'].id == res['router'].id


def test_check_mode_lists_what_the_real_run_makes_and_makes_nothing():
    conn = FakeConnection('a')
    res, planned = ensure(conn, check=True)
    assert conn.changes() == []
    assert res['network'] is None and res['security_groups'] == {} and res['keypair'] is None
    _res, applied = ensure(conn)
    assert planned == applied
    assert without_rules(applied) == ALL


def test_only_what_is_missing_is_created():
    conn = FakeConnection('a')
    ensure(conn)
    # Someone removed the router (and with it its interface) and the key pair.
    router = conn.network.routers_[0]
    conn.network.ports_ = [p for p in conn.network.ports_ if p.device_id != router.id]
    conn.network.routers_ = []
    conn.compute.keypairs.clear()
    conn.calls[:] = []
    _res, changes = ensure(conn)
    assert changes == ['router', 'router interface', 'key pair fedgpu-ml']
    assert [c for c in conn.changes() if 'create' in c] == ['network.create_router', 'compute.create_keypair']
    assert 'network.create_network' not in conn.changes() and 'network.create_subnet' not in conn.changes()


def test_no_external_network_no_router():
    conn = FakeConnection('a', external=False)
    res, changes = ensure(conn)
    assert res['router'] is None and 'router' not in changes and conn.network.routers_ == []


def test_rules_follow_the_wanted_set():
    conn = FakeConnection('a')
    ensure(conn)
    conn.calls[:] = []
    rules = dict(RULES, frontend=frontend_rules(['192.0.2.0/24'], [80]))
    _res, changes = ensure(conn, rules=rules)
    assert changes == ["rule ('IPv4', 'tcp', 80, 80, '0.0.0.0/0', None) on fedgpu-ml-frontend",
                       "remove rule ('IPv4', 'tcp', 443, 443, '0.0.0.0/0', None) on fedgpu-ml-frontend"]
    ports = sorted(r.port_range_min for r in conn.network.rules if r.protocol == 'tcp')
    assert ports == [22, 80]


def test_rule_bulk_request_refused_names_the_site():
    conn = FakeConnection('a')
    conn.network.post = lambda url, json=None: Obj(status_code=409, text='rule exists')
    with pytest.raises(openstack_network.FederationError, match='site a: cannot create rules on fedgpu-ml-nodes: rule exists'):
        ensure(conn)


def test_another_public_key_replaces_the_key_pair():
    conn = FakeConnection('a')
    ensure(conn)
    conn.calls[:] = []
    other = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOther other'
    res, changes = ensure(conn, key=other)
    assert changes == ['key pair fedgpu-ml (replaced)']
    assert conn.changes() == ['compute.delete_keypair', 'compute.create_keypair']
    assert res['keypair'].public_key == other
    # The same key with another comment is the same key.
    conn.calls[:] = []
    assert ensure(conn, key=other.replace('other', 'ops'))[1] == []


def test_remove_takes_exactly_the_clusters_resources(monkeypatch):
    monkeypatch.setattr(openstack_network.time, 'sleep', lambda seconds: None)
    conn = FakeConnection('a')
    ensure(conn)
    SiteNetwork(conn, 'other', 'a').ensure('10.43.1.0/24', RULES)
    fip = Obj(floating_ip_address='192.0.2.99', port_id=None)
    conn.network.set_tags(fip, ['fedgpu-cluster:ml'])
    conn.network.ips_.append(fip)
    conn.calls[:] = []
    net = SiteNetwork(conn, 'ml', 'a')
    planned = net.remove(check=True)
    assert conn.changes() == []
    # The network's ports of just-deleted servers: the first delete conflicts, the retry succeeds.
    conn.network.delete_network_conflicts = 1
    assert net.remove() == planned == ['floating ip 192.0.2.99', 'router interface fedgpu-ml', 'router fedgpu-ml', 'network fedgpu-ml',
                                       'security group fedgpu-ml-nodes', 'security group fedgpu-ml-frontend', 'key pair fedgpu-ml']
    assert conn.changes().count('network.delete_network') == 2
    assert [n.name for n in conn.network.networks_ if not n.is_router_external] == ['fedgpu-other']
    assert sorted(s.name for s in conn.network.security_groups_) == ['fedgpu-other-frontend', 'fedgpu-other-nodes']
    assert net.remove() == []

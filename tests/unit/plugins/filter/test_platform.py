"""node_addresses: which address each role uses for a platform node; platform_layout: groups from an orchestrator's node groups."""
import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.fedgpu.platform.plugins.filter.platform import FilterModule, node_addresses, platform_layout

HOSTVARS = {
    'explicit': {'common_address': '10.0.0.5', 'ansible_facts': {'default_ipv4': {'address': '192.0.2.5'}}},
    'facts': {'ansible_facts': {'default_ipv4': {'address': '192.0.2.6'}}, 'ansible_host': '203.0.113.6'},
    'ip_host': {'ansible_host': '203.0.113.7'},
    'named_host': {'ansible_host': 'fg-worker1'},
    'nothing': {},
}


@pytest.mark.parametrize('name, expected', [
    ('explicit', '10.0.0.5'),     # the variable wins over facts
    ('facts', '192.0.2.6'),       # facts win over ansible_host
    ('ip_host', '203.0.113.7'),   # ansible_host when it is an address
    ('named_host', None),         # a name is not an address
    ('nothing', None),
])
def test_address_precedence(name, expected):
    assert node_addresses([name], HOSTVARS, 'common_address') == [{'name': name, 'address': expected}]


def test_order_is_kept_and_no_variable_means_facts():
    result = node_addresses(['ip_host', 'explicit'], HOSTVARS)
    assert result == [{'name': 'ip_host', 'address': '203.0.113.7'},
                      {'name': 'explicit', 'address': '192.0.2.5'}]


def test_single_name():
    assert node_addresses('facts', HOSTVARS) == [{'name': 'facts', 'address': '192.0.2.6'}]


def test_unknown_host_is_an_error():
    with pytest.raises(AnsibleFilterError, match='ghost'):
        node_addresses(['ghost'], HOSTVARS)


def test_registered():
    assert FilterModule().filters()['node_addresses'] is node_addresses


# platform_layout: an orchestrator's inventory groups (one per TOSCA Compute node) through the inventory plugin's rule.
GROUP_MAP = {'front': ['platform', 'htcondor_central_manager'], 'db': ['platform', 'db', 'db_data'],
             'db_standby': ['platform', 'db', 'db_data'], 'db_witness': ['platform', 'db', 'db_witness'], 'wn': ['platform', 'workers']}


def test_platform_layout_joins_groups_and_derives_repmgr_values():
    groups = {'all': ['f', 'p', 's1', 's2', 'w', 'x'], 'front': ['f'], 'db': ['p'], 'db_standby': ['s1', 's2'], 'db_witness': ['w'],
              'other': ['x'], 'wn': []}
    out = platform_layout(groups, GROUP_MAP)
    assert out['groups'] == {'platform': ['f', 'p', 's1', 's2', 'w'], 'htcondor_central_manager': ['f'], 'db': ['p', 's1', 's2', 'w'],
                             'db_data': ['p', 's1', 's2'], 'db_witness': ['w']}
    hosts = {h['name']: h for h in out['hosts']}
    assert sorted(hosts) == ['f', 'p', 's1', 's2', 'w']  # x is in no node group of the table
    assert hosts['p']['vars'] == {'repmgr_node_id': 1, 'repmgr_role': 'primary', 'repmgr_priority': 100}
    assert hosts['s2']['vars'] == {'repmgr_node_id': 102, 'repmgr_role': 'standby', 'repmgr_priority': 90}
    assert hosts['w']['vars'] == {'repmgr_node_id': 1001, 'repmgr_role': 'witness'}
    assert hosts['f']['vars'] == {} and hosts['f']['groups'] == ['platform', 'htcondor_central_manager']
    assert (hosts['s2']['node_group'], hosts['s2']['index']) == ('db_standby', 2)


def test_platform_layout_names_a_bad_table():
    with pytest.raises(AnsibleFilterError, match=r'platform_layout: group_map.db: a node group cannot be both db_data and db_witness'):
        platform_layout({'db': ['a']}, {'db': ['db_data', 'db_witness']})
    with pytest.raises(AnsibleFilterError, match=r"group_map.wn: 'bad-name' is not a valid group name"):
        platform_layout({'wn': ['a']}, {'wn': ['bad-name']})
    with pytest.raises(AnsibleFilterError, match='the input must be the groups magic variable'):
        platform_layout(['a'], GROUP_MAP)

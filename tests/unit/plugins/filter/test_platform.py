"""node_addresses: which address each role uses for a platform node."""
import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.fedgpu.platform.plugins.filter.platform import FilterModule, node_addresses

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

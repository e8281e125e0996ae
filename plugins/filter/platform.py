# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters about the platform's nodes, shared by every role."""

from __future__ import annotations

import ipaddress

from ansible.errors import AnsibleFilterError

from ansible_collections.fedgpu.platform.plugins.module_utils.platform_layout import LayoutError, layout


def _is_ip(value):
    try:
        ipaddress.ip_address(str(value))
    except ValueError:
        return False
    return True


def _lookup(hostvars, name, address_var):
    try:
        node = hostvars[name]
    except KeyError:
        raise AnsibleFilterError('node_addresses: %r is not a host of the inventory' % name)
    explicit = node.get(address_var) if address_var else None
    if explicit:
        return str(explicit)
    facts = node.get('ansible_facts') or {}
    fact = (facts.get('default_ipv4') or {}).get('address')
    if fact:
        return str(fact)
    host = node.get('ansible_host')
    if host and _is_ip(host):
        return str(host)
    return None


def node_addresses(names, hostvars, address_var=''):
    """[{name, address}] for each host name; address is None when unknown."""
    if isinstance(names, str):
        names = [names]
    return [{'name': str(name), 'address': _lookup(hostvars, name, address_var)} for name in names]


def platform_layout(groups, group_map):
    """The playbooks' groups and derived host values from node groups given as inventory groups (an orchestrator's).

    Each node group of ``group_map`` is the inventory group of that name; a
    host's index is its position in it, from 1.  The rule is the inventory
    plugin's (module_utils.platform_layout).
    """
    if not isinstance(groups, dict):
        raise AnsibleFilterError('platform_layout: the input must be the groups magic variable, not %s' % type(groups).__name__)
    if not isinstance(group_map, dict):
        raise AnsibleFilterError('platform_layout: group_map must be a mapping of node groups to lists of groups')
    nodes = []
    for node_group in group_map:
        for index, host in enumerate(groups.get(node_group) or [], start=1):
            nodes.append({'host': str(host), 'group': str(node_group), 'index': index})
    try:
        out_groups, out_hostvars = layout(nodes, group_map)
    except LayoutError as e:
        raise AnsibleFilterError('platform_layout: %s' % e)
    hosts = []
    for node in nodes:
        hosts.append({'name': node['host'], 'node_group': node['group'], 'index': node['index'],
                      'groups': [g for g, members in out_groups.items() if node['host'] in members],
                      'vars': out_hostvars.get(node['host'], {})})
    return {'groups': out_groups, 'hosts': hosts}


class FilterModule(object):
    def filters(self):
        return {'node_addresses': node_addresses, 'platform_layout': platform_layout}

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters about the platform's nodes, shared by every role."""

from __future__ import annotations

import ipaddress

from ansible.errors import AnsibleFilterError


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


class FilterModule(object):
    def filters(self):
        return {'node_addresses': node_addresses}

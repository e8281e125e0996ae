# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""From provisioned nodes to the groups and per-host values that site.yml needs.

One place for the rule: the node groups that
:mod:`openstack_federation_cluster` makes (``frontend``, ``gpu``, ``cpu``, ...)
are mapped by a declared table (``group_map``) to the groups the playbooks
apply to (``workers``, ``htcondor_execute``, ``db_data``, ...), and the values
that depend on the set of nodes (repmgr's node ids, roles and priorities) are
derived here, never by hand.  The inventory plugin ``openstack_federation``
calls it; it has no dependency beyond the standard library.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

# Groups whose hosts get repmgr values derived from their node group and index.
DB_DATA_GROUP = 'db_data'
DB_WITNESS_GROUP = 'db_witness'
# Node ids: data nodes below this, witnesses from it on; each node group mapped
# to one of the two gets a block of ID_BLOCK ids (so ids never change when a
# group grows, and two node groups never share one).
WITNESS_ID_BASE = 1000
ID_BLOCK = 100

_GROUP_NAME = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*$')


class LayoutError(Exception):
    """A group map or a set of nodes that cannot be laid out (the message names the culprit)."""


def check_group_map(group_map):
    """The group map as {node group: [groups]}, or LayoutError naming what is wrong."""
    if group_map is None:
        return {}
    if not isinstance(group_map, dict):
        raise LayoutError('group_map must be a mapping of node group names to lists of groups, not %s' % type(group_map).__name__)
    out = {}
    for node_group, groups in group_map.items():
        if isinstance(groups, str) or not isinstance(groups, (list, tuple)):
            raise LayoutError('group_map.%s must be a list of group names' % node_group)
        for group in groups:
            if not isinstance(group, str) or not _GROUP_NAME.match(group):
                raise LayoutError('group_map.%s: %r is not a valid group name (letters, digits and _, not starting with a digit)'
                                  % (node_group, group))
        if DB_DATA_GROUP in groups and DB_WITNESS_GROUP in groups:
            raise LayoutError('group_map.%s: a node group cannot be both %s and %s' % (node_group, DB_DATA_GROUP, DB_WITNESS_GROUP))
        out[str(node_group)] = list(dict.fromkeys(groups))
    return out


def _repmgr_values(nodes, group_map):
    """{host: {repmgr_node_id, repmgr_role, repmgr_priority}} for the database nodes.

    Data node ids: ID_BLOCK * k + index, where k is the position of the node
    group among those mapped to db_data (in the map's order) and index the
    node's index in its group (the provisioning module never renumbers a
    node); witnesses likewise from WITNESS_ID_BASE.  The data node with the
    lowest id is declared primary (the repmgr role finds the real primary
    after a failover), the others standby; priority falls by 10 per index
    from 100 and never below 10.
    """
    values = {}
    for target, base in ((DB_DATA_GROUP, 0), (DB_WITNESS_GROUP, WITNESS_ID_BASE)):
        node_groups = [name for name, groups in group_map.items() if target in groups]
        members = []
        for k, node_group in enumerate(node_groups):
            for node in nodes:
                if node['group'] != node_group:
                    continue
                index = node.get('index')
                if not isinstance(index, int) or index < 1 or index >= ID_BLOCK:
                    raise LayoutError('node %s of node group %s has index %r: a %s node needs an index from 1 to %d (made by '
                                      'openstack_federation_cluster)' % (node['host'], node_group, index, target, ID_BLOCK - 1))
                members.append((base + ID_BLOCK * k + index, index, node['host']))
        members.sort()
        seen = {}
        for node_id, index, host in members:
            if node_id in seen:
                raise LayoutError('nodes %s and %s would both get repmgr node id %d' % (seen[node_id], host, node_id))
            seen[node_id] = host
            if target == DB_WITNESS_GROUP:
                values[host] = {'repmgr_node_id': node_id, 'repmgr_role': 'witness'}
            else:
                values[host] = {'repmgr_node_id': node_id, 'repmgr_role': 'primary' if node_id == members[0][0] else 'standby',
                                'repmgr_priority': max(10, 110 - 10 * index)}
    return values


def layout(nodes, group_map):
    """Groups and derived host values of a set of provisioned nodes.

    ``nodes``: dicts with ``host`` (inventory name), ``group`` (the node group)
    and ``index``.  Returns ``(groups, hostvars)``: ``groups`` maps each group
    of the table to its hosts (sorted by node group order, then index), and
    ``hostvars`` maps hosts to the values derived for them.  Nodes of a node
    group that the table does not name get nothing.
    """
    group_map = check_group_map(group_map)
    order = {name: k for k, name in enumerate(group_map)}
    mapped = sorted((n for n in nodes if n.get('group') in group_map),
                    key=lambda n: (order[n['group']], n.get('index') if isinstance(n.get('index'), int) else 0, n['host']))
    groups = {}
    for node in mapped:
        for group in group_map[node['group']]:
            groups.setdefault(group, []).append(node['host'])
    return groups, _repmgr_values(mapped, group_map)

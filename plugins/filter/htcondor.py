# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that turn the platform's communities into HTCondor accounting groups."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.fedgpu.platform.plugins.module_utils.fairshare import FairShareError, communities


def htcondor_accounting_groups(groups, prefix='group_', accept_surplus=True, priority_factor=1000.0):
    """Communities as accounting groups, parents before children.

    ``groups`` is [{name, parent, share, accept_surplus, priority_factor, ...}]
    (other keys are ignored: the list is shared with the rest of the
    platform), checked by module_utils.fairshare. Returns [{name, group,
    parent_group, depth, share, accept_surplus, priority_factor}] where
    ``group`` is the dotted hierarchical name (``group_physics.cms``), as
    HTCondor's GROUP_NAMES wants it.
    """
    try:
        checked = communities(groups, accept_surplus, priority_factor)
    except FairShareError as e:
        raise AnsibleFilterError('htcondor_groups: %s' % e)
    result = []
    for item in checked:
        names = item['path']
        group = prefix + '.'.join(n.replace('-', '_') for n in names)
        result.append({
            'name': item['name'],
            'group': group,
            'parent_group': group.rsplit('.', 1)[0] if len(names) > 1 else '',
            'depth': len(names),
            'share': None if item['share'] is None else float(item['share']),
            'accept_surplus': item['accept_surplus'],
            'priority_factor': item['priority_factor'],
        })
    result.sort(key=lambda g: (g['depth'], g['group']))
    return result


def htcondor_user_groups(users, accounting_groups):
    """[{name, groups: [accounting group, ...]}] for users that belong to communities (first = default)."""
    by_name = dict((g['name'], g['group']) for g in accounting_groups)
    result = []
    for user in users or []:
        if not isinstance(user, dict) or 'name' not in user:
            raise AnsibleFilterError('htcondor_users: every user needs a name, got %r' % (user,))
        member = user.get('groups') or []
        if isinstance(member, str) or not isinstance(member, (list, tuple)):
            raise AnsibleFilterError('htcondor_users: groups of %r must be a list' % user['name'])
        unknown = [g for g in member if g not in by_name]
        if unknown:
            raise AnsibleFilterError('htcondor_users: user %r is in unknown communities %s' % (user['name'], unknown))
        if member:
            result.append({'name': str(user['name']), 'groups': [by_name[g] for g in member]})
    return result


class FilterModule(object):
    def filters(self):
        return {
            'htcondor_accounting_groups': htcondor_accounting_groups,
            'htcondor_user_groups': htcondor_user_groups,
        }

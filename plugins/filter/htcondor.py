# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that turn the platform's communities into HTCondor accounting groups."""

from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError

_NAME = re.compile(r'^[a-z][a-z0-9_-]{0,31}$')


def htcondor_accounting_groups(groups, prefix='group_', accept_surplus=True, priority_factor=1000.0):
    """Communities as accounting groups, parents before children.

    ``groups`` is [{name, parent, share, accept_surplus, priority_factor, ...}]
    (other keys are ignored: the list is shared with the rest of the
    platform). Returns [{name, group, parent_group, share, accept_surplus,
    priority_factor}] where ``group`` is the dotted hierarchical name
    (``group_physics.cms``), as HTCondor's GROUP_NAMES wants it.
    """
    if not isinstance(groups, (list, tuple)):
        raise AnsibleFilterError('htcondor_groups: expected a list of communities, got %r' % (groups,))
    parents = {}
    for item in groups:
        if not isinstance(item, dict) or 'name' not in item:
            raise AnsibleFilterError('htcondor_groups: every community needs a name, got %r' % (item,))
        name = str(item['name'])
        if not _NAME.match(name):
            raise AnsibleFilterError('htcondor_groups: %r is not a community name (lower case letters, digits, _ and -)' % name)
        if name in parents:
            raise AnsibleFilterError('htcondor_groups: community %r is listed twice' % name)
        parents[name] = str(item.get('parent') or '')
    for name, parent in parents.items():
        if parent and parent not in parents:
            raise AnsibleFilterError('htcondor_groups: community %r has an unknown parent %r' % (name, parent))

    def chain(name):
        out, seen = [], set()
        while name:
            if name in seen:
                raise AnsibleFilterError('htcondor_groups: the parents of %r form a cycle' % name)
            seen.add(name)
            out.insert(0, name)
            name = parents[name]
        return out

    result = []
    for item in groups:
        names = chain(str(item['name']))
        share = item.get('share')
        if share is not None:
            try:
                share = float(share)
            except (TypeError, ValueError):
                share = -1.0
            if not 0.0 <= share <= 1.0:
                raise AnsibleFilterError('htcondor_groups: share of %r must be a fraction between 0 and 1, got %r'
                                         % (item['name'], item.get('share')))
        factor = item.get('priority_factor', priority_factor)
        try:
            factor = float(factor)
        except (TypeError, ValueError):
            factor = 0.0
        if factor < 1.0:
            raise AnsibleFilterError('htcondor_groups: priority_factor of %r must be a number >= 1, got %r'
                                     % (item['name'], item.get('priority_factor')))
        group = prefix + '.'.join(n.replace('-', '_') for n in names)
        result.append({
            'name': str(item['name']),
            'group': group,
            'parent_group': group.rsplit('.', 1)[0] if len(names) > 1 else '',
            'depth': len(names),
            'share': share,
            'accept_surplus': bool(item.get('accept_surplus', accept_surplus)),
            'priority_factor': factor,
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

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Communities as HTCondor accounting groups."""
import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.fedgpu.platform.plugins.filter.htcondor import (
    FilterModule, htcondor_accounting_groups, htcondor_user_groups)

GROUPS = [
    {'name': 'cms', 'parent': 'physics', 'share': 1.0, 'priority_factor': 500, 'gid': 3101},
    {'name': 'ml-infn', 'share': 0.4, 'accept_surplus': False, 'description': 'ML_INFN'},
    {'name': 'physics', 'share': 0.6},
    {'name': 'atlas', 'parent': 'physics'},
]


def test_hierarchy_names_and_order():
    out = htcondor_accounting_groups(GROUPS)
    assert [g['group'] for g in out] == ['group_ml_infn', 'group_physics', 'group_physics.atlas', 'group_physics.cms']
    by_name = {g['name']: g for g in out}
    assert by_name['cms']['parent_group'] == 'group_physics'
    assert by_name['physics']['parent_group'] == ''
    assert by_name['cms']['priority_factor'] == 500.0
    assert by_name['physics']['priority_factor'] == 1000.0
    assert by_name['atlas']['share'] is None
    assert by_name['ml-infn']['accept_surplus'] is False
    assert by_name['physics']['accept_surplus'] is True


def test_prefix_and_defaults():
    out = htcondor_accounting_groups([{'name': 'a'}], 'g_', False, 10)
    assert out == [{'name': 'a', 'group': 'g_a', 'parent_group': '', 'depth': 1, 'share': None,
                    'accept_surplus': False, 'priority_factor': 10.0}]


@pytest.mark.parametrize('groups, message', [
    ([{'name': 'cms', 'parent': 'physics'}], "unknown parent 'physics'"),
    ([{'name': 'a', 'parent': 'b'}, {'name': 'b', 'parent': 'a'}], 'cycle'),
    ([{'name': 'a'}, {'name': 'a'}], 'twice'),
    ([{'name': 'Physics!'}], 'not a community name'),
    ([{'name': 'a.b'}], 'not a community name'),
    ([{'name': 'a', 'share': 1.5}], 'between 0 and 1'),
    ([{'name': 'a', 'share': 'half'}], 'between 0 and 1'),
    ([{'name': 'a', 'priority_factor': 0}], '>= 1'),
    ([{'gid': 1}], 'needs a name'),
    ('physics', 'expected a list'),
])
def test_bad_groups_name_the_variable(groups, message):
    with pytest.raises(AnsibleFilterError) as err:
        htcondor_accounting_groups(groups)
    assert 'htcondor_groups' in str(err.value) and message in str(err.value)


def test_users_get_their_groups_in_order():
    acct = htcondor_accounting_groups(GROUPS)
    users = [{'name': 'alice', 'uid': 3001, 'groups': ['cms', 'ml-infn']}, {'name': 'carol'}, {'name': 'bob', 'groups': []}]
    assert htcondor_user_groups(users, acct) == [{'name': 'alice', 'groups': ['group_physics.cms', 'group_ml_infn']}]
    assert htcondor_user_groups(None, acct) == []


@pytest.mark.parametrize('users, message', [
    ([{'name': 'alice', 'groups': ['chemistry']}], 'unknown communities'),
    ([{'name': 'alice', 'groups': 'cms'}], 'must be a list'),
    ([{'groups': ['cms']}], 'needs a name'),
])
def test_bad_users_name_the_variable(users, message):
    with pytest.raises(AnsibleFilterError) as err:
        htcondor_user_groups(users, htcondor_accounting_groups(GROUPS))
    assert 'htcondor_users' in str(err.value) and message in str(err.value)


def test_filters_are_registered():
    assert set(FilterModule().filters()) == {'htcondor_accounting_groups', 'htcondor_user_groups'}

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fair-share targets of the communities, and the largest-remainder split that turns them into whole units."""
from fractions import Fraction

import pytest
from hypothesis import given, settings, strategies as st

from ansible.errors import AnsibleFilterError
from ansible_collections.fedgpu.platform.plugins.filter.fairshare import FilterModule, fairshare_targets
from ansible_collections.fedgpu.platform.plugins.module_utils import fairshare

GROUPS = [
    {'name': 'cms', 'parent': 'physics', 'share': 1.0, 'priority_factor': 500, 'gid': 3101},
    {'name': 'ml-infn', 'share': 0.4, 'accept_surplus': False},
    {'name': 'physics', 'share': 0.6},
    {'name': 'atlas', 'parent': 'physics'},
    {'name': 'atlas_t3', 'parent': 'atlas', 'share': 0.5},
]


def test_targets_are_products_along_the_chain():
    out = fairshare_targets(GROUPS)
    assert [t['name'] for t in out] == ['ml-infn', 'physics', 'atlas', 'atlas_t3', 'cms']
    by = {t['name']: t for t in out}
    assert by['cms'] == {'name': 'cms', 'parent': 'physics', 'path': ['physics', 'cms'], 'depth': 2, 'share': 1.0,
                         'target': 0.6, 'accept_surplus': True, 'priority_factor': 500.0}
    assert by['ml-infn']['target'] == 0.4 and by['ml-infn']['accept_surplus'] is False
    assert by['atlas']['share'] is None and by['atlas']['target'] == 0.0
    assert by['atlas_t3']['target'] == 0.0 and by['atlas_t3']['path'] == ['physics', 'atlas', 'atlas_t3']


def test_three_levels_multiply_exactly():
    groups = [{'name': 'a', 'share': 0.5}, {'name': 'b', 'parent': 'a', 'share': 0.3}, {'name': 'c', 'parent': 'b', 'share': 0.1},
              {'name': 'd', 'parent': 'b', 'share': 0.9}]
    by = {c['name']: c for c in fairshare.communities(groups)}
    assert by['c']['target'] == Fraction(3, 200) and by['d']['target'] == Fraction(27, 200)
    assert by['b']['children'] == ['c', 'd']
    assert fairshare_targets(groups)[2]['target'] == pytest.approx(0.015)


def test_decimal_shares_add_up_exactly():
    # 0.1 + 0.2 + 0.7 is 1.0000000000000002 in floats: exact decimals accept it.
    fairshare_targets([{'name': 'a', 'share': 0.1}, {'name': 'b', 'share': 0.2}, {'name': 'c', 'share': 0.7}])


def test_defaults_are_options():
    out = fairshare_targets([{'name': 'a'}], False, 10)
    assert out == [{'name': 'a', 'parent': '', 'path': ['a'], 'depth': 1, 'share': None, 'target': 0.0,
                    'accept_surplus': False, 'priority_factor': 10.0}]


@pytest.mark.parametrize('groups, message', [
    ([{'name': 'cms', 'parent': 'physics'}], "community 'cms' has an unknown parent 'physics'"),
    ([{'name': 'a', 'parent': 'b'}, {'name': 'b', 'parent': 'a'}], 'form a cycle'),
    ([{'name': 'a'}, {'name': 'a'}], "'a' is listed twice"),
    ([{'name': 'Physics!'}], 'not a community name'),
    ([{'name': 'a', 'share': 1.5}], "share of 'a' must be a fraction between 0 and 1"),
    ([{'name': 'a', 'share': float('nan')}], "share of 'a' must be"),
    ([{'name': 'a', 'priority_factor': 0.5}], "priority_factor of 'a' must be a number >= 1"),
    ([{'name': 'a', 'share': 0.7}, {'name': 'b', 'share': 0.4}], 'the top-level communities (a, b) add up to 1.1'),
    ([{'name': 'p'}, {'name': 'x', 'parent': 'p', 'share': 0.5}, {'name': 'y', 'parent': 'p', 'share': 0.6}],
     "the children of 'p' (x, y) add up to 1.1"),
    ([{'gid': 1}], 'needs a name'),
    ({'name': 'a'}, 'expected a list'),
])
def test_bad_groups_name_the_community(groups, message):
    with pytest.raises(AnsibleFilterError) as err:
        fairshare_targets(groups)
    assert str(err.value).startswith('fairshare_targets: ') and message in str(err.value)


def test_errors_are_value_errors():
    with pytest.raises(ValueError):
        fairshare.targets([{'name': 'a', 'share': 2}])


@settings(max_examples=200, deadline=None)
@given(total=st.integers(0, 10 ** 6), weights=st.lists(st.integers(0, 1000), min_size=1, max_size=8))
def test_apportion_is_exact_and_within_one(total, weights):
    shares = dict((i, Fraction(w, max(1, sum(weights)))) for i, w in enumerate(weights))
    shares['rest'] = 1 - sum(shares.values(), Fraction(0))
    shares = dict(((1, k) if k == 'rest' else (0, k), v) for k, v in shares.items())
    parts = fairshare.apportion(total, shares)
    assert sum(parts.values()) == total
    for key, share in shares.items():
        assert abs(parts[key] - total * share) < 1
        if share == 0:
            assert parts[key] == 0


def test_apportion_ties_go_to_the_first_name():
    assert fairshare.apportion(1, {'b': Fraction(1, 2), 'a': Fraction(1, 2)}) == {'a': 1, 'b': 0}
    with pytest.raises(ValueError, match='not 1'):
        fairshare.apportion(1, {'a': Fraction(1, 2)})


def test_registered():
    assert FilterModule().filters() == {'fairshare_targets': fairshare_targets}

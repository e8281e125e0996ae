# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The platform's communities and their fair-share targets: the one place that checks them.

The communities are the inventory variable ``platform_groups``
(``docs/people.md``): ``name``, ``parent``, ``share`` (fraction 0..1 of the
parent's resources, of the whole platform at the top), ``accept_surplus`` and
``priority_factor``.  HTCondor's accounting groups, Kueue's queues and the
accounting reports all read them through :func:`communities` (exact shares,
as fractions) or :func:`targets` (floats).

Rules checked here, each failure a :class:`FairShareError` naming the
community: a list of mappings with a ``name`` (lower-case letters, digits,
``_`` and ``-``, at most 32 characters), no name twice, known parents, no
cycle, a share between 0 and 1, siblings' shares adding up to 1 at most, a
priority factor of at least 1.

The target of a community is its absolute fraction of the platform: the
product of the shares along its chain from the top.  A community without a
share has target 0 (it only uses what others leave idle), and so has
everything below it.

Pure Python, standard library only.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math
import re
from fractions import Fraction

NAME = re.compile(r'^[a-z][a-z0-9_-]{0,31}$')
DEFAULT_PRIORITY_FACTOR = 1000.0


class FairShareError(ValueError):
    """Communities that cannot be used; the message names the culprit."""


def exact(value):
    """A float as the exact decimal fraction it was written as (0.6 -> 3/5), so that 0.1 + 0.2 + 0.7 == 1."""
    return Fraction(repr(float(value)))


def _share(item):
    share = item.get('share')
    if share is None:
        return None
    try:
        share = float(share)
    except (TypeError, ValueError):
        share = -1.0
    if not 0.0 <= share <= 1.0:
        raise FairShareError('share of %r must be a fraction between 0 and 1, got %r' % (item['name'], item.get('share')))
    return exact(share)


def _factor(item, default):
    factor = item.get('priority_factor', default)
    try:
        factor = float(factor)
    except (TypeError, ValueError):
        factor = 0.0
    if not (factor >= 1.0 and math.isfinite(factor)):
        raise FairShareError('priority_factor of %r must be a number >= 1, got %r' % (item['name'], item.get('priority_factor', default)))
    return factor


def communities(groups, accept_surplus=True, priority_factor=DEFAULT_PRIORITY_FACTOR):
    """The checked communities, parents before children (depth first, siblings by name).

    Each is {name, parent ('' at the top), path [root .. self], depth (1 at
    the top), share (Fraction or None), target (Fraction), children [names],
    accept_surplus, priority_factor}.
    """
    if not isinstance(groups, (list, tuple)):
        raise FairShareError('expected a list of communities, got %r' % (groups,))
    items = {}
    for item in groups:
        if not isinstance(item, dict) or 'name' not in item:
            raise FairShareError('every community needs a name, got %r' % (item,))
        name = item['name']
        if not isinstance(name, str) or not NAME.match(name):
            raise FairShareError('%r is not a community name (lower case letters, digits, _ and -)' % (name,))
        if name in items:
            raise FairShareError('community %r is listed twice' % name)
        items[name] = item
    parents = dict((name, str(item.get('parent') or '')) for name, item in items.items())
    for name, parent in parents.items():
        if parent and parent not in parents:
            raise FairShareError('community %r has an unknown parent %r' % (name, parent))

    def chain(name):
        out, seen = [], set()
        while name:
            if name in seen:
                raise FairShareError('the parents of %r form a cycle' % name)
            seen.add(name)
            out.insert(0, name)
            name = parents[name]
        return out

    paths = dict((name, chain(name)) for name in items)
    out = {}
    for name, item in items.items():
        out[name] = {
            'name': name,
            'parent': parents[name],
            'path': paths[name],
            'depth': len(paths[name]),
            'share': _share(item),
            'children': sorted(n for n, p in parents.items() if p == name),
            'accept_surplus': bool(item.get('accept_surplus', accept_surplus)),
            'priority_factor': _factor(item, priority_factor),
        }
    for parent in [''] + sorted(items):
        siblings = sorted(n for n, p in parents.items() if p == parent)
        total = sum((out[n]['share'] or 0 for n in siblings), Fraction(0))
        if total > 1:
            where = 'the children of %r' % parent if parent else 'the top-level communities'
            raise FairShareError('the shares of %s (%s) add up to %s, more than 1'
                                 % (where, ', '.join(siblings), float(total)))
    result = sorted(out.values(), key=lambda c: c['path'])
    for community in result:
        above = out[community['parent']]['target'] if community['parent'] else Fraction(1)
        community['target'] = above * (community['share'] or 0)
    return result


def targets(groups, accept_surplus=True, priority_factor=DEFAULT_PRIORITY_FACTOR):
    """[{name, parent, path, depth, share (float or None), target (float), accept_surplus, priority_factor}].

    Parents before children; ``target`` is the absolute fraction of the whole
    platform (product of the shares along the chain; 0.0 without a share).
    """
    result = []
    for c in communities(groups, accept_surplus, priority_factor):
        result.append({
            'name': c['name'],
            'parent': c['parent'],
            'path': list(c['path']),
            'depth': c['depth'],
            'share': None if c['share'] is None else float(c['share']),
            'target': float(c['target']),
            'accept_surplus': c['accept_surplus'],
            'priority_factor': c['priority_factor'],
        })
    return result


def apportion(total, shares):
    """Split the whole number ``total`` by ``shares`` ({key: Fraction}, adding up to exactly 1), largest remainder.

    Each key gets floor(total * share); the units left go one each to the
    largest remainders, ties to the key that sorts first (keys are compared
    as given: use tuples to rank them).  Every result is within 1 of
    total * share and the results add up to ``total``.
    """
    if sum(shares.values(), Fraction(0)) != 1:
        raise FairShareError('apportion: shares add up to %s, not 1' % sum(shares.values(), Fraction(0)))
    exact_parts = dict((key, total * share) for key, share in shares.items())
    out = dict((key, int(math.floor(part))) for key, part in exact_parts.items())
    left = total - sum(out.values())
    for key in sorted(shares, key=lambda k: (-(exact_parts[k] - out[k]), k))[:left]:
        out[key] += 1
    return out

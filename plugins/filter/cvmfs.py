# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for the CVMFS client configuration: repositories, proxies, cache quota."""

from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError

_REPO = re.compile(r'^[a-z0-9][a-z0-9-]*(\.[a-z0-9][a-z0-9-]*)+$')
_PROXY = re.compile(r'^(DIRECT|auto|http://[A-Za-z0-9.-]+(:[0-9]{1,5})?/?)$')


def cvmfs_repositories(value):
    """Repository names from 'a b,c' or [a, b]."""
    if value is None:
        return []
    if isinstance(value, str):
        items = re.split(r'[\s,]+', value.strip())
    elif isinstance(value, (list, tuple)):
        items = []
        for item in value:
            items.extend(re.split(r'[\s,]+', str(item).strip()))
    else:
        raise AnsibleFilterError('cvmfs_repositories: expected a string or a list, got %r' % (value,))
    out = []
    for name in items:
        if not name:
            continue
        if not _REPO.match(name):
            raise AnsibleFilterError('cvmfs_repositories: %r is not a repository name such as cms.cern.ch' % name)
        if name not in out:
            out.append(name)
    return out


def cvmfs_proxy_errors(value):
    """Problems of a CVMFS_HTTP_PROXY string ('a|b;c;DIRECT'); [] when it is valid or empty."""
    if value is None or str(value).strip() == '':
        return []
    value = str(value).strip()
    errors = []
    for group in value.split(';'):
        if group == '':
            errors.append('empty failover group (";;" or a leading/trailing ";")')
            continue
        for member in group.split('|'):
            if member == '':
                errors.append('empty load-balance member ("||" or a leading/trailing "|") in %r' % group)
            elif not _PROXY.match(member):
                errors.append('%r is not http://host[:port], DIRECT or auto' % member)
            else:
                port = re.search(r':([0-9]+)/?$', member)
                if port and not 1 <= int(port.group(1)) <= 65535:
                    errors.append('%r has a port out of range' % member)
    return errors


def _size_mb(value, cache_base):
    """Size in MB of the filesystem holding cache_base: value is a size in MB or ansible_facts.mounts."""
    if isinstance(value, bool):
        raise AnsibleFilterError('cvmfs_quota_mb: expected a size in MB or ansible_facts.mounts, got %r' % (value,))
    if isinstance(value, (int, float)) or (isinstance(value, str) and value.strip().isdigit()):
        return int(value)
    if not isinstance(value, (list, tuple)):
        raise AnsibleFilterError('cvmfs_quota_mb: expected a size in MB or ansible_facts.mounts, got %r' % (value,))
    if not cache_base:
        raise AnsibleFilterError('cvmfs_quota_mb: the cache directory is needed with a list of mounts')
    path = str(cache_base).rstrip('/') or '/'
    best = None
    for mount in value:
        point = str(mount.get('mount', '')).rstrip('/') or '/'
        if point == '/' or path == point or path.startswith(point + '/'):
            if best is None or len(point) > len(best[0]):
                best = (point, mount)
    if best is None:
        raise AnsibleFilterError('cvmfs_quota_mb: no mounted filesystem holds %s' % path)
    return int(best[1].get('size_total') or 0) // (1024 * 1024)


def cvmfs_quota_mb(value, cache_base=None, fraction=0.8, reserve_mb=0):
    """Quota in MB: a fraction of the size of the filesystem that holds the cache.

    ``value`` is that size in MB, or ``ansible_facts.mounts`` ([{mount,
    size_total}]) where the longest mount point that is a prefix of
    ``cache_base`` holds it.
    """
    size_mb = _size_mb(value, cache_base)
    try:
        fraction = float(fraction)
    except (TypeError, ValueError):
        raise AnsibleFilterError('cvmfs_quota_mb: fraction must be a number, got %r' % (fraction,))
    if not 0 < fraction <= 1:
        raise AnsibleFilterError('cvmfs_quota_mb: fraction must be in (0, 1], got %r' % fraction)
    return max(int(size_mb * fraction) - int(reserve_mb), 0)


def cvmfs_fs_size_mb(mounts, cache_base):
    """Size in MB of the filesystem that holds cache_base."""
    return cvmfs_quota_mb(mounts, cache_base, 1.0)


class FilterModule(object):
    def filters(self):
        return {
            'cvmfs_repositories': cvmfs_repositories,
            'cvmfs_proxy_errors': cvmfs_proxy_errors,
            'cvmfs_quota_mb': cvmfs_quota_mb,
            'cvmfs_fs_size_mb': cvmfs_fs_size_mb,
        }

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""CVMFS filters: repositories, proxy strings, cache quota."""
import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.fedgpu.platform.plugins.filter.cvmfs import (
    FilterModule, cvmfs_fs_size_mb, cvmfs_proxy_errors, cvmfs_quota_mb, cvmfs_repositories)

MIB = 1024 * 1024


@pytest.mark.parametrize('value, expected', [
    ('cms.cern.ch sft.cern.ch atlas.cern.ch', ['cms.cern.ch', 'sft.cern.ch', 'atlas.cern.ch']),
    ('  cms.cern.ch,sft.cern.ch\tcms.cern.ch ', ['cms.cern.ch', 'sft.cern.ch']),
    (['cms.cern.ch', 'sft.cern.ch atlas.cern.ch'], ['cms.cern.ch', 'sft.cern.ch', 'atlas.cern.ch']),
    ('', []),
    (None, []),
])
def test_repositories(value, expected):
    assert cvmfs_repositories(value) == expected


@pytest.mark.parametrize('value', ['cms', 'CMS.cern.ch', 'cms.cern.ch;rm', 42])
def test_bad_repositories(value):
    with pytest.raises(AnsibleFilterError, match='cvmfs_repositories'):
        cvmfs_repositories(value)


@pytest.mark.parametrize('value', [
    '', None, 'DIRECT', 'http://squid:3128', 'http://a:3128|http://b:3128;DIRECT',
    'http://a.example.org:3128|http://b.example.org:3128;http://c.example.org:8080;DIRECT', 'auto;DIRECT',
])
def test_good_proxies(value):
    assert cvmfs_proxy_errors(value) == []


@pytest.mark.parametrize('value, fragment', [
    ('http://a:3128;;DIRECT', 'empty failover group'),
    ('http://a:3128|', 'empty load-balance member'),
    ('squid:3128', 'is not http://host'),
    ('https://a:3128', 'is not http://host'),
    ('http://a:99999', 'port out of range'),
    ('http://a:3128 http://b:3128', 'is not http://host'),
])
def test_bad_proxies(value, fragment):
    errors = cvmfs_proxy_errors(value)
    assert errors and any(fragment in e for e in errors)


MOUNTS = [
    {'mount': '/', 'size_total': 10000 * MIB},
    {'mount': '/var', 'size_total': 1000 * MIB},
    {'mount': '/var/lib/cvmfs', 'size_total': 500 * MIB},
    {'mount': '/var/lib/cvmfs2', 'size_total': 200 * MIB},
]


@pytest.mark.parametrize('path, fraction, expected', [
    ('/var/lib/cvmfs', 0.8, 400),
    ('/var/lib/cvmfs/', 1, 500),
    ('/var/lib/cvmfsx', 0.5, 500),   # a sibling's prefix does not count: /var holds it
    ('/srv', 0.5, 5000),
])
def test_quota(path, fraction, expected):
    assert cvmfs_quota_mb(MOUNTS, path, fraction) == expected


@pytest.mark.parametrize('size, expected', [(50000, 40000), ('1000', 800), (200.0, 160)])
def test_quota_from_size(size, expected):
    assert cvmfs_quota_mb(size) == expected


def test_quota_reserve_and_size():
    assert cvmfs_quota_mb(MOUNTS, '/var/lib/cvmfs', 0.8, 100) == 300
    assert cvmfs_fs_size_mb(MOUNTS, '/var/lib/cvmfs2/x') == 200


@pytest.mark.parametrize('mounts, fraction', [([], 0.8), ('x', 0.8), (True, 0.8), (MOUNTS, 0), (MOUNTS, 1.5), (MOUNTS, 'x')])
def test_quota_errors(mounts, fraction):
    with pytest.raises(AnsibleFilterError, match='cvmfs_quota_mb'):
        cvmfs_quota_mb(mounts, '/var/lib/cvmfs', fraction)


def test_filters_registered():
    assert set(FilterModule().filters()) == {
        'cvmfs_repositories', 'cvmfs_proxy_errors', 'cvmfs_quota_mb', 'cvmfs_fs_size_mb'}

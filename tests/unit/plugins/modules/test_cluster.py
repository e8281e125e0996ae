# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Input validation of fedgpu.platform.cluster (no cloud needed)."""
import os

import pytest
import yaml

from ansible_collections.fedgpu.platform.plugins.modules import cluster

FIXTURES = os.path.join(os.path.dirname(__file__), '..', '..', 'fixtures', 'openstack_federation')
with open(os.path.join(FIXTURES, 'validate.yml')) as _f:
    CASES = yaml.safe_load(_f)

GROUP_DEFAULTS = {'count': 1, 'flavor': None, 'vcpus': None, 'ram': None, 'gpus': None, 'gpu_model': None, 'volume_size': None,
                  'site': None, 'sites': None, 'public_ip': None, 'metadata': {}}


def params(**over):
    base = {'name': 'ml', 'state': 'present', 'clouds': [{'name': 'a'}, {'name': 'b'}],
            'groups': [{'name': 'frontend', 'flavor': 'm1.small', 'image': 'img', 'site': 'a'},
                       {'name': 'gpu', 'count': 2, 'gpus': 1, 'image': 'img', 'sites': ['b', 'a']}]}
    base.update(over)
    base['groups'] = [dict(GROUP_DEFAULTS, **g) for g in base['groups']]
    return base


@pytest.mark.parametrize('case', CASES, ids=[c['id'] for c in CASES])
def test_validate_spec(case):
    errors = cluster.validate_spec(params(**case['params']))
    if not case['errors']:
        assert errors == []
    for expected in case['errors']:
        assert any(expected in e for e in errors), (expected, errors)


def test_public_ip_defaults_to_the_frontend_only():
    assert cluster.public_ip_of({'name': 'frontend', 'public_ip': None}, 'frontend') is True
    assert cluster.public_ip_of({'name': 'gpu', 'public_ip': None}, 'frontend') is False
    assert cluster.public_ip_of({'name': 'gpu', 'public_ip': True}, 'frontend') is True
    assert cluster.public_ip_of({'name': 'bastion', 'public_ip': None}, 'bastion') is True


def test_default_cidr_per_site_position():
    assert cluster.default_cidr(1) == '10.42.1.0/24'
    assert cluster.default_cidr(2) == '10.42.2.0/24'

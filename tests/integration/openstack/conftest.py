# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures for the tests against real OpenStack services (two loopback sites).

The session fixture ``sites`` starts the sites with ``sites.sh start`` and stops
them at the end.  If they cannot be started the tests FAIL; only a missing
dependency (``sites.sh`` exit code 4: Debian or PyPI packages that cannot be
installed) makes them skip, naming it.  ``FEDGPU_OS_REUSE=1`` reuses running
sites (and leaves them running): for development only.
"""
import os
import subprocess
import sys
import time

import pytest

from osenv import CLOUDS_YAML, SITE_A, SITE_B, SITES_SH


def _status_ok():
    proc = subprocess.run(['bash', SITES_SH, 'status'], capture_output=True, text=True, check=False)
    return proc.returncode == 0 and os.path.exists(CLOUDS_YAML)


@pytest.fixture(scope='session')
def sites():
    reuse = os.environ.get('FEDGPU_OS_REUSE') == '1'
    if reuse and _status_ok():
        yield CLOUDS_YAML
        return
    t0 = time.time()
    proc = subprocess.run(['bash', SITES_SH, 'start'], capture_output=True, text=True, check=False)
    if proc.returncode == 4:
        pytest.skip('OpenStack test sites: a dependency is unavailable: %s' % proc.stderr.strip().splitlines()[-1])
    if proc.returncode != 0:
        subprocess.run(['bash', SITES_SH, 'stop'], check=False)
        pytest.fail('OpenStack test sites did not start (rc %s):\n%s' % (proc.returncode, proc.stderr[-4000:]), pytrace=False)
    sys.stderr.write('\nOpenStack test sites started in %.0fs\n' % (time.time() - t0))
    try:
        yield CLOUDS_YAML
    finally:
        if not reuse:
            subprocess.run(['bash', SITES_SH, 'stop'], check=False)


@pytest.fixture(scope='session')
def conns(sites):
    """openstacksdk connections: member (what the module uses) and admin, per site."""
    import openstack.config
    config = openstack.config.OpenStackConfig(config_files=[sites])
    out = {}
    for name in (SITE_A, SITE_B):
        for suffix in ('', '-admin'):
            out[name + suffix] = openstack.connection.Connection(config=config.get_one(cloud=name + suffix))
    return out

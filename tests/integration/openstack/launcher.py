# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""WSGI launcher for the test sites, served by gunicorn.

The OpenStack WSGI apps parse ``sys.argv`` through oslo.config; gunicorn's own
arguments would leak in.  This module clears argv and lets each app find its
configuration through its ``OS_<SERVICE>_CONFIG_*`` environment variables,
which sitectl.py sets per process.
"""
import importlib
import os
import sys

_MODULES = {
    'keystone': 'keystone.wsgi.api',
    'nova': 'nova.wsgi.osapi_compute',
    'placement': 'placement.wsgi.api',
    'neutron': 'neutron.wsgi.api',
    'glance': 'glance.wsgi.api',
}

SERVICE = os.environ['FEDGPU_WSGI_SERVICE']
sys.argv = [SERVICE]
application = importlib.import_module(_MODULES[SERVICE]).application

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared code for the OpenStack federation module and inventory plugin.

Pure helpers (GPU facts from flavor extra specs, flavor matching, placement)
have no dependency on openstacksdk so that they can be unit-tested without a
cloud; the SDK is only needed by :func:`connect` and the capacity readers.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import importlib
import re
import traceback

# The openstacksdk package, once import_openstacksdk() has imported it.
openstack = None  # pylint: disable=invalid-name


def import_openstacksdk():
    """Import openstacksdk on first use; True when it is there.

    It is not imported with this module: its import alone costs about half a
    second, which the inventory plugin must not pay on a cache hit or on its
    fast path (:mod:`openstack_rest`).  ``HAS_OPENSTACKSDK`` and
    ``OPENSTACKSDK_IMPORT_ERROR``, imported from here, import it (see
    ``__getattr__``).
    """
    if 'HAS_OPENSTACKSDK' not in globals():
        try:
            for name in ('openstack.config', 'openstack.connection', 'openstack.exceptions'):
                importlib.import_module(name)
            globals().update(openstack=importlib.import_module('openstack'), HAS_OPENSTACKSDK=True, OPENSTACKSDK_IMPORT_ERROR=None)
        except ImportError:
            globals().update(HAS_OPENSTACKSDK=False, OPENSTACKSDK_IMPORT_ERROR=traceback.format_exc())
    return globals()['HAS_OPENSTACKSDK']


def __getattr__(name):
    """Module attributes that import openstacksdk when first asked for (PEP 562)."""
    if name in ('HAS_OPENSTACKSDK', 'OPENSTACKSDK_IMPORT_ERROR') and name not in globals():
        import_openstacksdk()
        if name in globals():
            return globals()[name]
    raise AttributeError('module %r has no attribute %r' % (__name__, name))


# Metadata keys (Nova server metadata) that name what a cluster made.
META_CLUSTER = 'fedgpu_cluster'
META_GROUP = 'fedgpu_group'
META_INDEX = 'fedgpu_index'
META_SITE = 'fedgpu_site'
META_FRONTEND = 'fedgpu_frontend'
# Neutron resources carry this tag prefix followed by the cluster name.
TAG_PREFIX = 'fedgpu-cluster:'

DEFAULT_GPU_MODEL_KEYS = ('gpu:model', 'gpu_model', 'aggregate_instance_extra_specs:gpu_model')

_RESOURCE_KEY = re.compile(r'^resources[0-9_a-zA-Z-]*:(?P<rc>[A-Z0-9_]+)$')


class FederationError(Exception):
    """An error meant for the operator (shown as the module's msg)."""


def cluster_tag(cluster):
    return TAG_PREFIX + cluster


def resource_name(cluster):
    """Name of what a cluster makes once per site: network, subnet, router, key pair (``fedgpu-<cluster>``).

    The network's name is also the key of the servers' addresses on it.
    """
    return 'fedgpu-%s' % cluster


def is_gpu_resource_class(rc):
    return rc in ('VGPU', 'PGPU') or (rc.startswith('CUSTOM_') and 'GPU' in rc)


def gpu_info(extra_specs, model_keys=DEFAULT_GPU_MODEL_KEYS):
    """GPU facts from a flavor's extra specs.

    Counts ``resources[N]:VGPU|PGPU|CUSTOM_*GPU*`` and PCI passthrough aliases
    (``pci_passthrough:alias = a100:2``); the model is the first of
    ``model_keys`` that is set, else the PCI alias name.  Returns
    ``{'count': int, 'model': str or None, 'resources': {rc: n}}``.
    """
    specs = extra_specs or {}
    count = 0
    model = None
    resources = {}
    for key, value in specs.items():
        match = _RESOURCE_KEY.match(key)
        if match and is_gpu_resource_class(match.group('rc')):
            try:
                n = int(value)
            except (TypeError, ValueError):
                continue
            resources[match.group('rc')] = resources.get(match.group('rc'), 0) + n
            count += n
        elif key == 'pci_passthrough:alias' and value:
            for part in str(value).split(','):
                alias, _sep, n = part.strip().partition(':')
                try:
                    count += int(n or 1)
                except ValueError:
                    continue
                model = model or alias
    for key in model_keys or ():
        if specs.get(key):
            model = str(specs[key])
            break
    return {'count': count, 'model': model if count else None, 'resources': resources}


def flavor_facts(flavor):
    """Plain dict of the flavor attributes the planner needs."""
    get = flavor.get if isinstance(flavor, dict) else (lambda k, d=None: getattr(flavor, k, d))
    specs = get('extra_specs') or {}
    return {
        'id': get('id'),
        'name': get('name'),
        'vcpus': int(get('vcpus') or 0),
        'ram': int(get('ram') or 0),
        'disk': int(get('disk') or 0),
        'extra_specs': dict(specs),
        'gpu': gpu_info(specs),
    }


def match_flavor(flavors, name=None, vcpus=None, ram=None, gpus=None, gpu_model=None):
    """Pick a flavor by name, or the smallest one that meets the requirements.

    ``flavors`` are :func:`flavor_facts` dicts.  The smallest is ordered by
    GPUs, then vCPUs, then RAM, then name, so a CPU-only request never lands on
    a GPU flavor when a CPU flavor fits.  Returns None when nothing matches.
    """
    if name:
        for flavor in flavors:
            if flavor['name'] == name or flavor['id'] == name:
                return flavor
        return None
    fits = []
    for flavor in flavors:
        if vcpus and flavor['vcpus'] < vcpus:
            continue
        if ram and flavor['ram'] < ram:
            continue
        if gpus and flavor['gpu']['count'] < gpus:
            continue
        if gpu_model and (flavor['gpu']['model'] or '').lower() != gpu_model.lower():
            continue
        fits.append(flavor)
    if not fits:
        return None
    return sorted(fits, key=lambda f: (f['gpu']['count'], f['vcpus'], f['ram'], f['name']))[0]


def node_need(flavor, public_ip):
    """What one server of ``flavor`` takes from a site's quota and capacity."""
    return {
        'instances': 1,
        'cores': flavor['vcpus'],
        'ram': flavor['ram'],
        'floating_ips': 1 if public_ip else 0,
        'gpu': dict(flavor['gpu']['resources']),
    }


def fits(free, need):
    """True when ``need`` fits in ``free`` (None means unlimited/unknown)."""
    for key in ('instances', 'cores', 'ram', 'floating_ips'):
        have = free.get(key)
        if have is not None and need.get(key, 0) > have:
            return False
    gpu_free = free.get('gpu')
    if gpu_free is not None:
        for rc, n in need.get('gpu', {}).items():
            if n > gpu_free.get(rc, 0):
                return False
    return True


def take(free, need):
    for key in ('instances', 'cores', 'ram', 'floating_ips'):
        if free.get(key) is not None:
            free[key] -= need.get(key, 0)
    if free.get('gpu') is not None:
        for rc, n in need.get('gpu', {}).items():
            free['gpu'][rc] = free['gpu'].get(rc, 0) - n


def plan_placement(requests, capacity):
    """Place new nodes on sites.

    ``requests``: list of dicts with ``key`` (anything printable),
    ``candidates`` (site names, in preference order) and ``needs`` (a dict
    site -> :func:`node_need`, since a flavor may differ per site).
    ``capacity``: site -> free resources (see :func:`fits`); it is updated.
    Each node goes to the first candidate where it fits.  Returns
    ``(placed, unplaced)``: ``placed`` a list of (request, site),
    ``unplaced`` a list of (request, reason).
    """
    placed = []
    unplaced = []
    for req in requests:
        chosen = None
        reasons = []
        for site in req['candidates']:
            need = req['needs'].get(site)
            if need is None:
                reasons.append('%s: cannot host it' % site)
                continue
            free = capacity.setdefault(site, {})
            if fits(free, need):
                chosen = site
                take(free, need)
                break
            reasons.append('%s: %s' % (site, describe_shortage(free, need)))
        if chosen:
            placed.append((req, chosen))
        else:
            unplaced.append((req, '; '.join(reasons) or 'no candidate site'))
    return placed, unplaced


def describe_shortage(free, need):
    short = []
    for key in ('instances', 'cores', 'ram', 'floating_ips'):
        have = free.get(key)
        if have is not None and need.get(key, 0) > have:
            short.append('%s quota left %s, needs %s' % (key, have, need.get(key, 0)))
    if free.get('gpu') is not None:
        for rc, n in need.get('gpu', {}).items():
            if n > free['gpu'].get(rc, 0):
                short.append('%s left %s, needs %s' % (rc, free['gpu'].get(rc, 0), n))
    return ', '.join(short) or 'no capacity'


def candidate_sites(group, site_names):
    """Ordered candidate sites of a node group (pin, preference or all)."""
    if group.get('site'):
        return [group['site']]
    if group.get('sites'):
        return list(group['sites'])
    return list(site_names)


# ------------------------------------------------------------------ SDK side

def openstack_config(clouds_yaml=None):
    """openstacksdk's view of ``clouds.yaml``: the file ``clouds_yaml``, else the usual search path.

    ``OS_CLIENT_CONFIG_FILE`` comes first either way, as openstacksdk reads it.
    """
    if not import_openstacksdk():
        raise FederationError('openstacksdk is required')
    try:
        return openstack.config.OpenStackConfig(config_files=[clouds_yaml]) if clouds_yaml else openstack.config.OpenStackConfig()
    except openstack.exceptions.ConfigException as exc:
        raise FederationError('clouds.yaml: %s' % exc)


def cloud_names(clouds_yaml=None):
    """Names of the clouds in ``clouds.yaml`` (openstacksdk's view), sorted."""
    return sorted(openstack_config(clouds_yaml).get_cloud_names())


def load_cloud_config(cloud, region=None, clouds_yaml=None, **overrides):
    """Return an openstack.config CloudRegion or raise FederationError."""
    config = openstack_config(clouds_yaml)
    try:
        known = sorted(config.get_cloud_names())
        if cloud not in known:
            raise FederationError("unknown cloud '%s' (clouds.yaml has: %s)" % (cloud, ', '.join(known) or 'none'))
        return config.get_one(cloud=cloud, region_name=region, **overrides)
    except openstack.exceptions.ConfigException as exc:
        raise FederationError('cloud %s: %s' % (cloud, exc))


def connect(cloud, region=None, clouds_yaml=None, timeout=None):
    cloud_region = load_cloud_config(cloud, region, clouds_yaml)
    if timeout:
        cloud_region.config['api_timeout'] = timeout
    return openstack.connection.Connection(config=cloud_region)


def read_capacity(conn):
    """Free quota (instances, cores, RAM, floating IPs) and GPU capacity.

    GPU capacity comes from Placement and needs credentials allowed to read
    it (usually admin); otherwise it is None (unknown) and a full site shows
    up as a refused boot, which the module reschedules.
    """
    free = {}
    limits = conn.compute.get_limits().absolute
    for key, total, used in (('instances', 'instances', 'instances_used'), ('cores', 'total_cores', 'total_cores_used'),
                             ('ram', 'total_ram', 'total_ram_used')):
        t = getattr(limits, total)
        free[key] = None if t is None or t < 0 else max(0, t - (getattr(limits, used) or 0))
    free['floating_ips'] = None
    try:
        quota = conn.network.get_quota(conn.current_project_id, details=True)
        fip = quota.floating_ips
        if isinstance(fip, dict) and fip.get('limit', -1) >= 0:
            free['floating_ips'] = max(0, fip['limit'] - fip.get('used', 0) - fip.get('reserved', 0))
    except openstack.exceptions.SDKException:
        pass
    free['gpu'] = read_gpu_capacity(conn)
    return free


def read_gpu_capacity(conn):
    try:
        rps = conn.placement.get('/resource_providers', microversion='1.14')
        if rps.status_code != 200:
            return None
        free = {}
        for rp in rps.json().get('resource_providers', []):
            inv = conn.placement.get('/resource_providers/%s/inventories' % rp['uuid']).json().get('inventories', {})
            usage = conn.placement.get('/resource_providers/%s/usages' % rp['uuid']).json().get('usages', {})
            for rc, data in inv.items():
                if not is_gpu_resource_class(rc):
                    continue
                total = int((data['total'] - data.get('reserved', 0)) * data.get('allocation_ratio', 1.0))
                free[rc] = free.get(rc, 0) + max(0, total - usage.get(rc, 0))
        return free
    except Exception:  # pylint: disable=broad-except
        # Placement not in the catalog, or a policy refusal: capacity unknown.
        return None


def server_addresses(server, network_name=None):
    """(private, public) IPv4 addresses from a server's ``addresses``."""
    private = public = None
    addresses = (server.get('addresses') if isinstance(server, dict) else getattr(server, 'addresses', None)) or {}
    names = [network_name] if network_name and network_name in addresses else sorted(addresses)
    for name in names:
        for addr in addresses.get(name) or []:
            if addr.get('version', 4) != 4:
                continue
            if addr.get('OS-EXT-IPS:type') == 'floating':
                public = public or addr.get('addr')
            else:
                private = private or addr.get('addr')
    return private, public

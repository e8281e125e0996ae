# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Server lifecycle of a federated cluster.

- :func:`reconcile_nodes`: which existing servers to keep and to remove, and
  which (group, index) nodes are missing (no cloud needed).
- :func:`create_server`, :func:`delete_server`: one server on one site, with
  its floating IP; a server that does not become ACTIVE is deleted again.
- :func:`boot_anywhere`: try a node on its sites in order until one boots it.
- :func:`describe_server`, :func:`planned_node`: the items of the module's
  ``nodes`` result.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import time

from ansible_collections.fedgpu.platform.plugins.module_utils.openstack_federation import (
    META_CLUSTER, META_FRONTEND, META_GROUP, META_INDEX, META_SITE, FederationError, gpu_info, server_addresses)


def server_name(cluster, group, index):
    return '%s-%s-%d' % (cluster, group, index)


def node_key(server):
    """(group, index) of a cluster's server, or None when its metadata has no valid index."""
    md = server.metadata or {}
    try:
        return md.get(META_GROUP), int(md.get(META_INDEX, ''))
    except ValueError:
        return None


def reconcile_nodes(existing, groups):
    """Compare the servers that exist with the wanted node groups.

    ``existing``: list of (site, server) of the cluster, ``site`` anything;
    ``groups``: the wanted groups (``name``, ``count``). A server of a listed
    group is removed when its index is beyond the group's count or when it is
    in ERROR (the node is then made again); of two servers with the same
    (group, index) the older one stays. Servers of groups not listed stay.
    Returns ``(keep, remove, missing)``: lists of (site, server), and of
    (group, index) to create, in the order of ``groups``.
    """
    wanted = dict((g['name'], g) for g in groups)
    keep = []
    remove = []
    seen = set()
    for site, server in sorted(existing, key=lambda item: (item[1].created_at or '', item[1].id)):
        key = node_key(server)
        if key is None:
            continue
        group = wanted.get(key[0])
        if group is not None and (key[1] > group['count'] or server.status == 'ERROR'):
            remove.append((site, server))
        elif key in seen:
            remove.append((site, server))
        else:
            seen.add(key)
            keep.append((site, server))
    missing = [(g, index) for g in groups for index in range(1, g['count'] + 1) if (g['name'], index) not in seen]
    return keep, remove, missing


def server_metadata(cluster, group, index, site_name, frontend, extra=None):
    """Server metadata: the group's own (as strings), then the keys that name the node."""
    md = dict((k, str(v)) for k, v in (extra or {}).items())
    md.update({META_CLUSTER: cluster, META_GROUP: group, META_INDEX: str(index), META_SITE: site_name,
               META_FRONTEND: 'true' if frontend else 'false'})
    return md


def server_attrs(name, flavor_id, image_id, network_id, security_groups, metadata, key_name=None, volume_size=None):
    """Keyword arguments of ``compute.create_server``; with ``volume_size``, boot from a new volume deleted with the server."""
    attrs = {
        'name': name,
        'flavor_id': flavor_id,
        'networks': [{'uuid': network_id}],
        'security_groups': [{'name': sg} for sg in security_groups],
        'metadata': metadata,
        'image_id': image_id,
    }
    if key_name:
        attrs['key_name'] = key_name
    if volume_size:
        attrs['block_device_mapping'] = [{'boot_index': 0, 'uuid': image_id, 'source_type': 'image', 'destination_type': 'volume',
                                          'volume_size': volume_size, 'delete_on_termination': True}]
        attrs['image_id'] = ''
    return attrs


def wait_active(conn, server, timeout, sleep=time.sleep):
    """The server once ACTIVE; FederationError with Nova's fault when it goes to ERROR, or after ``timeout`` seconds."""
    deadline = time.time() + timeout
    delay = 0.5
    while True:
        server = conn.compute.get_server(server.id)
        if server.status == 'ACTIVE':
            return server
        if server.status == 'ERROR':
            raise FederationError((server.fault or {}).get('message') or 'boot failed')
        if time.time() > deadline:
            raise FederationError('not ACTIVE after %ss (status %s)' % (timeout, server.status))
        sleep(delay)
        delay = min(delay * 1.5, 3)


def attach_floating_ip(conn, server, network_id, floating):
    """A floating IP on the server's port in ``network_id``; ``floating``: ``network_id`` (external), ``tag``, ``description``."""
    net_api = conn.network
    port = next(iter(net_api.ports(device_id=server.id, network_id=network_id)), None)
    if port is None:
        raise FederationError('server %s has no port on the cluster network' % server.name)
    fip = net_api.create_ip(floating_network_id=floating['network_id'], port_id=port.id, description=floating['description'])
    net_api.set_tags(fip, [floating['tag']])
    # Wait until Nova shows it (Neutron notifies Nova asynchronously).
    deadline = time.time() + floating.get('wait', 30)
    while time.time() < deadline:
        if server_addresses(conn.compute.get_server(server.id))[1]:
            return
        time.sleep(0.5)


def delete_server(conn, server, timeout):
    """Delete a server and the floating IPs on its ports; wait until it is gone."""
    net_api = conn.network
    for port in net_api.ports(device_id=server.id):
        for fip in net_api.ips(port_id=port.id):
            net_api.delete_ip(fip, ignore_missing=True)
    conn.compute.delete_server(server, ignore_missing=True)
    conn.compute.wait_for_delete(server, interval=0.5, wait=timeout)


def create_server(conn, attrs, timeout, floating=None):
    """Create a server and wait until it is ACTIVE (with a floating IP when ``floating`` is given, see
    :func:`attach_floating_ip`). A server that fails on the way is deleted and the error raised again."""
    server = conn.compute.create_server(**attrs)
    try:
        server = wait_active(conn, server, timeout)
        if floating:
            attach_floating_ip(conn, server, attrs['networks'][0]['uuid'], floating)
            server = conn.compute.get_server(server.id)
    except Exception:
        delete_server(conn, server, timeout)
        raise
    return server


def boot_anywhere(label, order, attempt, on_failure=None):
    """Call ``attempt(site)`` for each site of ``order`` until one returns; its result.

    A failure (any exception: a refusal, a boot that failed) is passed to
    ``on_failure(site, exc)`` and the next site is tried; when every site
    failed, FederationError names them all.
    """
    errors = []
    for site in order:
        try:
            return attempt(site)
        except Exception as exc:  # pylint: disable=broad-except
            errors.append('%s: %s' % (site, exc))
            if on_failure is not None:
                on_failure(site, exc)
    raise FederationError('node %s could not be created on any site: %s' % (label, '; '.join(errors)))


def node_entry(name, group, index, site, flavor, gpu, frontend, server=None, network_name=None):
    """One item of the module's ``nodes``; ``server`` None for a node check mode would create."""
    private, public = server_addresses(server, network_name) if server is not None else (None, None)
    return {
        'name': name, 'id': server.id if server is not None else None, 'group': group, 'index': index,
        'site': site['name'], 'region': site['region'], 'status': server.status if server is not None else None,
        'flavor': flavor, 'private_ip': private, 'public_ip': public, 'frontend': frontend,
        'gpu': {'count': gpu['count'], 'model': gpu['model']},
    }


def describe_server(server, site, network_name):
    """The ``nodes`` item of an existing server; ``site``: ``name`` and ``region``."""
    md = server.metadata or {}
    flavor = server.flavor
    specs = getattr(flavor, 'extra_specs', None) or {}
    flavor_name = getattr(flavor, 'original_name', None) or getattr(flavor, 'name', None)
    return node_entry(server.name, md.get(META_GROUP), int(md.get(META_INDEX, 0)), site, flavor_name, gpu_info(specs),
                      md.get(META_FRONTEND) == 'true', server, network_name)


def planned_node(name, group, index, site, flavor, frontend):
    """The ``nodes`` item of a node check mode would create on ``site`` with ``flavor`` (flavor facts)."""
    return node_entry(name, group, index, site, flavor['name'], flavor['gpu'], frontend)

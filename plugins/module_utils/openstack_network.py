# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Network lifecycle of a federated cluster on one site.

What a cluster makes once per site: a private network and subnet, a router
to the external network, two security groups (``nodes`` and ``frontend``)
and a key pair. :meth:`SiteNetwork.ensure` reads what exists and creates
only what is missing (in check mode it only lists it);
:meth:`SiteNetwork.remove` removes exactly what carries the cluster's tag.
Both return the list of changes, the same in check mode as for real.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import time

from ansible_collections.fedgpu.platform.plugins.module_utils.openstack_federation import (
    HAS_OPENSTACKSDK, FederationError, cluster_tag, resource_name)

if HAS_OPENSTACKSDK:
    import openstack.exceptions

# The cluster's security groups: every node is in ``nodes``, front ends also in ``frontend``.
# A rule is compared with what exists as a key:
# (ethertype, protocol, port min, port max, remote prefix, remote group or 'self').
SG_KINDS = ('nodes', 'frontend')


def node_rules(cidrs):
    """Ingress rules of the ``nodes`` group: everything from the cluster's subnets (all sites) and from its own members."""
    rules = set(('IPv4', None, None, None, cidr, None) for cidr in cidrs)
    rules.add(('IPv4', None, None, None, None, 'self'))
    return rules


def frontend_rules(ssh_cidrs, public_ports):
    """Ingress rules of the ``frontend`` group: SSH from ``ssh_cidrs``, ``public_ports`` and ICMP from everywhere."""
    rules = set(('IPv4', 'tcp', 22, 22, cidr, None) for cidr in ssh_cidrs)
    rules.update(('IPv4', 'tcp', port, port, '0.0.0.0/0', None) for port in public_ports)
    rules.add(('IPv4', 'icmp', None, None, '0.0.0.0/0', None))
    return rules


def rule_body(sg_id, key):
    """The Neutron request body of one rule key."""
    ether, proto, pmin, pmax, prefix, group = key
    rule = {'security_group_id': sg_id, 'direction': 'ingress', 'ethertype': ether}
    for name, value in (('protocol', proto), ('port_range_min', pmin), ('port_range_max', pmax), ('remote_ip_prefix', prefix),
                        ('remote_group_id', sg_id if group == 'self' else group)):
        if value is not None:
            rule[name] = value
    return rule


def delete_with_retry(func, tries=20, delay=0.5):
    """Call ``func``; retry on a conflict (ports of just-deleted servers can take a moment to go away)."""
    for attempt in range(tries):
        try:
            return func()
        except openstack.exceptions.ConflictException:
            if attempt == tries - 1:
                raise
            time.sleep(delay)
    return None


class SiteNetwork(object):
    """The network resources of cluster ``cluster`` on the site behind ``conn`` (an openstacksdk Connection)."""

    def __init__(self, conn, cluster, site_name):
        self.conn = conn
        self.net_api = conn.network
        self.cluster = cluster
        self.site_name = site_name
        self.tag = cluster_tag(cluster)
        self.name = resource_name(cluster)

    def _tag(self, resource):
        self.net_api.set_tags(resource, [self.tag])
        return resource

    # ------------------------------------------------------------ create
    def ensure(self, cidr, rules, external_network=None, dns_nameservers=None, public_key=None, check=False):
        """Create what is missing; returns ``(resources, changes)``.

        ``rules``: kind (``nodes``, ``frontend``) -> set of rule keys, as
        :func:`node_rules` and :func:`frontend_rules` make them; rules that
        exist and are not wanted are removed. ``resources`` has the
        ``network``, ``subnet``, ``router``, ``security_groups`` (kind ->
        group) and ``keypair`` found or made (None, or missing kinds, for
        what check mode would make).
        """
        changes = []
        net = self.ensure_private_network(changes, check)
        subnet = self.ensure_subnet(net, cidr, dns_nameservers, changes, check)
        router = None
        if external_network is not None:
            router = self.ensure_router(net, subnet, external_network, changes, check)
        sgs = {}
        for kind in SG_KINDS:
            sg = self.ensure_security_group(kind, rules.get(kind, set()), changes, check)
            if sg is not None:
                sgs[kind] = sg
        key = self.ensure_keypair(public_key, changes, check) if public_key else None
        return {'network': net, 'subnet': subnet, 'router': router, 'security_groups': sgs, 'keypair': key}, changes

    def ensure_private_network(self, changes, check):
        net = next(iter(self.net_api.networks(tags=[self.tag])), None)
        if net is None:
            changes.append('network')
            if not check:
                net = self._tag(self.net_api.create_network(name=self.name, description='fedgpu cluster %s' % self.cluster))
        return net

    def ensure_subnet(self, net, cidr, dns_nameservers, changes, check):
        subnet = None
        if net is not None:
            subnet = next(iter(self.net_api.subnets(network_id=net.id, tags=[self.tag])), None)
        if subnet is None:
            changes.append('subnet')
            if not check:
                subnet = self._tag(self.net_api.create_subnet(network_id=net.id, name=self.name, cidr=cidr, ip_version=4,
                                                              dns_nameservers=list(dns_nameservers or [])))
        return subnet

    def ensure_router(self, net, subnet, external_network, changes, check):
        router = next(iter(self.net_api.routers(tags=[self.tag])), None)
        if router is None:
            changes.append('router')
            if not check:
                router = self._tag(self.net_api.create_router(name=self.name, external_gateway_info={'network_id': external_network.id}))
        if router is None or subnet is None:
            # Check mode only: the real run makes the missing one, then the interface.
            changes.append('router interface')
            return router
        if not list(self.net_api.ports(device_id=router.id, network_id=net.id)):
            changes.append('router interface')
            if not check:
                self.net_api.add_interface_to_router(router, subnet_id=subnet.id)
        return router

    def ensure_security_group(self, kind, wanted, changes, check):
        sg_name = '%s-%s' % (self.name, kind)
        sg = next((s for s in self.net_api.security_groups(name=sg_name) if self.tag in (s.tags or [])), None)
        if sg is None:
            changes.append('security group %s' % sg_name)
            if check:
                changes.extend('rule %s on %s' % (key, sg_name) for key in sorted(wanted, key=str))
                return None
            sg = self._tag(self.net_api.create_security_group(name=sg_name, description='fedgpu cluster %s %s' % (self.cluster, kind)))
        changes.extend(self.sync_rules(sg, wanted, check))
        return sg

    def sync_rules(self, sg, wanted, check):
        """Make the ingress rules of ``sg`` exactly ``wanted``; returns the changes."""
        changes = []
        have = {}
        for r in self.net_api.security_group_rules(security_group_id=sg.id, direction='ingress'):
            remote_group = 'self' if r.remote_group_id == sg.id else r.remote_group_id
            have[(r.ether_type, r.protocol, r.port_range_min, r.port_range_max, r.remote_ip_prefix, remote_group)] = r
        new = []
        for key in sorted(set(wanted) - set(have), key=str):
            changes.append('rule %s on %s' % (key, sg.name))
            new.append(rule_body(sg.id, key))
        if new and not check:
            # One bulk request per security group.
            resp = self.net_api.post('/security-group-rules', json={'security_group_rules': new})
            if resp.status_code >= 400:
                raise FederationError('site %s: cannot create rules on %s: %s' % (self.site_name, sg.name, resp.text))
        for key in sorted(set(have) - set(wanted), key=str):
            changes.append('remove rule %s on %s' % (key, sg.name))
            if not check:
                self.net_api.delete_security_group_rule(have[key])
        return changes

    def ensure_keypair(self, public_key, changes, check):
        """The key pair ``fedgpu-<cluster>`` with ``public_key``; a key pair with another key is replaced."""
        compute = self.conn.compute
        want = public_key.strip()
        key = compute.find_keypair(self.name, ignore_missing=True)
        if key is not None and key.public_key.strip().split()[:2] == want.split()[:2]:
            return key
        if key is not None:
            changes.append('key pair %s (replaced)' % self.name)
            if not check:
                compute.delete_keypair(key)
        else:
            changes.append('key pair %s' % self.name)
        if check:
            return None
        return compute.create_keypair(name=self.name, public_key=want)

    # ------------------------------------------------------------ remove
    def remove(self, check=False, released_ports=()):
        """Remove every floating IP, router, network and security group tagged for the cluster, and its key pair.

        ``released_ports``: ports whose floating IPs go with their server
        (the servers that a real run deletes first; for check mode).
        """
        net_api = self.net_api
        changes = []
        for fip in list(net_api.ips(tags=[self.tag])):
            if fip.port_id and fip.port_id in released_ports:
                continue
            changes.append('floating ip %s' % fip.floating_ip_address)
            if not check:
                net_api.delete_ip(fip, ignore_missing=True)
        nets = list(net_api.networks(tags=[self.tag]))
        for router in list(net_api.routers(tags=[self.tag])):
            for net in nets:
                if not list(net_api.ports(device_id=router.id, network_id=net.id)):
                    continue
                for subnet in net_api.subnets(network_id=net.id):
                    changes.append('router interface %s' % router.name)
                    if not check:
                        net_api.remove_interface_from_router(router, subnet_id=subnet.id)
            changes.append('router %s' % router.name)
            if not check:
                net_api.delete_router(router, ignore_missing=True)
        for net in nets:
            changes.append('network %s' % net.name)
            if not check:
                delete_with_retry(lambda n=net: net_api.delete_network(n, ignore_missing=True))
        for sg in list(net_api.security_groups(tags=[self.tag])):
            changes.append('security group %s' % sg.name)
            if not check:
                delete_with_retry(lambda s=sg: net_api.delete_security_group(s, ignore_missing=True))
        key = self.conn.compute.find_keypair(self.name, ignore_missing=True)
        if key is not None:
            changes.append('key pair %s' % key.name)
            if not check:
                self.conn.compute.delete_keypair(key, ignore_missing=True)
        return changes

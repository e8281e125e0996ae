# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An in-memory stand-in for an openstacksdk Connection to one site.

It keeps the resources the cluster code reads and makes (networks, subnets,
routers, ports, security groups and rules, floating IPs, key pairs, servers,
flavors, images, limits) and records every call that changes something in
``calls``, so a test can say what was created and that check mode created
nothing. Boots can be made to fail (``fail_boots``: ERROR with a fault, as
Nova's "No valid host") or to be refused (``refuse_boots``: an exception
from ``create_server``, as a quota refusal).
"""
import itertools

import openstack.exceptions

_IDS = itertools.count(1)


class Obj(object):
    """A resource: attributes, an ``id``; ``get`` and ``[]`` as openstacksdk resources have."""

    def __init__(self, **attrs):
        self.id = attrs.pop('id', None) or 'id-%d' % next(_IDS)
        self.tags = []
        self.__dict__.update(attrs)

    def get(self, key, default=None):
        return getattr(self, key, default)

    def __getitem__(self, key):
        return getattr(self, key)


class Response(object):
    def __init__(self, status_code, text=''):
        self.status_code = status_code
        self.text = text


def matches(obj, **filters):
    for key, value in filters.items():
        if value is None:
            continue
        if key == 'tags':
            if not set(value) <= set(obj.tags or []):
                return False
        elif getattr(obj, key, None) != value:
            return False
    return True


class FakeNetwork(object):
    def __init__(self, site):
        self.site = site
        self.networks_ = []
        self.subnets_ = []
        self.routers_ = []
        self.ports_ = []
        self.security_groups_ = []
        self.rules = []
        self.ips_ = []
        self.delete_network_conflicts = 0

    def _record(self, call, *args, **kwargs):
        self.site.calls.append(('network.' + call, args, kwargs))

    # reading
    def networks(self, tags=None, is_router_external=None):
        return [n for n in self.networks_ if matches(n, tags=tags, is_router_external=is_router_external)]

    def find_network(self, name_or_id, ignore_missing=True):
        return next((n for n in self.networks_ if name_or_id in (n.name, n.id)), None)

    def subnets(self, network_id=None, tags=None):
        return [s for s in self.subnets_ if matches(s, network_id=network_id, tags=tags)]

    def routers(self, tags=None):
        return [r for r in self.routers_ if matches(r, tags=tags)]

    def ports(self, device_id=None, network_id=None):
        return [p for p in self.ports_ if matches(p, device_id=device_id, network_id=network_id)]

    def security_groups(self, name=None, tags=None):
        return [s for s in self.security_groups_ if matches(s, name=name, tags=tags)]

    def security_group_rules(self, security_group_id=None, direction=None):
        return [r for r in self.rules if matches(r, security_group_id=security_group_id, direction=direction)]

    def ips(self, port_id=None, tags=None):
        return [f for f in self.ips_ if matches(f, port_id=port_id, tags=tags)]

    def get_quota(self, project_id, details=False):
        return Obj(floating_ips={'limit': self.site.floating_ip_quota, 'used': len(self.ips_), 'reserved': 0})

    # changing
    def set_tags(self, resource, tags):
        self._record('set_tags', resource.id, tags)
        resource.tags = list(tags)

    def create_network(self, **attrs):
        self._record('create_network', **attrs)
        net = Obj(is_router_external=False, **attrs)
        self.networks_.append(net)
        return net

    def create_subnet(self, **attrs):
        self._record('create_subnet', **attrs)
        subnet = Obj(**attrs)
        self.subnets_.append(subnet)
        return subnet

    def create_router(self, **attrs):
        self._record('create_router', **attrs)
        router = Obj(**attrs)
        self.routers_.append(router)
        return router

    def add_interface_to_router(self, router, subnet_id):
        self._record('add_interface_to_router', router.id, subnet_id=subnet_id)
        subnet = next(s for s in self.subnets_ if s.id == subnet_id)
        self.ports_.append(Obj(device_id=router.id, network_id=subnet.network_id))

    def remove_interface_from_router(self, router, subnet_id):
        self._record('remove_interface_from_router', router.id, subnet_id=subnet_id)
        subnet = next(s for s in self.subnets_ if s.id == subnet_id)
        self.ports_ = [p for p in self.ports_ if not (p.device_id == router.id and p.network_id == subnet.network_id)]

    def create_security_group(self, **attrs):
        self._record('create_security_group', **attrs)
        sg = Obj(**attrs)
        self.security_groups_.append(sg)
        return sg

    def post(self, url, json=None):  # pylint: disable=redefined-outer-name
        self._record('post', url, json=json)
        assert url == '/security-group-rules'
        for body in json['security_group_rules']:
            self.rules.append(Obj(ether_type=body['ethertype'], direction=body['direction'], security_group_id=body['security_group_id'],
                                  protocol=body.get('protocol'), port_range_min=body.get('port_range_min'),
                                  port_range_max=body.get('port_range_max'), remote_ip_prefix=body.get('remote_ip_prefix'),
                                  remote_group_id=body.get('remote_group_id')))
        return Response(201)

    def delete_security_group_rule(self, rule):
        self._record('delete_security_group_rule', rule.id)
        self.rules.remove(rule)

    def create_ip(self, floating_network_id, port_id, description=None):
        self._record('create_ip', floating_network_id=floating_network_id, port_id=port_id)
        port = next(p for p in self.ports_ if p.id == port_id)
        fip = Obj(floating_ip_address='192.0.2.%d' % (len(self.ips_) + 10), port_id=port_id, description=description)
        self.ips_.append(fip)
        # What Neutron's notifier makes Nova show.
        server = self.site.compute.servers_by_id[port.device_id]
        server.addresses[port.network_name].append({'version': 4, 'addr': fip.floating_ip_address, 'OS-EXT-IPS:type': 'floating'})
        return fip

    def delete_ip(self, fip, ignore_missing=True):
        self._record('delete_ip', fip.id)
        self.ips_ = [f for f in self.ips_ if f.id != fip.id]

    def delete_router(self, router, ignore_missing=True):
        self._record('delete_router', router.id)
        self.routers_ = [r for r in self.routers_ if r.id != router.id]

    def delete_network(self, net, ignore_missing=True):
        self._record('delete_network', net.id)
        if self.delete_network_conflicts:
            self.delete_network_conflicts -= 1
            raise openstack.exceptions.ConflictException('ports still in use')
        self.networks_ = [n for n in self.networks_ if n.id != net.id]
        self.subnets_ = [s for s in self.subnets_ if s.network_id != net.id]

    def delete_security_group(self, sg, ignore_missing=True):
        self._record('delete_security_group', sg.id)
        self.security_groups_ = [s for s in self.security_groups_ if s.id != sg.id]
        self.rules = [r for r in self.rules if r.security_group_id != sg.id]


class FakeCompute(object):
    def __init__(self, site):
        self.site = site
        self.servers_by_id = {}
        self.flavors_ = []
        self.keypairs = {}
        self.instances = None

    def _record(self, call, *args, **kwargs):
        self.site.calls.append(('compute.' + call, args, kwargs))

    def servers(self, details=True):
        return list(self.servers_by_id.values())

    def flavors(self, details=True):
        return list(self.flavors_)

    def get_server(self, server_id):
        server = self.servers_by_id[server_id]
        if server.status == 'BUILD':
            server.status = 'ERROR' if server.fail else 'ACTIVE'
        return server

    def get_limits(self):
        used = len(self.servers_by_id)
        return Obj(absolute=Obj(instances=self.instances if self.instances is not None else -1, instances_used=used,
                                total_cores=-1, total_cores_used=0, total_ram=-1, total_ram_used=0))

    def find_keypair(self, name, ignore_missing=True):
        return self.keypairs.get(name)

    def create_keypair(self, name, public_key):
        self._record('create_keypair', name=name)
        key = Obj(name=name, public_key=public_key)
        self.keypairs[name] = key
        return key

    def delete_keypair(self, key, ignore_missing=False):
        self._record('delete_keypair', key.name)
        self.keypairs.pop(key.name, None)

    def create_server(self, **attrs):
        self._record('create_server', **attrs)
        if self.site.refuse_boots:
            self.site.refuse_boots -= 1
            raise openstack.exceptions.HttpException('Quota exceeded for instances')
        fail = bool(self.site.fail_boots)
        if fail:
            self.site.fail_boots -= 1
        flavor = next(f for f in self.flavors_ if f.id == attrs['flavor_id'])
        net_api = self.site.network
        network = next(n for n in net_api.networks_ if n.id == attrs['networks'][0]['uuid'])
        server = Obj(name=attrs['name'], status='BUILD', metadata=dict(attrs['metadata']), created_at='2026-01-01T00:00:%02d' % len(self.site.calls),
                     flavor=Obj(original_name=flavor.name, extra_specs=dict(flavor.extra_specs)), fail=fail,
                     fault={'message': 'No valid host was found.'} if fail else None, attrs=attrs,
                     addresses={network.name: [{'version': 4, 'addr': '10.42.0.%d' % (len(self.servers_by_id) + 10),
                                                'OS-EXT-IPS:type': 'fixed'}]})
        self.servers_by_id[server.id] = server
        net_api.ports_.append(Obj(device_id=server.id, network_id=network.id, network_name=network.name))
        return server

    def delete_server(self, server, ignore_missing=True):
        self._record('delete_server', server.name)
        self.servers_by_id.pop(server.id, None)
        self.site.network.ports_ = [p for p in self.site.network.ports_ if p.device_id != server.id]

    def wait_for_delete(self, server, interval=2, wait=120):
        return server


class FakeImage(object):
    def __init__(self):
        self.images = {}

    def find_image(self, name, ignore_missing=True):
        return self.images.get(name)


class FakePlacement(object):
    def get(self, url, **kwargs):
        return Response(403)


class FakeConfig(object):
    def __init__(self, region):
        self.region = region

    def get_region_name(self):
        return self.region


class FakeConnection(object):
    """One site. ``external``: make an external network; ``flavors``: dicts (name, vcpus, ram, extra_specs)."""

    def __init__(self, name, region='RegionOne', external=True, flavors=None, images=('img',), block_storage=False):
        self.name = name
        self.calls = []
        self.fail_boots = 0
        self.refuse_boots = 0
        self.floating_ip_quota = -1
        self.current_project_id = 'project-' + name
        self.config = FakeConfig(region)
        self.network = FakeNetwork(self)
        self.compute = FakeCompute(self)
        self.image = FakeImage()
        self.placement = FakePlacement()
        self.block_storage = block_storage
        if external:
            self.network.networks_.append(Obj(name='public', is_router_external=True))
        for flavor in flavors or [{'name': 'm1.small', 'vcpus': 1, 'ram': 2048}]:
            self.add_flavor(**flavor)
        for image in images:
            self.image.images[image] = Obj(name=image)

    def add_flavor(self, name, vcpus=1, ram=2048, disk=10, extra_specs=None):
        self.compute.flavors_.append(Obj(name=name, vcpus=vcpus, ram=ram, disk=disk, extra_specs=extra_specs or {}))

    def authorize(self):
        return 'token'

    def has_service(self, service):
        return self.block_storage and service in ('block-storage', 'volumev3')

    def changes(self):
        """The names of the calls that changed something, in order."""
        return [name for name, _args, _kwargs in self.calls]

    def created(self, kind):
        """Attributes of the ``create_<kind>`` calls."""
        return [kwargs for name, _args, kwargs in self.calls if name.endswith('.create_' + kind)]

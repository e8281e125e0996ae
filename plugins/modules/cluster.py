#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: cluster
short_description: Provision a cluster of servers across several federated OpenStack clouds
version_added: 0.1.0
description:
  - Creates (or removes) the servers of a named cluster on several OpenStack clouds ("sites") listed in C(clouds.yaml).
  - Every site gets the cluster's own private network, subnet, router to the external network, two minimal security groups and a key pair.
  - Each node group is placed on its pinned site or on the first site of its preference list that has quota (and, when the credentials
    can read Placement, GPU capacity) left. Servers are created in parallel; a server that fails to boot or that a site refuses
    (quota, C(No valid host)) is deleted and rescheduled on the next candidate site.
  - Everything the module makes carries the cluster's name (server metadata C(fedgpu_cluster), C(fedgpu_group), C(fedgpu_index),
    C(fedgpu_site); Neutron tag C(fedgpu-cluster:<name>)), so a re-run finds what exists and changes only the difference.
    Scaling a group down removes its highest indexes. O(state=absent) removes exactly what this cluster made.
  - Existing servers are never rebuilt; a changed flavor or image applies to new nodes only.
  - All input is checked (clouds, sites, flavors, images, quota) before anything is created.
author:
  - fedgpu.platform developers (@fedgpu)
requirements:
  - python >= 3.9
  - openstacksdk >= 1.0 (tested with 4.22)
attributes:
  check_mode:
    support: full
    description: Reads every site and reports what would be created or removed; changes nothing.
  diff_mode:
    support: full
    description: Returns the cluster's node names before and after.
options:
  name:
    description:
      - Cluster name. Used in server names (C(<name>-<group>-<index>)), in metadata and in Neutron tags.
      - Lower-case letters, digits and C(-); at most 40 characters.
    type: str
    required: true
  state:
    description:
      - C(present) creates what is missing and removes nodes beyond each listed group's count (and nodes in ERROR, which are recreated).
        Nodes of groups not listed in O(groups) are left alone; set a group's O(groups[].count=0) to remove it.
      - C(absent) removes every server, floating IP, router, network, security group and key pair this cluster made on the listed clouds.
    type: str
    choices: [present, absent]
    default: present
  clouds:
    description:
      - The sites, in default preference order.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Cloud name in C(clouds.yaml); also the site's name in node groups and in the result.
        type: str
        required: true
      region:
        description: Region of that cloud (default the one in C(clouds.yaml)).
        type: str
      external_network:
        description:
          - External network for the router and floating IPs.
          - Default the only network with C(router:external); a site without one cannot host nodes with a public IP.
        type: str
      cidr:
        description: CIDR of the cluster's private subnet on this site. Default C(10.42.<position>.0/24), position starting at 1.
        type: str
      dns_nameservers:
        description: DNS servers for the private subnet.
        type: list
        elements: str
        default: []
  clouds_yaml:
    description:
      - Path of the C(clouds.yaml) to read. Default the usual search path (C(OS_CLIENT_CONFIG_FILE), C(./clouds.yaml),
        C(~/.config/openstack/clouds.yaml), C(/etc/openstack/clouds.yaml)).
    type: path
  groups:
    description:
      - Node groups. Required for O(state=present).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Group name (lower-case letters, digits, C(-)).
        type: str
        required: true
      count:
        description: Number of nodes. C(0) removes the group's nodes.
        type: int
        default: 1
      flavor:
        description: Flavor name or ID. Mutually exclusive with O(groups[].vcpus), O(groups[].ram), O(groups[].gpus), O(groups[].gpu_model).
        type: str
      vcpus:
        description: Minimum vCPUs; the smallest flavor that meets all requirements is chosen on each site.
        type: int
      ram:
        description: Minimum RAM in MiB.
        type: int
      gpus:
        description: Minimum number of GPUs, counted from the flavor's extra specs (C(resources:VGPU), C(resources:PGPU),
          C(resources:CUSTOM_*GPU*), C(pci_passthrough:alias)).
        type: int
      gpu_model:
        description: GPU model, compared (case-insensitively) with the flavor's C(gpu:model) extra spec or its PCI alias name.
        type: str
      image:
        description: Image name or ID; it must exist on every site the group may use.
        type: str
        required: true
      volume_size:
        description:
          - Boot from a new volume of this size (GiB), deleted with the server. Needs the block-storage service on the site.
        type: int
      site:
        description: Pin the group to this site. Mutually exclusive with O(groups[].sites).
        type: str
      sites:
        description: Ordered site preference for this group (default O(clouds) order).
        type: list
        elements: str
      public_ip:
        description:
          - Give each node a floating IP and the front-end security group.
          - Default V(true) for the group named by O(frontend_group), V(false) for the others.
        type: bool
      metadata:
        description: Extra server metadata.
        type: dict
        default: {}
  frontend_group:
    description: Name of the front-end (bastion) group; it gets public IPs by default and is the SSH jump host of the others.
    type: str
    default: frontend
  ssh_public_key:
    description:
      - Public key for the key pair C(fedgpu-<name>) made on every site. Without it no key pair is made or used.
    type: str
  ssh_cidrs:
    description: Networks allowed to reach SSH on the front end.
    type: list
    elements: str
    default: ['0.0.0.0/0']
  public_ports:
    description: TCP ports of the front end open to everyone (besides SSH).
    type: list
    elements: int
    default: [80, 443]
  wait_timeout:
    description: Seconds to wait for one server to become ACTIVE (or to be deleted).
    type: int
    default: 600
  parallelism:
    description: Servers created or deleted at the same time.
    type: int
    default: 10
notes:
  - Uses openstacksdk directly (not the openstack.cloud modules), so it works with current openstacksdk releases.
  - Nodes of different sites reach each other only through addresses routable between sites; give every site that hosts
    private nodes a front end when the sites share no private network.
'''

EXAMPLES = r'''
- name: A front end on CNAF, GPU workers wherever A100s are left
  fedgpu.platform.cluster:
    name: ml
    clouds_yaml: "{{ playbook_dir }}/../inventories/openstack/clouds.yaml"
    clouds:
      - name: cnaf
        region: RegionOne
      - name: recas
    ssh_public_key: "{{ lookup('ansible.builtin.file', '~/.ssh/id_ed25519.pub') }}"
    ssh_cidrs: [192.0.2.0/24]
    groups:
      - name: frontend
        count: 1
        flavor: m1.large
        image: ubuntu-24.04
        site: cnaf
      - name: gpu
        count: 4
        gpus: 1
        gpu_model: A100
        image: ubuntu-24.04
        sites: [recas, cnaf]
      - name: cpu
        count: 2
        vcpus: 4
        ram: 8192
        image: ubuntu-24.04
  register: cluster

- name: Remove everything the cluster made
  fedgpu.platform.cluster:
    name: ml
    state: absent
    clouds:
      - name: cnaf
      - name: recas
'''

RETURN = r'''
nodes:
  description: The cluster's nodes after the run (what would exist, in check mode), sorted by group and index.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Server name.
      type: str
      sample: ml-gpu-1
    id:
      description: Server ID (null for a node check mode would create).
      type: str
    group:
      description: Node group.
      type: str
    index:
      description: Index in the group, from 1.
      type: int
    site:
      description: Cloud name of the site.
      type: str
    region:
      description: Region of the site.
      type: str
    status:
      description: Server status.
      type: str
      sample: ACTIVE
    flavor:
      description: Flavor name.
      type: str
    private_ip:
      description: Fixed IPv4 address.
      type: str
    public_ip:
      description: Floating IPv4 address, or null.
      type: str
    frontend:
      description: Whether the node belongs to the front-end group.
      type: bool
    gpu:
      description: GPU facts from the flavor's extra specs.
      type: dict
      sample: {count: 1, model: A100}
created:
  description: Names of the servers created.
  returned: always
  type: list
  elements: str
removed:
  description: Names of the servers removed.
  returned: always
  type: list
  elements: str
rescheduled:
  description: Boots that failed or were refused and were retried on another site.
  returned: always
  type: list
  elements: dict
  sample: [{name: ml-gpu-5, site: cnaf, error: "No valid host was found."}]
sites:
  description: Per site, the network resources of the cluster and the free capacity read before placement.
  returned: always
  type: dict
'''

import concurrent.futures
import re
import threading
import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.fedgpu.platform.plugins.module_utils.openstack_federation import (
    HAS_OPENSTACKSDK, OPENSTACKSDK_IMPORT_ERROR, META_CLUSTER, META_FRONTEND, META_GROUP, META_INDEX, META_SITE,
    FederationError, candidate_sites, cluster_tag, connect, flavor_facts, gpu_info, match_flavor, node_need, plan_placement,
    read_capacity, server_addresses)

if HAS_OPENSTACKSDK:
    import openstack.exceptions

NAME_RE = re.compile(r'^[a-z0-9]([a-z0-9-]*[a-z0-9])?$')


def validate_spec(params):
    """Checks that need no cloud. Returns a list of error strings."""
    errors = []
    name = params['name']
    if not NAME_RE.match(name) or len(name) > 40:
        errors.append("name '%s': use lower-case letters, digits and '-', at most 40 characters" % name)
    site_names = [c['name'] for c in params['clouds']]
    if not site_names:
        errors.append('clouds: list at least one cloud')
    dup = sorted(set(n for n in site_names if site_names.count(n) > 1))
    if dup:
        errors.append('clouds: listed twice: %s' % ', '.join(dup))
    if params['state'] == 'absent':
        return errors
    groups = params['groups'] or []
    if not groups:
        errors.append('groups: required when state=present')
    seen = set()
    for g in groups:
        gname = g['name']
        if not NAME_RE.match(gname or ''):
            errors.append("group '%s': name must use lower-case letters, digits and '-'" % gname)
        if gname in seen:
            errors.append("group '%s': defined twice" % gname)
        seen.add(gname)
        if g['count'] is None or g['count'] < 0:
            errors.append("group '%s': count must be >= 0" % gname)
        reqs = [k for k in ('vcpus', 'ram', 'gpus', 'gpu_model') if g.get(k) is not None]
        if g.get('flavor') and reqs:
            errors.append("group '%s': give either flavor or requirements (%s), not both" % (gname, ', '.join(reqs)))
        if not g.get('flavor') and not reqs:
            errors.append("group '%s': give a flavor or requirements (vcpus, ram, gpus, gpu_model)" % gname)
        if g.get('site') and g.get('sites'):
            errors.append("group '%s': give either site or sites, not both" % gname)
        for s in ([g['site']] if g.get('site') else []) + list(g.get('sites') or []):
            if s not in site_names:
                errors.append("group '%s': unknown site '%s' (clouds: %s)" % (gname, s, ', '.join(site_names)))
        if g.get('volume_size') is not None and g['volume_size'] < 1:
            errors.append("group '%s': volume_size must be >= 1" % gname)
    return errors


def public_ip_of(group, frontend_group):
    if group.get('public_ip') is not None:
        return bool(group['public_ip'])
    return group['name'] == frontend_group


def default_cidr(position):
    return '10.42.%d.0/24' % position


class Site(object):
    """One cloud: connection, catalog lookups and the cluster's resources there."""

    def __init__(self, module, spec, position):
        self.module = module
        self.name = spec['name']
        self.spec = spec
        self.position = position
        self.cidr = spec.get('cidr') or default_cidr(position)
        self.conn = None
        self.error = None
        self.flavors = None
        self.images = {}
        self.capacity = {}
        self.external_network = None
        self.servers = []
        self.net = {}
        self.has_volume = False

    @property
    def region(self):
        return self.conn.config.get_region_name() if self.conn else self.spec.get('region')

    def open(self, clouds_yaml, timeout):
        self.conn = connect(self.name, self.spec.get('region'), clouds_yaml, timeout=timeout)
        self.conn.authorize()

    def load_flavors(self):
        if self.flavors is None:
            self.flavors = [flavor_facts(f) for f in self.conn.compute.flavors(details=True)]
        return self.flavors

    def find_image(self, name):
        if name not in self.images:
            img = self.conn.image.find_image(name, ignore_missing=True)
            self.images[name] = img.id if img else None
        return self.images[name]

    def find_external_network(self):
        wanted = self.spec.get('external_network')
        if wanted:
            net = self.conn.network.find_network(wanted, ignore_missing=True)
            if not net:
                raise FederationError("site %s: external network '%s' not found" % (self.name, wanted))
            return net
        nets = list(self.conn.network.networks(is_router_external=True))
        if len(nets) == 1:
            return nets[0]
        return None

    def read_servers(self, cluster):
        self.servers = [s for s in self.conn.compute.servers(details=True) if (s.metadata or {}).get(META_CLUSTER) == cluster]
        return self.servers


class Cluster(object):
    def __init__(self, module):
        self.module = module
        self.p = module.params
        self.name = self.p['name']
        self.tag = cluster_tag(self.name)
        self.sites = [Site(module, c, i + 1) for i, c in enumerate(self.p['clouds'])]
        self.by_name = dict((s.name, s) for s in self.sites)
        self.created = []
        self.removed = []
        self.rescheduled = []
        self.changed = False
        self.lock = threading.Lock()
        self.net_changes = []
        self.ready_sites = set()
        self.site_locks = dict((s.name, threading.Lock()) for s in self.sites)

    # ------------------------------------------------------------- reading
    def open_sites(self):
        errors = []

        def _open(site):
            try:
                site.open(self.p['clouds_yaml'], self.p['wait_timeout'])
            except FederationError as exc:
                return str(exc)
            except Exception as exc:  # pylint: disable=broad-except
                return 'site %s: cannot connect: %s' % (site.name, exc)
            return None

        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(self.sites))) as pool:
            for err in pool.map(_open, self.sites):
                if err:
                    errors.append(err)
        if errors:
            raise FederationError('; '.join(errors))

    def read_all(self, with_catalog):
        def _read(site):
            site.read_servers(self.name)
            site.has_volume = site.conn.has_service('block-storage') or site.conn.has_service('volumev3')
            if with_catalog:
                site.load_flavors()
                site.capacity = read_capacity(site.conn)
                site.external_network = site.find_external_network()
            return site
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(self.sites))) as pool:
            list(pool.map(_read, self.sites))

    def existing_nodes(self):
        """(group, index) -> list of (site, server)."""
        nodes = {}
        for site in self.sites:
            for server in site.servers:
                md = server.metadata or {}
                try:
                    index = int(md.get(META_INDEX, ''))
                except ValueError:
                    continue
                nodes.setdefault((md.get(META_GROUP), index), []).append((site, server))
        return nodes

    # ------------------------------------------------------- validation
    def resolve_groups(self):
        """Per group and candidate site: the flavor and image, or why not."""
        errors = []
        resolved = {}
        for g in self.p['groups']:
            cands = candidate_sites(g, [s.name for s in self.sites])
            public = public_ip_of(g, self.p['frontend_group'])
            per_site = {}
            why = []
            for sname in cands:
                site = self.by_name[sname]
                flavor = match_flavor(site.load_flavors(), name=g.get('flavor'), vcpus=g.get('vcpus'), ram=g.get('ram'),
                                      gpus=g.get('gpus'), gpu_model=g.get('gpu_model'))
                if flavor is None:
                    why.append("%s: %s" % (sname, "flavor '%s' not found" % g['flavor'] if g.get('flavor') else 'no flavor meets the requirements'))
                    continue
                image = site.find_image(g['image'])
                if image is None:
                    why.append("%s: image '%s' not found" % (sname, g['image']))
                    continue
                if public and site.external_network is None:
                    why.append('%s: no (unique) external network for public IPs; set external_network' % sname)
                    continue
                if g.get('volume_size') and not site.has_volume:
                    why.append('%s: no block-storage service for volume_size' % sname)
                    continue
                per_site[sname] = {'flavor': flavor, 'image': image, 'need': node_need(flavor, public)}
            if not per_site and g['count'] > 0:
                errors.append("group '%s': no site can host it (%s)" % (g['name'], '; '.join(why)))
            resolved[g['name']] = {'group': g, 'candidates': [c for c in cands if c in per_site], 'per_site': per_site,
                                   'public': public, 'why': why}
        return resolved, errors

    # ------------------------------------------------------------ network
    def ensure_network(self, site, check):
        """Private net, subnet, router, security groups, key pair on one site."""
        conn = site.conn
        net_api = conn.network
        changes = []
        tag = self.tag
        rname = 'fedgpu-%s' % self.name
        net = next(iter(net_api.networks(tags=[tag])), None)
        subnet = router = None
        if net is None:
            changes.append('network')
            if not check:
                net = net_api.create_network(name=rname, description='fedgpu cluster %s' % self.name)
                net_api.set_tags(net, [tag])
        if net is not None:
            subnet = next(iter(net_api.subnets(network_id=net.id, tags=[tag])), None)
        if subnet is None:
            changes.append('subnet')
            if not check:
                subnet = net_api.create_subnet(network_id=net.id, name=rname, cidr=site.cidr, ip_version=4,
                                               dns_nameservers=site.spec.get('dns_nameservers') or [])
                net_api.set_tags(subnet, [tag])
        if site.external_network is not None:
            router = next(iter(net_api.routers(tags=[tag])), None)
            if router is None:
                changes.append('router')
                if not check:
                    router = net_api.create_router(name=rname, external_gateway_info={'network_id': site.external_network.id})
                    net_api.set_tags(router, [tag])
            if router is not None and subnet is not None:
                ports = list(net_api.ports(device_id=router.id, network_id=net.id))
                if not ports:
                    changes.append('router interface')
                    if not check:
                        net_api.add_interface_to_router(router, subnet_id=subnet.id)
        sgs = {}
        for kind, rules in (('nodes', self.node_rules()), ('frontend', self.frontend_rules())):
            sg_name = '%s-%s' % (rname, kind)
            sg = next((s for s in net_api.security_groups(name=sg_name) if tag in (s.tags or [])), None)
            if sg is None:
                changes.append('security group %s' % sg_name)
                if check:
                    continue
                sg = net_api.create_security_group(name=sg_name, description='fedgpu cluster %s %s' % (self.name, kind))
                net_api.set_tags(sg, [tag])
            sgs[kind] = sg
            changes += self.sync_rules(site, sg, rules, check)
        key = None
        if self.p['ssh_public_key']:
            key_name = rname
            key = conn.compute.find_keypair(key_name, ignore_missing=True)
            want = self.p['ssh_public_key'].strip()
            if key is not None and key.public_key.strip().split()[:2] != want.split()[:2]:
                changes.append('key pair %s (replaced)' % key_name)
                if not check:
                    conn.compute.delete_keypair(key)
                key = None
            if key is None:
                if 'key pair %s (replaced)' % key_name not in changes:
                    changes.append('key pair %s' % key_name)
                if not check:
                    key = conn.compute.create_keypair(name=key_name, public_key=want)
        site.net = {'network': net, 'subnet': subnet, 'router': router, 'security_groups': sgs, 'keypair': key}
        return changes

    def ensure_site_ready(self, site, check=False):
        """Network resources on a site, once (also for a fallback site)."""
        with self.site_locks[site.name]:
            if site.name in self.ready_sites:
                return
            changes = self.ensure_network(site, check)
            with self.lock:
                self.ready_sites.add(site.name)
                if changes:
                    self.changed = True
                    self.net_changes.append({'site': site.name, 'changes': changes})

    def node_rules(self):
        # Everything from the cluster's own subnets (all sites); the
        # remote-group rule covers ports without a fixed CIDR match.
        rules = set()
        for s in self.sites:
            rules.add(('IPv4', None, None, None, s.cidr, None))
        rules.add(('IPv4', None, None, None, None, 'self'))
        return rules

    def frontend_rules(self):
        rules = set()
        for cidr in self.p['ssh_cidrs']:
            rules.add(('IPv4', 'tcp', 22, 22, cidr, None))
        for port in self.p['public_ports']:
            rules.add(('IPv4', 'tcp', port, port, '0.0.0.0/0', None))
        rules.add(('IPv4', 'icmp', None, None, '0.0.0.0/0', None))
        return rules

    def sync_rules(self, site, sg, wanted, check):
        changes = []
        if sg is None:
            return changes
        net_api = site.conn.network
        have = {}
        for r in net_api.security_group_rules(security_group_id=sg.id, direction='ingress'):
            remote_group = 'self' if r.remote_group_id == sg.id else r.remote_group_id
            key = (r.ether_type, r.protocol, r.port_range_min, r.port_range_max, r.remote_ip_prefix, remote_group)
            have[key] = r
        new = []
        for key in sorted(wanted - set(have), key=str):
            changes.append('rule %s on %s' % (key, sg.name))
            ether, proto, pmin, pmax, prefix, group = key
            rule = {'security_group_id': sg.id, 'direction': 'ingress', 'ethertype': ether}
            for name, value in (('protocol', proto), ('port_range_min', pmin), ('port_range_max', pmax), ('remote_ip_prefix', prefix),
                                ('remote_group_id', sg.id if group == 'self' else group)):
                if value is not None:
                    rule[name] = value
            new.append(rule)
        if new and not check:
            # One bulk request per security group.
            resp = net_api.post('/security-group-rules', json={'security_group_rules': new})
            if resp.status_code >= 400:
                raise FederationError('site %s: cannot create rules on %s: %s' % (site.name, sg.name, resp.text))
        for key in sorted(set(have) - wanted, key=str):
            changes.append('remove rule %s on %s' % (key, sg.name))
            if not check:
                net_api.delete_security_group_rule(have[key])
        return changes

    # ------------------------------------------------------------ servers
    def boot(self, item):
        """Create one node; on failure delete it and try the next site."""
        req, first = item
        g = req['group']
        order = [first] + [c for c in req['candidates'] if c != first]
        errors = []
        for sname in order:
            site = self.by_name[sname]
            choice = req['per_site'][sname]
            try:
                self.ensure_site_ready(site)
                server = self.create_server(site, req, choice)
            except Exception as exc:  # pylint: disable=broad-except
                errors.append('%s: %s' % (sname, exc))
                with self.lock:
                    self.rescheduled.append({'name': req['server_name'], 'site': sname, 'error': str(exc)})
                continue
            return site, server
        raise FederationError("node %s (group %s) could not be created on any site: %s" % (req['server_name'], g['name'], '; '.join(errors)))

    def create_server(self, site, req, choice):
        g = req['group']
        conn = site.conn
        md = dict((k, str(v)) for k, v in (g.get('metadata') or {}).items())
        md.update({META_CLUSTER: self.name, META_GROUP: g['name'], META_INDEX: str(req['index']), META_SITE: site.name,
                   META_FRONTEND: 'true' if g['name'] == self.p['frontend_group'] else 'false'})
        sgs = [{'name': site.net['security_groups']['nodes'].name}]
        if req['public']:
            sgs.append({'name': site.net['security_groups']['frontend'].name})
        attrs = {
            'name': req['server_name'],
            'flavor_id': choice['flavor']['id'],
            'networks': [{'uuid': site.net['network'].id}],
            'security_groups': sgs,
            'metadata': md,
        }
        if site.net.get('keypair') is not None:
            attrs['key_name'] = site.net['keypair'].name
        if g.get('volume_size'):
            attrs['block_device_mapping'] = [{'boot_index': 0, 'uuid': choice['image'], 'source_type': 'image', 'destination_type': 'volume',
                                              'volume_size': g['volume_size'], 'delete_on_termination': True}]
            attrs['image_id'] = ''
        else:
            attrs['image_id'] = choice['image']
        server = conn.compute.create_server(**attrs)
        try:
            server = self.wait_active(site, server)
            if req['public']:
                self.attach_floating_ip(site, server)
                server = conn.compute.get_server(server.id)
        except Exception:
            self.delete_server(site, server)
            raise
        return server

    def wait_active(self, site, server):
        deadline = time.time() + self.p['wait_timeout']
        delay = 0.5
        while True:
            server = site.conn.compute.get_server(server.id)
            if server.status == 'ACTIVE':
                return server
            if server.status == 'ERROR':
                fault = (server.fault or {}).get('message') or 'boot failed'
                raise FederationError(fault)
            if time.time() > deadline:
                raise FederationError('not ACTIVE after %ss (status %s)' % (self.p['wait_timeout'], server.status))
            time.sleep(delay)
            delay = min(delay * 1.5, 3)

    def attach_floating_ip(self, site, server):
        net_api = site.conn.network
        port = next(iter(net_api.ports(device_id=server.id, network_id=site.net['network'].id)), None)
        if port is None:
            raise FederationError('server %s has no port on the cluster network' % server.name)
        fip = net_api.create_ip(floating_network_id=site.external_network.id, port_id=port.id,
                                description='fedgpu cluster %s %s' % (self.name, server.name))
        net_api.set_tags(fip, [self.tag])
        # Wait until Nova shows it (Neutron notifies Nova asynchronously).
        deadline = time.time() + 30
        while time.time() < deadline:
            if server_addresses(site.conn.compute.get_server(server.id))[1]:
                return
            time.sleep(0.5)

    def delete_server(self, site, server):
        net_api = site.conn.network
        for port in net_api.ports(device_id=server.id):
            for fip in net_api.ips(port_id=port.id):
                net_api.delete_ip(fip, ignore_missing=True)
        site.conn.compute.delete_server(server, ignore_missing=True)
        site.conn.compute.wait_for_delete(server, interval=0.5, wait=self.p['wait_timeout'])

    # ------------------------------------------------------------- result
    def describe(self, site, server):
        md = server.metadata or {}
        private, public = server_addresses(server, 'fedgpu-%s' % self.name)
        flavor = server.flavor
        specs = getattr(flavor, 'extra_specs', None) or {}
        flavor_name = getattr(flavor, 'original_name', None) or getattr(flavor, 'name', None)
        gpu = gpu_info(specs or {})
        return {
            'name': server.name, 'id': server.id, 'group': md.get(META_GROUP), 'index': int(md.get(META_INDEX, 0)),
            'site': site.name, 'region': site.region, 'status': server.status,
            'flavor': flavor_name,
            'private_ip': private, 'public_ip': public, 'frontend': md.get(META_FRONTEND) == 'true',
            'gpu': {'count': gpu['count'], 'model': gpu['model']},
        }

    # -------------------------------------------------------------- flows
    def present(self):
        check = self.module.check_mode
        self.read_all(with_catalog=True)
        resolved, errors = self.resolve_groups()
        if errors:
            raise FederationError('; '.join(errors))
        existing = self.existing_nodes()
        wanted_groups = dict((g['name'], g) for g in self.p['groups'])
        to_remove = []
        keep = []
        for (gname, index), entries in existing.items():
            g = wanted_groups.get(gname)
            for site, server in entries:
                if g is not None and (index > g['count'] or server.status == 'ERROR'):
                    to_remove.append((site, server))
                else:
                    keep.append((site, server))
        kept_keys = set()
        for site, server in keep:
            md = server.metadata
            kept_keys.add((md[META_GROUP], int(md[META_INDEX])))
        # Duplicate (group, index) entries: keep the first, remove the rest.
        seen = set()
        dedup = []
        for site, server in sorted(keep, key=lambda x: (x[1].created_at or '', x[1].id)):
            k = (server.metadata[META_GROUP], int(server.metadata[META_INDEX]))
            if k in seen:
                to_remove.append((site, server))
            else:
                seen.add(k)
                dedup.append((site, server))
        keep = dedup
        requests = []
        for g in self.p['groups']:
            r = resolved[g['name']]
            for index in range(1, g['count'] + 1):
                if (g['name'], index) in kept_keys:
                    continue
                requests.append({'group': g, 'index': index, 'server_name': '%s-%s-%d' % (self.name, g['name'], index),
                                 'candidates': r['candidates'], 'per_site': r['per_site'], 'public': r['public'],
                                 'needs': dict((s, v['need']) for s, v in r['per_site'].items())})
        capacity = dict((s.name, dict(s.capacity, gpu=dict(s.capacity['gpu']) if s.capacity.get('gpu') is not None else None))
                        for s in self.sites)
        # Servers being removed give their quota back before placement.
        for site, server in to_remove:
            free = capacity[site.name]
            for key in ('instances',):
                if free.get(key) is not None:
                    free[key] += 1
        placed, unplaced = plan_placement(requests, capacity)
        if unplaced:
            raise FederationError('not enough quota or capacity for: ' + '; '.join(
                '%s (%s)' % (req['server_name'], reason) for req, reason in unplaced))
        before = sorted(s.name for site in self.sites for s in site.servers)
        # Network on every site that will hold nodes (or already does).
        used_sites = set(site for _req, site in placed) | set(site.name for site, _s in keep)
        ready = [site for site in self.sites if site.name in used_sites or site.servers]
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(ready))) as pool:
            for fut in [pool.submit(self.ensure_site_ready, site, check) for site in ready]:
                fut.result()
        nodes = [self.describe(site, server) for site, server in keep]
        if check:
            for req, sname in placed:
                choice = req['per_site'][sname]
                nodes.append({'name': req['server_name'], 'id': None, 'group': req['group']['name'], 'index': req['index'],
                              'site': sname, 'region': self.by_name[sname].region, 'status': None, 'flavor': choice['flavor']['name'],
                              'private_ip': None, 'public_ip': None, 'frontend': req['group']['name'] == self.p['frontend_group'],
                              'gpu': {'count': choice['flavor']['gpu']['count'], 'model': choice['flavor']['gpu']['model']}})
            self.removed = sorted(s.name for _site, s in to_remove)
            self.created = sorted(req['server_name'] for req, _s in placed)
        else:
            workers = max(1, self.p['parallelism'])
            with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
                removals = [pool.submit(self.delete_server, site, server) for site, server in to_remove]
                for fut in removals:
                    fut.result()
                self.removed = sorted(s.name for _site, s in to_remove)
                futures = [pool.submit(self.boot, item) for item in placed]
                failures = []
                for fut in futures:
                    try:
                        site, server = fut.result()
                    except Exception as exc:  # pylint: disable=broad-except
                        failures.append(str(exc))
                        continue
                    self.created.append(server.name)
                    nodes.append(self.describe(site, server))
            if failures:
                self.changed = self.changed or bool(self.created or self.removed)
                raise FederationError('; '.join(failures))
        self.changed = self.changed or bool(self.created or self.removed)
        nodes.sort(key=lambda n: (n['group'] or '', n['index']))
        after = sorted(n['name'] for n in nodes)
        return nodes, before, after

    def absent(self):
        check = self.module.check_mode
        self.read_all(with_catalog=False)
        before = sorted(s.name for site in self.sites for s in site.servers)
        to_remove = [(site, server) for site in self.sites for server in site.servers]
        self.removed = sorted(s.name for _site, s in to_remove)
        if to_remove and not check:
            with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, self.p['parallelism'])) as pool:
                for fut in [pool.submit(self.delete_server, site, server) for site, server in to_remove]:
                    fut.result()
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(self.sites))) as pool:
            results = list(pool.map(lambda site: (site, self.remove_network(site, check)), self.sites))
        for site, changes in results:
            if changes:
                self.net_changes.append({'site': site.name, 'changes': changes})
        self.changed = bool(self.removed or self.net_changes)
        return [], before, []

    def remove_network(self, site, check):
        net_api = site.conn.network
        tag = self.tag
        changes = []
        for fip in list(net_api.ips(tags=[tag])):
            changes.append('floating ip %s' % fip.floating_ip_address)
            if not check:
                net_api.delete_ip(fip, ignore_missing=True)
        nets = list(net_api.networks(tags=[tag]))
        for router in list(net_api.routers(tags=[tag])):
            for net in nets:
                for subnet in net_api.subnets(network_id=net.id):
                    if list(net_api.ports(device_id=router.id, network_id=net.id)):
                        changes.append('router interface %s' % router.name)
                        if not check:
                            net_api.remove_interface_from_router(router, subnet_id=subnet.id)
            changes.append('router %s' % router.name)
            if not check:
                net_api.delete_router(router, ignore_missing=True)
        for net in nets:
            changes.append('network %s' % net.name)
            if not check:
                self.delete_with_retry(lambda n=net: net_api.delete_network(n, ignore_missing=True))
        for sg in list(net_api.security_groups(tags=[tag])):
            changes.append('security group %s' % sg.name)
            if not check:
                self.delete_with_retry(lambda s=sg: net_api.delete_security_group(s, ignore_missing=True))
        key = site.conn.compute.find_keypair('fedgpu-%s' % self.name, ignore_missing=True)
        if key is not None:
            changes.append('key pair %s' % key.name)
            if not check:
                site.conn.compute.delete_keypair(key, ignore_missing=True)
        return changes

    @staticmethod
    def delete_with_retry(func, tries=20):
        # Ports of just-deleted servers can take a moment to go away.
        for attempt in range(tries):
            try:
                return func()
            except openstack.exceptions.ConflictException:
                if attempt == tries - 1:
                    raise
                time.sleep(0.5)
        return None


def main():
    group_spec = dict(
        name=dict(type='str', required=True),
        count=dict(type='int', default=1),
        flavor=dict(type='str'),
        vcpus=dict(type='int'),
        ram=dict(type='int'),
        gpus=dict(type='int'),
        gpu_model=dict(type='str'),
        image=dict(type='str', required=True),
        volume_size=dict(type='int'),
        site=dict(type='str'),
        sites=dict(type='list', elements='str'),
        public_ip=dict(type='bool'),
        metadata=dict(type='dict', default={}),
    )
    cloud_spec = dict(
        name=dict(type='str', required=True),
        region=dict(type='str'),
        external_network=dict(type='str'),
        cidr=dict(type='str'),
        dns_nameservers=dict(type='list', elements='str', default=[]),
    )
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type='str', required=True),
            state=dict(type='str', default='present', choices=['present', 'absent']),
            clouds=dict(type='list', elements='dict', required=True, options=cloud_spec),
            clouds_yaml=dict(type='path'),
            groups=dict(type='list', elements='dict', default=[], options=group_spec),
            frontend_group=dict(type='str', default='frontend'),
            ssh_public_key=dict(type='str'),
            ssh_cidrs=dict(type='list', elements='str', default=['0.0.0.0/0']),
            public_ports=dict(type='list', elements='int', default=[80, 443]),
            wait_timeout=dict(type='int', default=600),
            parallelism=dict(type='int', default=10),
        ),
        supports_check_mode=True,
    )
    if not HAS_OPENSTACKSDK:
        module.fail_json(msg=missing_required_lib('openstacksdk'), exception=OPENSTACKSDK_IMPORT_ERROR)
    errors = validate_spec(module.params)
    if errors:
        module.fail_json(msg='invalid input: ' + '; '.join(errors), changed=False)
    cluster = Cluster(module)
    result = dict(changed=False, nodes=[], created=[], removed=[], rescheduled=[], sites={})
    try:
        cluster.open_sites()
        if module.params['state'] == 'present':
            nodes, before, after = cluster.present()
        else:
            nodes, before, after = cluster.absent()
    except FederationError as exc:
        module.fail_json(msg=str(exc), changed=cluster.changed, created=sorted(cluster.created), removed=cluster.removed,
                         rescheduled=cluster.rescheduled)
    except openstack.exceptions.SDKException as exc:
        module.fail_json(msg='OpenStack error: %s' % exc, changed=cluster.changed, created=sorted(cluster.created),
                         removed=cluster.removed, rescheduled=cluster.rescheduled)
    result.update(changed=cluster.changed, nodes=nodes, created=sorted(cluster.created), removed=cluster.removed,
                  rescheduled=cluster.rescheduled)
    for site in cluster.sites:
        net = site.net or {}
        result['sites'][site.name] = {
            'region': site.region,
            'network_id': getattr(net.get('network'), 'id', None),
            'subnet_id': getattr(net.get('subnet'), 'id', None),
            'router_id': getattr(net.get('router'), 'id', None),
            'security_groups': dict((k, v.id) for k, v in (net.get('security_groups') or {}).items()),
            'cidr': site.cidr,
            'capacity': site.capacity,
            'changes': next((c['changes'] for c in cluster.net_changes if c['site'] == site.name), []),
        }
    if module._diff:
        result['diff'] = {'before': {'nodes': before}, 'after': {'nodes': after}}
    module.exit_json(**result)


if __name__ == '__main__':
    main()

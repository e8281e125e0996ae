#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: openstack_federation_cluster
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
      - Each group gives either O(groups[].flavor) or requirements that pick a flavor (O(groups[].vcpus), O(groups[].ram),
        O(groups[].gpus), O(groups[].gpu_model)), and either O(groups[].site) or O(groups[].sites) (or neither).
    type: list
    elements: dict
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
  fedgpu.platform.openstack_federation_cluster:
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
  fedgpu.platform.openstack_federation_cluster:
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

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.fedgpu.platform.plugins.module_utils.openstack_federation import (
    HAS_OPENSTACKSDK, OPENSTACKSDK_IMPORT_ERROR, META_CLUSTER, FederationError, candidate_sites, cluster_tag, connect, flavor_facts,
    match_flavor, node_need, plan_placement, read_capacity, resource_name)
from ansible_collections.fedgpu.platform.plugins.module_utils.openstack_network import SiteNetwork, frontend_rules, node_rules
from ansible_collections.fedgpu.platform.plugins.module_utils.openstack_servers import (
    boot_anywhere, create_server, delete_server, describe_server, planned_node, reconcile_nodes, server_attrs, server_metadata,
    server_name)

if HAS_OPENSTACKSDK:
    import openstack.exceptions

NAME_RE = re.compile(r'^[a-z0-9]([a-z0-9-]*[a-z0-9])?$')
REQUIREMENTS = ('vcpus', 'ram', 'gpus', 'gpu_model')

GROUP_SPEC = dict(
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
CLOUD_SPEC = dict(
    name=dict(type='str', required=True),
    region=dict(type='str'),
    external_network=dict(type='str'),
    cidr=dict(type='str'),
    dns_nameservers=dict(type='list', elements='str', default=[]),
)
ARGUMENT_SPEC = dict(
    name=dict(type='str', required=True),
    state=dict(type='str', default='present', choices=['present', 'absent']),
    clouds=dict(type='list', elements='dict', required=True, options=CLOUD_SPEC),
    clouds_yaml=dict(type='path'),
    groups=dict(type='list', elements='dict', options=GROUP_SPEC,
                # A flavor by name, or requirements that pick one; a pinned site, or a preference.
                mutually_exclusive=[('flavor', req) for req in REQUIREMENTS] + [('site', 'sites')],
                required_one_of=[('flavor',) + REQUIREMENTS]),
    frontend_group=dict(type='str', default='frontend'),
    ssh_public_key=dict(type='str'),
    ssh_cidrs=dict(type='list', elements='str', default=['0.0.0.0/0']),
    public_ports=dict(type='list', elements='int', default=[80, 443]),
    wait_timeout=dict(type='int', default=600),
    parallelism=dict(type='int', default=10),
)
REQUIRED_IF = [('state', 'present', ('groups',))]


def validate_spec(params):
    """The checks the argument spec cannot express (and that need no cloud). Returns a list of error strings."""
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
        errors.append('groups: list at least one group when state=present')
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

    def __init__(self, spec, position):
        self.name = spec['name']
        self.spec = spec
        self.cidr = spec.get('cidr') or default_cidr(position)
        self.conn = None
        self.flavors = None
        self.images = {}
        self.capacity = {}
        self.external_network = None
        self.servers = []
        self.net = {}
        self.changes = []
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

    def read(self, cluster, with_catalog):
        self.servers = [s for s in self.conn.compute.servers(details=True) if node_of(s, cluster)]
        self.has_volume = self.conn.has_service('block-storage') or self.conn.has_service('volumev3')
        if with_catalog:
            self.load_flavors()
            self.capacity = read_capacity(self.conn)
            self.external_network = self.find_external_network()
        return self

    def facts(self):
        """The site's entry in the module's ``sites`` result."""
        net = self.net or {}
        return {
            'region': self.region,
            'network_id': getattr(net.get('network'), 'id', None),
            'subnet_id': getattr(net.get('subnet'), 'id', None),
            'router_id': getattr(net.get('router'), 'id', None),
            'security_groups': dict((k, v.id) for k, v in (net.get('security_groups') or {}).items()),
            'cidr': self.cidr,
            'capacity': self.capacity,
            'changes': self.changes,
        }


def node_of(server, cluster):
    return (server.metadata or {}).get(META_CLUSTER) == cluster


def in_parallel(func, items, workers=None):
    """``func`` on every item in threads; the results in order (the first exception is raised)."""
    items = list(items)
    if not items:
        return []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers or len(items))) as pool:
        return list(pool.map(func, items))


class Cluster(object):
    """The cluster on all its sites: reads them, plans, and applies the plan (or only reports it in check mode)."""

    def __init__(self, params, check_mode=False):
        self.p = params
        self.check = check_mode
        self.name = self.p['name']
        self.sites = [Site(c, i + 1) for i, c in enumerate(self.p['clouds'])]
        self.by_name = dict((s.name, s) for s in self.sites)
        self.created = []
        self.removed = []
        self.rescheduled = []
        self.changed = False
        self.lock = threading.Lock()
        self.ready_sites = set()
        self.site_locks = dict((s.name, threading.Lock()) for s in self.sites)

    # ------------------------------------------------------------- reading
    def open_sites(self):
        def open_one(site):
            try:
                site.open(self.p['clouds_yaml'], self.p['wait_timeout'])
            except FederationError as exc:
                return str(exc)
            except Exception as exc:  # pylint: disable=broad-except
                return 'site %s: cannot connect: %s' % (site.name, exc)
            return None

        errors = [err for err in in_parallel(open_one, self.sites) if err]
        if errors:
            raise FederationError('; '.join(errors))

    def read_all(self, with_catalog):
        in_parallel(lambda site: site.read(self.name, with_catalog), self.sites)

    def server_names(self):
        return sorted(s.name for site in self.sites for s in site.servers)

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
                choice = self.resolve_on(self.by_name[sname], g, public)
                if isinstance(choice, dict):
                    per_site[sname] = choice
                else:
                    why.append('%s: %s' % (sname, choice))
            if not per_site and g['count'] > 0:
                errors.append("group '%s': no site can host it (%s)" % (g['name'], '; '.join(why)))
            resolved[g['name']] = {'candidates': [c for c in cands if c in per_site], 'per_site': per_site, 'public': public}
        return resolved, errors

    @staticmethod
    def resolve_on(site, g, public):
        """The group's flavor, image and need on one site, or why the site cannot host it (a string)."""
        flavor = match_flavor(site.load_flavors(), name=g.get('flavor'), vcpus=g.get('vcpus'), ram=g.get('ram'),
                              gpus=g.get('gpus'), gpu_model=g.get('gpu_model'))
        if flavor is None:
            return "flavor '%s' not found" % g['flavor'] if g.get('flavor') else 'no flavor meets the requirements'
        image = site.find_image(g['image'])
        if image is None:
            return "image '%s' not found" % g['image']
        if public and site.external_network is None:
            return 'no (unique) external network for public IPs; set external_network'
        if g.get('volume_size') and not site.has_volume:
            return 'no block-storage service for volume_size'
        return {'flavor': flavor, 'image': image, 'need': node_need(flavor, public)}

    # ------------------------------------------------------------ network
    def ensure_site_ready(self, site):
        """The cluster's network resources on a site, once (also for a fallback site)."""
        with self.site_locks[site.name]:
            if site.name in self.ready_sites:
                return
            rules = {'nodes': node_rules(s.cidr for s in self.sites), 'frontend': frontend_rules(self.p['ssh_cidrs'], self.p['public_ports'])}
            site.net, changes = SiteNetwork(site.conn, self.name, site.name).ensure(
                site.cidr, rules, external_network=site.external_network, dns_nameservers=site.spec.get('dns_nameservers'),
                public_key=self.p['ssh_public_key'], check=self.check)
            with self.lock:
                self.ready_sites.add(site.name)
                site.changes = changes
                self.changed = self.changed or bool(changes)

    # ------------------------------------------------------------ servers
    def boot(self, item):
        """Create one node on its planned site; on failure, on the next candidate site. Returns (site, server)."""
        req, first = item

        def attempt(sname):
            site = self.by_name[sname]
            self.ensure_site_ready(site)
            return site, self.create_on(site, req)

        def failed(sname, exc):
            with self.lock:
                self.rescheduled.append({'name': req['server_name'], 'site': sname, 'error': str(exc)})

        order = [first] + [c for c in req['candidates'] if c != first]
        return boot_anywhere('%s (group %s)' % (req['server_name'], req['group']['name']), order, attempt, failed)

    def create_on(self, site, req):
        g = req['group']
        choice = req['per_site'][site.name]
        sgs = [site.net['security_groups']['nodes'].name]
        floating = None
        if req['public']:
            sgs.append(site.net['security_groups']['frontend'].name)
            floating = {'network_id': site.external_network.id, 'tag': cluster_tag(self.name),
                        'description': 'fedgpu cluster %s %s' % (self.name, req['server_name'])}
        keypair = site.net.get('keypair')
        attrs = server_attrs(req['server_name'], choice['flavor']['id'], choice['image'], site.net['network'].id, sgs,
                             server_metadata(self.name, g['name'], req['index'], site.name, self.is_frontend(g['name']), g.get('metadata')),
                             key_name=keypair.name if keypair is not None else None, volume_size=g.get('volume_size'))
        return create_server(site.conn, attrs, self.p['wait_timeout'], floating)

    def remove_network(self, site):
        released = ()
        if self.check:
            # A real run deletes the servers, and their floating IPs with them, first.
            released = set(port.id for server in site.servers for port in site.conn.network.ports(device_id=server.id))
        return SiteNetwork(site.conn, self.name, site.name).remove(self.check, released)

    def delete(self, item):
        site, server = item
        delete_server(site.conn, server, self.p['wait_timeout'])

    def is_frontend(self, group_name):
        return group_name == self.p['frontend_group']

    def describe(self, site, server):
        return describe_server(server, {'name': site.name, 'region': site.region}, resource_name(self.name))

    # -------------------------------------------------------------- flows
    def plan(self, resolved, missing, to_remove):
        """Sites for the missing nodes, from the capacity read (servers being removed give their instance back)."""
        requests = []
        for g, index in missing:
            r = resolved[g['name']]
            requests.append({'group': g, 'index': index, 'server_name': server_name(self.name, g['name'], index),
                             'candidates': r['candidates'], 'per_site': r['per_site'], 'public': r['public'],
                             'needs': dict((s, v['need']) for s, v in r['per_site'].items())})
        capacity = dict((s.name, dict(s.capacity, gpu=dict(s.capacity['gpu']) if s.capacity.get('gpu') is not None else None))
                        for s in self.sites)
        for site, _server in to_remove:
            if capacity[site.name].get('instances') is not None:
                capacity[site.name]['instances'] += 1
        placed, unplaced = plan_placement(requests, capacity)
        if unplaced:
            raise FederationError('not enough quota or capacity for: ' + '; '.join(
                '%s (%s)' % (req['server_name'], reason) for req, reason in unplaced))
        return placed

    def present(self):
        """Returns (nodes, before, after)."""
        self.read_all(with_catalog=True)
        resolved, errors = self.resolve_groups()
        if errors:
            raise FederationError('; '.join(errors))
        keep, to_remove, missing = reconcile_nodes([(site, s) for site in self.sites for s in site.servers], self.p['groups'])
        placed = self.plan(resolved, missing, to_remove)
        before = self.server_names()
        # Network on every site that will hold nodes (or already does).
        used = set(sname for _req, sname in placed) | set(site.name for site, _s in keep)
        in_parallel(self.ensure_site_ready, [site for site in self.sites if site.name in used or site.servers])
        nodes = [self.describe(site, server) for site, server in keep]
        if self.check:
            self.removed = sorted(s.name for _site, s in to_remove)
            for req, sname in placed:
                nodes.append(planned_node(req['server_name'], req['group']['name'], req['index'],
                                          {'name': sname, 'region': self.by_name[sname].region},
                                          req['per_site'][sname]['flavor'], self.is_frontend(req['group']['name'])))
            self.created = sorted(req['server_name'] for req, _s in placed)
        else:
            nodes.extend(self.apply(to_remove, placed))
        self.changed = self.changed or bool(self.created or self.removed)
        nodes.sort(key=lambda n: (n['group'] or '', n['index']))
        return nodes, before, sorted(n['name'] for n in nodes)

    def apply(self, to_remove, placed):
        """Remove, then boot in parallel; the new nodes. Raises when a node could not be created anywhere."""
        new_nodes = []
        failures = []
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, self.p['parallelism'])) as pool:
            for fut in [pool.submit(self.delete, item) for item in to_remove]:
                fut.result()
            self.removed = sorted(s.name for _site, s in to_remove)
            for fut in [pool.submit(self.boot, item) for item in placed]:
                try:
                    site, server = fut.result()
                except Exception as exc:  # pylint: disable=broad-except
                    failures.append(str(exc))
                    continue
                with self.lock:
                    self.created.append(server.name)
                new_nodes.append(self.describe(site, server))
        if failures:
            self.changed = self.changed or bool(self.created or self.removed)
            raise FederationError('; '.join(failures))
        return new_nodes

    def absent(self):
        """Returns (nodes, before, after): no nodes after."""
        self.read_all(with_catalog=False)
        before = self.server_names()
        to_remove = [(site, server) for site in self.sites for server in site.servers]
        self.removed = sorted(s.name for _site, s in to_remove)
        if to_remove and not self.check:
            in_parallel(self.delete, to_remove, self.p['parallelism'])
        for site, changes in zip(self.sites, in_parallel(self.remove_network, self.sites)):
            site.changes = changes
        self.changed = bool(self.removed) or any(site.changes for site in self.sites)
        return [], before, []

    def run(self):
        """The module's result (without ``failed``); FederationError and SDK errors propagate."""
        self.open_sites()
        if self.p['state'] == 'present':
            nodes, before, after = self.present()
        else:
            nodes, before, after = self.absent()
        result = self.outcome()
        result.update(nodes=nodes, sites=dict((site.name, site.facts()) for site in self.sites))
        result['diff'] = {'before': {'nodes': before}, 'after': {'nodes': after}}
        return result

    def outcome(self):
        """What changed so far: also returned when the run fails."""
        return dict(changed=self.changed, created=sorted(self.created), removed=self.removed, rescheduled=self.rescheduled)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, required_if=REQUIRED_IF, supports_check_mode=True)
    if not HAS_OPENSTACKSDK:
        module.fail_json(msg=missing_required_lib('openstacksdk'), exception=OPENSTACKSDK_IMPORT_ERROR)
    errors = validate_spec(module.params)
    if errors:
        module.fail_json(msg='invalid input: ' + '; '.join(errors), changed=False)
    cluster = Cluster(module.params, module.check_mode)
    try:
        result = cluster.run()
    except FederationError as exc:
        module.fail_json(msg=str(exc), **cluster.outcome())
    except openstack.exceptions.SDKException as exc:
        module.fail_json(msg='OpenStack error: %s' % exc, **cluster.outcome())
    if not module._diff:
        del result['diff']
    module.exit_json(**result)


if __name__ == '__main__':
    main()

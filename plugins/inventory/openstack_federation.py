# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
name: openstack_federation
short_description: Servers of several federated OpenStack clouds, queried in parallel
version_added: 0.1.0
description:
  - Reads several clouds from C(clouds.yaml) (all of them, or a list with regions) and queries them in parallel.
  - One host per server. C(ansible_host) is the server's private (fixed) address, or its public (floating) address when it has one;
    a node without a public address gets an SSH jump through the public address of its cluster's front end
    (the front end on the same site when there is one).
  - "Groups, in this order: C(site_<site>), C(cluster_<cluster>), the node group (C(<group>), e.g. C(frontend), C(gpu)),
    C(gpu_<model>) for nodes whose flavor has GPUs, then the groups that O(group_map) gives the node group,
    then O(groups) and O(keyed_groups)."
  - With O(group_map), the values that depend on the set of nodes are derived too - for hosts in C(db_data) and C(db_witness),
    C(repmgr_node_id), C(repmgr_role) and C(repmgr_priority) (see O(group_map)).
  - Host variables C(fedgpu_*) describe each node (site, region, cluster, group, index, addresses, flavor, GPU facts).
    O(compose) runs after them and after the values derived from O(group_map), then O(groups), then O(keyed_groups),
    as with every constructed inventory.
  - Two requests per cloud, all clouds at the same time (up to O(max_workers)), made by a built-in client - a Keystone v3 token
    (one per identity, so cloud entries that differ only in region share it) and the detailed server list at compute microversion 2.47,
    which embeds the flavors' extra specs. openstacksdk is imported only for the C(clouds.yaml) entries that this client does not read
    (see the requirements), never on a cache hit.
  - A cloud that does not answer is reported as a warning and skipped, unless O(fail_on_errors=true) (strict mode).
  - Uses the inventory cache when O(cache=true); a result read from the cache is not written back, so reading it does not
    extend its lifetime.
  - The inventory file name must end in C(.openstack_federation.yml) or C(.openstack_federation.yaml).
author:
  - fedgpu.platform developers (@fedgpu)
requirements:
  - python >= 3.9
  - openstacksdk >= 1.0 (tested with 4.22), for the C(clouds.yaml) entries that the built-in client does not read
    (vendor profiles, region lists, auth types other than password, application credential and token, unversioned auth URLs)
extends_documentation_fragment:
  - constructed
  - inventory_cache
options:
  plugin:
    description: The name of this plugin.
    type: str
    required: true
    choices: [fedgpu.platform.openstack_federation]
  clouds:
    description:
      - Clouds to query, as names from C(clouds.yaml) or as dicts with C(name) and C(region). Default every cloud in C(clouds.yaml).
    type: list
    elements: raw
    default: []
  clouds_yaml:
    description: Path of the C(clouds.yaml) to read (default the usual search path, C(OS_CLIENT_CONFIG_FILE) first).
    type: path
  clusters:
    description: Only servers whose C(fedgpu_cluster) metadata is one of these. Default every cluster.
    type: list
    elements: str
    default: []
  only_clusters:
    description: Only servers made by M(fedgpu.platform.openstack_federation_cluster) (with C(fedgpu_cluster) metadata). V(false) lists every server.
    type: bool
    default: true
  metadata:
    description: Only servers whose metadata has all these key/value pairs.
    type: dict
    default: {}
  fail_on_errors:
    description: Strict mode. Fail when a cloud cannot be queried instead of warning and skipping it.
    type: bool
    default: false
  timeout:
    description: Seconds to wait for each API call.
    type: int
    default: 15
  max_workers:
    description: Clouds queried at the same time (each cloud entry is queried by a thread of its own, up to this many).
    type: int
    default: 32
  jump_user:
    description: User for the SSH jump through the front end (C(ProxyJump=user@address)). Default no user (the SSH default).
    type: str
  group_map:
    description:
      - The declared table from provisioned node groups (the C(fedgpu_group) metadata, the C(name) of an entry of the
        provisioning module's O(fedgpu.platform.openstack_federation_cluster#module:groups)) to the groups that the
        collection's playbooks apply to, for example C(gpu) to C([platform, workers, gpu_workers, htcondor_execute]).
        Each node of a node group becomes a member of each of its groups; a node group that the table does not name
        gets none of them.
      - "Derived host values, computed in one place (module_utils C(platform_layout)), per cluster: for C(db_data) hosts,
        C(repmgr_node_id) = 100 * k + the node's index, where k is the position of its node group among those mapped
        to C(db_data) (so an id never changes when a group grows), C(repmgr_role) C(primary) for the lowest id and
        C(standby) for the others, C(repmgr_priority) 100 for index 1 and 10 less per index (at least 10); for
        C(db_witness) hosts C(repmgr_node_id) = 1000 + 100 * k + the index and C(repmgr_role) C(witness).
        A host_vars file or O(compose) overrides them."
      - An invalid table (a group name that is not a valid Ansible group, a node group in both C(db_data) and
        C(db_witness)) fails the inventory with a message naming the entry.
    type: dict
    default: {}
    version_added: 0.2.0
  gpu_model_keys:
    description: Flavor extra specs that name the GPU model, first match wins.
    type: list
    elements: str
    default: ['gpu:model', 'gpu_model', 'aggregate_instance_extra_specs:gpu_model']
'''

EXAMPLES = r'''
# inventories/openstack/fedgpu.openstack_federation.yml
plugin: fedgpu.platform.openstack_federation
clouds:
  - name: cnaf
    region: RegionOne
  - recas
clusters: [ml]
jump_user: ubuntu
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ~/.cache/fedgpu-inventory
cache_timeout: 300
compose:
  ansible_user: "'ubuntu'"
group_map:
  frontend: [platform, frontend, htcondor_central_manager, htcondor_access_point]
  gpu: [platform, workers, gpu_workers, htcondor_execute]
  db: [platform, db, db_data]
  dbw: [platform, db, db_witness]
keyed_groups:
  - key: fedgpu_flavor
    prefix: flavor
groups:
  big_gpu: fedgpu_gpu.count >= 2
'''

import time

from ansible.errors import AnsibleParserError
from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable
from ansible.utils.display import Display

# Neither of these imports openstacksdk: a cache hit never pays for it, and the
# query pays for it only for a cloud that the thin client cannot read (openstack_rest).
from ansible_collections.fedgpu.platform.plugins.module_utils import openstack_federation as federation
from ansible_collections.fedgpu.platform.plugins.module_utils.openstack_federation import (
    META_CLUSTER, META_FRONTEND, META_GROUP, META_INDEX, gpu_info, resource_name, server_addresses)
from ansible_collections.fedgpu.platform.plugins.module_utils.platform_layout import LayoutError, layout

display = Display()


def server_facts(server):
    """The part of a Nova server (``GET /servers/detail`` at 2.47) that the inventory keeps (and caches)."""
    flavor = server.get('flavor') or {}
    image = server.get('image')
    return {
        'id': server['id'],
        'name': server['name'],
        'status': server.get('status'),
        'metadata': dict(server.get('metadata') or {}),
        'addresses': server.get('addresses') or {},
        'flavor': {
            'name': flavor.get('original_name') or flavor.get('name'),
            'vcpus': flavor.get('vcpus'),
            'ram': flavor.get('ram'),
            'extra_specs': dict(flavor.get('extra_specs') or {}),
        },
        'image_id': image.get('id') if isinstance(image, dict) else None,
        'key_name': server.get('key_name'),
        'availability_zone': server.get('OS-EXT-AZ:availability_zone'),
        'project_id': server.get('tenant_id'),
    }


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):

    NAME = 'fedgpu.platform.openstack_federation'
    SUFFIXES = ('.openstack_federation.yml', '.openstack_federation.yaml')

    def verify_file(self, path):
        if not super(InventoryModule, self).verify_file(path):
            return False
        return path.endswith(self.SUFFIXES)

    # --------------------------------------------------------------- query
    def _read_clouds(self):
        """clouds.yaml as the thin client reads it (None: openstacksdk must read it), read once per query."""
        if getattr(self, '_clouds', False) is False:
            from ansible_collections.fedgpu.platform.plugins.module_utils.openstack_rest import read_clouds  # pylint: disable=import-outside-toplevel
            self._clouds = read_clouds(self.get_option('clouds_yaml'))
        return self._clouds

    def _cloud_list(self):
        wanted = self.get_option('clouds') or []
        clouds = []
        for entry in wanted:
            if isinstance(entry, dict):
                if not entry.get('name'):
                    raise AnsibleParserError('clouds: every entry needs a name: %s' % entry)
                clouds.append((entry['name'], entry.get('region')))
            else:
                clouds.append((str(entry), None))
        if not clouds:
            names = sorted(self._read_clouds() or [])
            if not names:
                try:
                    names = federation.cloud_names(self.get_option('clouds_yaml'))
                except federation.FederationError as exc:
                    raise AnsibleParserError(to_native(exc))
            clouds = [(name, None) for name in names]
        if not clouds:
            raise AnsibleParserError('no clouds found in clouds.yaml')
        return clouds

    def _query_cloud(self, cloud, region):
        """One cloud: a token and the detailed server list, nothing else.

        Two requests per cloud: the token (Keystone v3, no version discovery)
        and ``GET /servers/detail`` at compute microversion 2.47, which embeds
        each server's flavor with its extra specs.  The thin client
        (openstack_rest) makes them when it can read the cloud's settings,
        openstacksdk otherwise.
        """
        from ansible_collections.fedgpu.platform.plugins.module_utils import openstack_rest  # pylint: disable=import-outside-toplevel
        start = time.time()
        timeout = self.get_option('timeout')
        settings = openstack_rest.cloud_settings(cloud, region, clouds=self._read_clouds())
        if settings:
            client = openstack_rest.Client(settings, timeout, getattr(self, '_tokens', None))
            client.authenticate()
            authenticated = time.time()
            servers = client.servers()
            region_name, via = settings['region'], 'thin client'
        else:
            region_name, servers, authenticated = self._query_cloud_sdk(cloud, region, timeout)
            via = 'openstacksdk'
        done = time.time()
        display.vvv('openstack_federation: cloud %s%s (%s): token %.3fs, servers %.3fs, %d servers' % (
            cloud, ' (%s)' % region if region else '', via, authenticated - start, done - authenticated, len(servers)))
        return {'cloud': cloud, 'region': region_name, 'servers': [server_facts(s) for s in servers], 'seconds': round(done - start, 3)}

    def _query_cloud_sdk(self, cloud, region, timeout):
        """(region, raw servers, time authenticated) through openstacksdk and keystoneauth, for any clouds.yaml."""
        from ansible_collections.fedgpu.platform.plugins.module_utils.openstack_rest import (  # pylint: disable=import-outside-toplevel
            SERVERS_HEADERS, next_page)
        if not federation.import_openstacksdk():
            raise AnsibleParserError('its clouds.yaml entry needs the openstacksdk Python library, which is not installed')
        clouds_yaml = self.get_option('clouds_yaml')
        cloud_region = federation.load_cloud_config(cloud, region, clouds_yaml)
        auth = cloud_region.config.get('auth') or {}
        if cloud_region.config.get('auth_type') in (None, 'password') and str(auth.get('auth_url', '')).rstrip('/').endswith('/v3'):
            # Same credentials, without the identity version discovery.
            cloud_region = federation.load_cloud_config(cloud, region, clouds_yaml, auth_type='v3password')
        cloud_region.config['api_timeout'] = timeout
        session = cloud_region.get_session()
        session.get_token()
        authenticated = time.time()
        endpoint = cloud_region.get_endpoint('compute') or session.get_endpoint(
            service_type='compute', interface=cloud_region.get_interface() or 'public', region_name=cloud_region.get_region_name())
        url = endpoint.rstrip('/') + '/servers/detail'
        servers = []
        while url:
            body = session.get(url, headers=SERVERS_HEADERS, timeout=timeout, raise_exc=True).json()
            servers.extend(body.get('servers') or [])
            url = next_page(body)
        return cloud_region.get_region_name(), servers, authenticated

    def _query(self):
        import concurrent.futures  # pylint: disable=import-outside-toplevel
        from ansible_collections.fedgpu.platform.plugins.module_utils.openstack_rest import Tokens  # pylint: disable=import-outside-toplevel
        self._clouds = False  # read clouds.yaml again
        start = time.time()
        clouds = self._cloud_list()
        self._tokens = Tokens()
        results = []
        errors = []
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(self.get_option('max_workers'), len(clouds)))) as pool:
            futures = [(name, region, pool.submit(self._query_cloud, name, region)) for name, region in clouds]
            for name, region, fut in futures:
                try:
                    results.append(fut.result())
                except Exception as exc:  # pylint: disable=broad-except
                    errors.append((name, region, to_native(exc)))
        display.vvv('openstack_federation: %d clouds queried in %.3fs' % (len(clouds), time.time() - start))
        for name, region, err in errors:
            msg = 'openstack_federation: cloud %s%s cannot be queried: %s' % (name, ' (%s)' % region if region else '', err)
            if self.get_option('fail_on_errors'):
                raise AnsibleParserError(msg)
            display.warning(msg + '; skipped')
        return {'clouds': results, 'errors': [{'cloud': n, 'region': r, 'error': e} for n, r, e in errors]}

    # ------------------------------------------------------------ populate
    def _selected(self, server):
        md = server['metadata']
        if self.get_option('only_clusters') and not md.get(META_CLUSTER):
            return False
        clusters = self.get_option('clusters')
        if clusters and md.get(META_CLUSTER) not in clusters:
            return False
        for key, value in (self.get_option('metadata') or {}).items():
            if md.get(key) != str(value):
                return False
        return True

    def _populate(self, data):
        strict = self.get_option('strict')
        keys = self.get_option('gpu_model_keys')
        hosts = []
        for cloud in data['clouds']:
            for server in cloud['servers']:
                if self._selected(server):
                    hosts.append((cloud, server))
        names = {}
        for cloud, server in hosts:
            names.setdefault(server['name'], []).append(cloud['cloud'])
        # Front ends: per cluster, per site, the public address.
        frontends = {}
        facts = []
        for cloud, server in hosts:
            md = server['metadata']
            private, public = server_addresses(server, resource_name(md[META_CLUSTER]) if md.get(META_CLUSTER) else None)
            gpu = gpu_info(server['flavor']['extra_specs'], keys)
            hostname = server['name'] if len(names[server['name']]) == 1 else '%s_%s' % (server['name'], cloud['cloud'])
            is_frontend = md.get(META_FRONTEND) == 'true'
            if is_frontend and public:
                frontends.setdefault(md.get(META_CLUSTER), {}).setdefault(cloud['cloud'], public)
            index = md.get(META_INDEX)
            facts.append((hostname, cloud, server, {
                'fedgpu_site': cloud['cloud'],
                'fedgpu_region': cloud['region'],
                'fedgpu_cluster': md.get(META_CLUSTER),
                'fedgpu_group': md.get(META_GROUP),
                'fedgpu_index': int(index) if index and index.isdigit() else None,
                'fedgpu_frontend': is_frontend,
                'fedgpu_server_id': server['id'],
                'fedgpu_status': server['status'],
                'fedgpu_flavor': server['flavor']['name'],
                'fedgpu_gpu': {'count': gpu['count'], 'model': gpu['model']},
                'fedgpu_private_ip': private,
                'fedgpu_public_ip': public,
                'fedgpu_metadata': md,
                'fedgpu_availability_zone': server.get('availability_zone'),
            }))
        # The table's groups and derived values, cluster by cluster (each its own database cluster).
        host_groups, derived = {}, {}
        for cluster in sorted({hv['fedgpu_cluster'] or '' for _h, _c, _s, hv in facts}):
            try:
                mapped_groups, values = layout([{'host': h, 'group': hv['fedgpu_group'], 'index': hv['fedgpu_index']}
                                                for h, _c, _s, hv in facts if (hv['fedgpu_cluster'] or '') == cluster],
                                               self.get_option('group_map'))
            except LayoutError as exc:
                raise AnsibleParserError('openstack_federation: cluster %s: %s' % (cluster, to_native(exc)))
            derived.update(values)
            for group, members in mapped_groups.items():
                for member in members:
                    host_groups.setdefault(member, []).append(group)
        jump_user = self.get_option('jump_user')
        for hostname, cloud, server, hv in facts:
            self.inventory.add_host(hostname)
            address = hv['fedgpu_public_ip'] or hv['fedgpu_private_ip']
            if address:
                hv['ansible_host'] = address
            if not hv['fedgpu_public_ip'] and hv['fedgpu_cluster'] in frontends:
                fe = frontends[hv['fedgpu_cluster']]
                jump = fe.get(cloud['cloud']) or fe[sorted(fe)[0]]
                hv['fedgpu_jump_host'] = jump
                target = '%s@%s' % (jump_user, jump) if jump_user else jump
                hv['ansible_ssh_common_args'] = '-o ProxyJump=%s' % target
            hv.update(derived.get(hostname, {}))
            for key, value in hv.items():
                self.inventory.set_variable(hostname, key, value)
            for group in ['site_%s' % cloud['cloud'], 'cluster_%s' % hv['fedgpu_cluster'] if hv['fedgpu_cluster'] else None,
                          hv['fedgpu_group'], 'gpu_%s' % hv['fedgpu_gpu']['model'] if hv['fedgpu_gpu']['model'] else None
                          ] + host_groups.get(hostname, []):
                if group:
                    group = self._sanitize_group_name(group)
                    self.inventory.add_group(group)
                    self.inventory.add_child(group, hostname)
            # Constructable, in the documented order; compose sees the host's variables
            # with inventory_hostname and group_names.
            self._set_composite_vars(self.get_option('compose'), self.inventory.get_host(hostname).get_vars(), hostname, strict=strict)
            hostvars = self.inventory.get_host(hostname).get_vars()
            self._add_host_to_composed_groups(self.get_option('groups'), hostvars, hostname, strict=strict)
            self._add_host_to_keyed_groups(self.get_option('keyed_groups'), hostvars, hostname, strict=strict)

    # --------------------------------------------------------------- parse
    def parse(self, inventory, loader, path, cache=True):
        super(InventoryModule, self).parse(inventory, loader, path, cache=cache)
        self._read_config_data(path)
        cache_key = self.get_cache_key(path)
        user_cache_setting = self.get_option('cache')
        attempt_to_read_cache = user_cache_setting and cache
        cache_needs_update = user_cache_setting and not cache
        data = None
        if attempt_to_read_cache:
            try:
                data = self._cache[cache_key]
            except KeyError:
                cache_needs_update = True
        if data is None:
            data = self._query()
        if cache_needs_update and not data['errors']:
            # A partial answer (a cloud was down) is never cached.
            self._cache[cache_key] = data
        self._populate(data)

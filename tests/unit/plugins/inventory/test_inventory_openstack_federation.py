# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""fedgpu.platform.openstack_federation inventory plugin without a cloud."""
import json
import os
import subprocess
import sys

import pytest
import yaml

from ansible.inventory.data import InventoryData
from ansible.parsing.dataloader import DataLoader
from ansible.errors import AnsibleParserError

from ansible.plugins.loader import inventory_loader

from ansible_collections.fedgpu.platform.plugins.inventory import openstack_federation
from ansible_collections.fedgpu.platform.plugins.inventory.openstack_federation import InventoryModule

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))
from fake_openstack_api import FakeCloud, nova_server  # noqa: E402 pylint: disable=wrong-import-position

try:  # ansible-core >= 2.19: templates from test code must be marked trusted
    from ansible.template import trust_as_template
except ImportError:  # pragma: no cover
    def trust_as_template(value):
        return value


def server(name, cluster, group, index, fixed, floating=None, frontend=False, specs=None, flavor='m1.small'):
    addrs = [{'version': 4, 'addr': fixed, 'OS-EXT-IPS:type': 'fixed'}]
    if floating:
        addrs.append({'version': 4, 'addr': floating, 'OS-EXT-IPS:type': 'floating'})
    md = {}
    if cluster:
        md = {'fedgpu_cluster': cluster, 'fedgpu_group': group, 'fedgpu_index': str(index), 'fedgpu_frontend': 'true' if frontend else 'false'}
    return {'id': 'id-' + name, 'name': name, 'status': 'ACTIVE', 'metadata': md, 'addresses': {'fedgpu-%s' % cluster: addrs},
            'flavor': {'name': flavor, 'vcpus': 2, 'ram': 2048, 'extra_specs': specs or {}}, 'availability_zone': 'nova'}


DATA = {'errors': [], 'clouds': [
    {'cloud': 'cnaf', 'region': 'RegionOne', 'servers': [
        server('ml-frontend-1', 'ml', 'frontend', 1, '10.42.1.10', '192.0.2.10', frontend=True),
        server('ml-gpu-1', 'ml', 'gpu', 1, '10.42.1.11', specs={'resources:VGPU': '1', 'gpu:model': 'A100'}, flavor='g1.a100'),
        server('unmanaged', None, None, None, '10.0.0.5'),
    ]},
    {'cloud': 'recas', 'region': 'RegionTwo', 'servers': [
        server('ml-gpu-2', 'ml', 'gpu', 2, '10.42.2.11', specs={'pci_passthrough:alias': 'a100:2'}, flavor='g2.a100'),
        server('other-cpu-1', 'other', 'cpu', 1, '10.42.2.50'),
    ]},
]}


def make_plugin(**options):
    plugin = InventoryModule()
    base = {'plugin': 'fedgpu.platform.openstack_federation', 'clouds': [], 'clusters': [], 'only_clusters': True, 'metadata': {},
            'fail_on_errors': False, 'timeout': 5, 'max_workers': 4, 'jump_user': None,
            'gpu_model_keys': ['gpu:model', 'gpu_model'], 'compose': {}, 'groups': {}, 'keyed_groups': [], 'strict': False,
            'leading_separator': True, 'use_extra_vars': False, 'group_map': {}}
    base.update(options)
    plugin._options = base
    plugin.inventory = InventoryData()
    plugin.loader = DataLoader()
    from ansible.template import Templar
    plugin.templar = Templar(loader=plugin.loader)
    return plugin


def hostvars(plugin, host):
    return plugin.inventory.get_host(host).get_vars()


def members(plugin, group):
    return sorted(h.name for h in plugin.inventory.groups[group].get_hosts())


@pytest.mark.parametrize('path, ok', [
    ('/x/fed.openstack_federation.yml', True),
    ('/x/fed.openstack_federation.yaml', True),
    ('/x/openstack.yml', False),
    ('/x/fed.openstack.yml', False),
    ('/x/clouds.yaml', False),
])
def test_verify_file_accepts_only_its_suffixes(tmp_path, path, ok):
    f = tmp_path / path.rsplit('/', 1)[1]
    f.write_text('plugin: fedgpu.platform.openstack_federation\n')
    assert InventoryModule().verify_file(str(f)) is ok


def test_groups_hostvars_and_jump_host():
    plugin = make_plugin(jump_user='ubuntu')
    plugin._populate(DATA)
    assert sorted(plugin.inventory.hosts) == ['ml-frontend-1', 'ml-gpu-1', 'ml-gpu-2', 'other-cpu-1']
    assert members(plugin, 'site_cnaf') == ['ml-frontend-1', 'ml-gpu-1']
    assert members(plugin, 'site_recas') == ['ml-gpu-2', 'other-cpu-1']
    assert members(plugin, 'cluster_ml') == ['ml-frontend-1', 'ml-gpu-1', 'ml-gpu-2']
    assert members(plugin, 'gpu') == ['ml-gpu-1', 'ml-gpu-2']
    assert members(plugin, 'gpu_A100') == ['ml-gpu-1']
    assert members(plugin, 'gpu_a100') == ['ml-gpu-2']
    fe = hostvars(plugin, 'ml-frontend-1')
    assert fe['ansible_host'] == '192.0.2.10' and 'ansible_ssh_common_args' not in fe
    gpu = hostvars(plugin, 'ml-gpu-2')
    assert gpu['ansible_host'] == '10.42.2.11'
    assert gpu['ansible_ssh_common_args'] == '-o ProxyJump=ubuntu@192.0.2.10'
    assert gpu['fedgpu_jump_host'] == '192.0.2.10'
    assert gpu['fedgpu_gpu'] == {'count': 2, 'model': 'a100'} and gpu['fedgpu_index'] == 2 and gpu['fedgpu_region'] == 'RegionTwo'
    # A cluster without a front end gets no jump host.
    assert 'ansible_ssh_common_args' not in hostvars(plugin, 'other-cpu-1')


def test_filters():
    plugin = make_plugin(clusters=['ml'], metadata={'fedgpu_group': 'gpu'})
    plugin._populate(DATA)
    assert sorted(plugin.inventory.hosts) == ['ml-gpu-1', 'ml-gpu-2']
    plugin = make_plugin(only_clusters=False)
    plugin._populate(DATA)
    assert 'unmanaged' in plugin.inventory.hosts


def test_compose_then_groups_then_keyed_groups():
    plugin = make_plugin(compose={'role': trust_as_template("'gpu-node' if fedgpu_gpu.count else 'service'")},
                         groups={'gpu_nodes': trust_as_template("role == 'gpu-node'")},
                         keyed_groups=[{'key': trust_as_template('role'), 'prefix': 'role'}, {'key': trust_as_template('fedgpu_site'), 'prefix': 'at'}])
    plugin._populate(DATA)
    assert members(plugin, 'gpu_nodes') == ['ml-gpu-1', 'ml-gpu-2']
    assert members(plugin, 'role_gpu_node') == ['ml-gpu-1', 'ml-gpu-2']
    assert members(plugin, 'at_cnaf') == ['ml-frontend-1', 'ml-gpu-1']


def test_group_map_gives_playbook_groups_and_derived_repmgr_values():
    data = {'errors': [], 'clouds': [
        {'cloud': 'cnaf', 'region': 'R1', 'servers': DATA['clouds'][0]['servers'] + [
            server('ml-db-2', 'ml', 'db', 2, '10.42.1.22'), server('ml-dbw-1', 'ml', 'dbw', 1, '10.42.1.30')]},
        {'cloud': 'recas', 'region': 'R2', 'servers': DATA['clouds'][1]['servers'] + [server('ml-db-1', 'ml', 'db', 1, '10.42.2.21')]},
    ]}
    plugin = make_plugin(group_map={'frontend': ['platform', 'frontend', 'htcondor_central_manager'],
                                    'gpu': ['platform', 'workers', 'gpu_workers', 'htcondor_execute'],
                                    'db': ['platform', 'db', 'db_data'], 'dbw': ['platform', 'db', 'db_witness']},
                         compose={'repmgr_priority': trust_as_template("repmgr_priority - 85 if inventory_hostname == 'ml-db-2' else repmgr_priority")})
    plugin._populate(data)
    assert members(plugin, 'platform') == ['ml-db-1', 'ml-db-2', 'ml-dbw-1', 'ml-frontend-1', 'ml-gpu-1', 'ml-gpu-2']
    assert members(plugin, 'htcondor_execute') == ['ml-gpu-1', 'ml-gpu-2']
    assert members(plugin, 'db') == ['ml-db-1', 'ml-db-2', 'ml-dbw-1']
    # A node group the table does not name (cluster other's cpu) gets no group of the table.
    assert 'other-cpu-1' not in members(plugin, 'platform')
    db1, db2, dbw = (hostvars(plugin, h) for h in ('ml-db-1', 'ml-db-2', 'ml-dbw-1'))
    assert (db1['repmgr_node_id'], db1['repmgr_role'], db1['repmgr_priority']) == (1, 'primary', 100)
    # compose runs after the derived values and overrides them.
    assert (db2['repmgr_node_id'], db2['repmgr_role'], db2['repmgr_priority']) == (2, 'standby', 5)
    assert (dbw['repmgr_node_id'], dbw['repmgr_role']) == (1001, 'witness') and 'repmgr_priority' not in dbw
    assert 'repmgr_node_id' not in hostvars(plugin, 'ml-gpu-1')


def test_each_cluster_gets_its_own_repmgr_ids():
    data = {'errors': [], 'clouds': [{'cloud': 'cnaf', 'region': 'R1', 'servers': [
        server('a-db-1', 'a', 'db', 1, '10.42.1.21'), server('b-db-1', 'b', 'db', 1, '10.42.3.21'),
        server('b-db-2', 'b', 'db', 2, '10.42.3.22')]}]}
    plugin = make_plugin(group_map={'db': ['db', 'db_data']})
    plugin._populate(data)
    assert [(h, hostvars(plugin, h)['repmgr_node_id'], hostvars(plugin, h)['repmgr_role']) for h in ('a-db-1', 'b-db-1', 'b-db-2')] == [
        ('a-db-1', 1, 'primary'), ('b-db-1', 1, 'primary'), ('b-db-2', 2, 'standby')]


def test_bad_group_map_fails_naming_the_entry():
    plugin = make_plugin(group_map={'gpu': ['workers', 'gpu-workers']})
    with pytest.raises(AnsibleParserError, match=r"group_map.gpu: 'gpu-workers' is not a valid group name"):
        plugin._populate(DATA)


def test_duplicate_names_across_clouds_get_the_site_appended():
    data = {'errors': [], 'clouds': [
        {'cloud': 'a', 'region': 'R', 'servers': [server('n', 'c', 'g', 1, '10.0.0.1')]},
        {'cloud': 'b', 'region': 'R', 'servers': [server('n', 'c', 'g', 1, '10.0.0.2')]},
    ]}
    plugin = make_plugin()
    plugin._populate(data)
    assert sorted(plugin.inventory.hosts) == ['n_a', 'n_b']


def write_config(tmp_path, **extra):
    lines = ['plugin: fedgpu.platform.openstack_federation', 'clouds: [cnaf, recas]']
    for key, value in extra.items():
        lines.append('%s: %s' % (key, value))
    path = tmp_path / 'fed.openstack_federation.yml'
    path.write_text('\n'.join(lines) + '\n')
    return str(path)


def parse(path, monkeypatch, data, cache=True):
    calls = []
    plugin = InventoryModule()
    # What the plugin loader does: register the documented options.
    inventory_loader._load_config_defs(InventoryModule.NAME, openstack_federation, openstack_federation.__file__)
    plugin._load_name = InventoryModule.NAME

    def fake_query(self):
        calls.append(1)
        return data
    monkeypatch.setattr(InventoryModule, '_query', fake_query)
    plugin.parse(InventoryData(), DataLoader(), path, cache=cache)
    try:  # as InventoryManager does after parse()
        plugin.update_cache_if_changed()
    except AttributeError:
        pass
    return plugin, calls


def test_cache_read_and_write_only_when_enabled(tmp_path, monkeypatch):
    cache_dir = tmp_path / 'cache'
    # Cache disabled: always queries, never writes.
    _plugin, calls = parse(write_config(tmp_path), monkeypatch, DATA)
    assert calls == [1] and not cache_dir.exists()
    path = write_config(tmp_path, cache='true', cache_plugin='jsonfile', cache_connection=str(cache_dir), cache_timeout=3600)
    _plugin, calls = parse(path, monkeypatch, DATA)
    assert calls == [1] and len(list(cache_dir.iterdir())) == 1
    cache_file = next(cache_dir.iterdir())
    mtime = cache_file.stat().st_mtime_ns
    plugin, calls = parse(path, monkeypatch, {'errors': [], 'clouds': []})
    assert calls == [] and 'ml-gpu-1' in plugin.inventory.hosts  # from the cache
    assert cache_file.stat().st_mtime_ns == mtime  # a cached read does not refresh it
    # --flush-cache (cache=False): query again and rewrite.
    plugin, calls = parse(path, monkeypatch, {'errors': [], 'clouds': []}, cache=False)
    assert calls == [1] and plugin.inventory.hosts == {}
    assert cache_file.stat().st_mtime_ns != mtime


def test_partial_answer_is_not_cached(tmp_path, monkeypatch):
    cache_dir = tmp_path / 'cache'
    path = write_config(tmp_path, cache='true', cache_plugin='jsonfile', cache_connection=str(cache_dir))
    partial = {'errors': [{'cloud': 'recas', 'region': None, 'error': 'down'}], 'clouds': DATA['clouds'][:1]}
    _plugin, calls = parse(path, monkeypatch, partial)
    assert calls == [1] and (not cache_dir.exists() or list(cache_dir.iterdir()) == [])


def test_unreachable_cloud_warns_or_fails(monkeypatch):
    def boom(self, cloud, region):
        if cloud == 'recas':
            raise ConnectionError('connection refused')
        return {'cloud': cloud, 'region': 'R', 'servers': [], 'seconds': 0}
    monkeypatch.setattr(InventoryModule, '_query_cloud', boom)
    plugin = make_plugin(clouds=['cnaf', 'recas'])
    data = plugin._query()
    assert [c['cloud'] for c in data['clouds']] == ['cnaf']
    assert data['errors'][0]['cloud'] == 'recas' and 'connection refused' in data['errors'][0]['error']
    plugin = make_plugin(clouds=['cnaf', {'name': 'recas', 'region': 'RegionTwo'}], fail_on_errors=True)
    with pytest.raises(AnsibleParserError, match=r'cloud recas \(RegionTwo\) cannot be queried'):
        plugin._query()


# ------------------------------------------------- whole process, fake cloud
HARNESS = r'''
import json, sys
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import init_plugin_loader
init_plugin_loader()
inv = InventoryManager(loader=DataLoader(), sources=[sys.argv[1]])
heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('openstack', 'keystoneauth1', 'requests', 'urllib3'))
print(json.dumps({'hosts': sorted(inv.hosts), 'heavy': heavy, 'gpu': dict((h.name, h.vars.get('fedgpu_gpu')) for h in inv.hosts.values())}))
'''


def inventory_process(tmp_path, source):
    """Parse ``source`` as ansible-inventory does, in a new Python: its hosts and the heavy modules it imported."""
    collections = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(openstack_federation.__file__)))))))
    env = dict((k, v) for k, v in os.environ.items() if not k.startswith('OS_'))
    env.update(ANSIBLE_COLLECTIONS_PATH=collections, ANSIBLE_INVENTORY_UNPARSED_FAILED='true', HOME=str(tmp_path), PYTHONWARNINGS='ignore')
    proc = subprocess.run([sys.executable, '-c', HARNESS, source], capture_output=True, text=True, env=env, cwd=str(tmp_path), check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_fast_path_and_cache_hit_import_no_openstack_library(tmp_path):
    """The thin client queries without openstacksdk; a cache hit imports neither it nor keystoneauth nor requests."""
    servers = [nova_server('ml-gpu-%d' % i, index=i) for i in range(1, 4)]
    with FakeCloud(servers, page=2) as fake:
        clouds = tmp_path / 'clouds.yaml'
        clouds.write_text(yaml.safe_dump({'clouds': {'east': fake.cloud(), 'west': fake.cloud(region_name='R2')}}))
        source = tmp_path / 'fed.openstack_federation.yml'
        source.write_text(yaml.safe_dump({'plugin': 'fedgpu.platform.openstack_federation', 'clouds_yaml': str(clouds), 'cache': True,
                                          'cache_plugin': 'ansible.builtin.jsonfile', 'cache_connection': str(tmp_path / 'cache')}))
        first = inventory_process(tmp_path, str(source))
        # Every cloud of clouds.yaml, the same servers in both regions: names get the site appended.
        assert first['hosts'] == sorted('ml-gpu-%d_%s' % (i, c) for i in range(1, 4) for c in ('east', 'west'))
        assert first['gpu']['ml-gpu-1_east'] == {'count': 1, 'model': 'A100'}
        assert first['heavy'] == []
        # One token for both clouds (same identity), then three pages of servers each.
        assert [r[0] for r in fake.requests].count('POST') == 1 and [r[0] for r in fake.requests].count('GET') == 4
    second = inventory_process(tmp_path, str(source))  # the fake cloud is gone: from the cache
    assert second['hosts'] == first['hosts'] and second['heavy'] == []


def test_clouds_default_to_every_cloud_and_openstacksdk_reads_the_rest(tmp_path, monkeypatch):
    clouds = tmp_path / 'clouds.yaml'
    clouds.write_text(yaml.safe_dump({'clouds': {'b': {'auth': {'auth_url': 'http://k/v3'}}, 'a': {'auth': {'auth_url': 'http://k/v3'}}}}))
    for key in list(os.environ):
        if key.startswith('OS_'):
            monkeypatch.delenv(key)
    plugin = make_plugin(clouds_yaml=str(clouds))
    assert plugin._cloud_list() == [('a', None), ('b', None)]
    # A cloud from OS_* variables: openstacksdk lists the clouds.
    monkeypatch.setenv('OS_AUTH_URL', 'http://k/v3')
    plugin = make_plugin(clouds_yaml=str(clouds))
    assert plugin._cloud_list() == [('a', None), ('b', None), ('envvars', None)]


def test_thin_client_and_openstacksdk_paths_give_the_same_answer(tmp_path, monkeypatch):
    """An entry the thin client does not read (here a ``regions`` list) goes through openstacksdk, with the same result."""
    for key in list(os.environ):
        if key.startswith('OS_'):
            monkeypatch.delenv(key)
    servers = [nova_server('ml-gpu-%d' % i, index=i) for i in range(1, 4)]
    with FakeCloud(servers, page=2) as fake:
        clouds = tmp_path / 'clouds.yaml'
        clouds.write_text(yaml.safe_dump({'clouds': {'thin': fake.cloud(), 'sdk': fake.cloud(regions=['R1'])}}))
        plugin = make_plugin(clouds_yaml=str(clouds), clouds=['thin', 'sdk'])
        data = plugin._query()
    assert data['errors'] == []
    thin, sdk = data['clouds']
    assert thin['cloud'] == 'thin' and sdk['cloud'] == 'sdk'
    assert thin['region'] == sdk['region'] == 'R1'
    assert thin['servers'] == sdk['servers'] and [s['name'] for s in thin['servers']] == ['ml-gpu-1', 'ml-gpu-2', 'ml-gpu-3']
    assert thin['servers'][0]['flavor'] == {'name': 'g1.a100', 'vcpus': 8, 'ram': 32768, 'extra_specs': {'resources:VGPU': '1', 'gpu:model': 'A100'}}

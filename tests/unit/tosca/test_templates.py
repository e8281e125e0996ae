# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The TOSCA templates under tosca/: their inputs reach role variables, and the orchestrator's code reads them.

- The mapping fails on drift: every input of a template is used; one used in
  a node's interface inputs names a variable of the argument spec of a role
  that the node's implementation artifact runs, with a compatible type and
  default; one used on the Compute node sets a capability the orchestrator
  reads; every required option of those roles is set by the template.
- Parsing as the orchestrator would: tosca-parser loads each template and the
  Infrastructure Manager's TOSCA code (the IM package, offline) translates it
  to RADL, whose systems, GPU requests, Ansible steps and variables are
  checked. INFN's type files are served from pinned copies
  (tests/unit/fixtures/tosca-types), this collection's artifacts from the
  checkout: no network. INFN's own implementation artifacts (playbooks of
  tosca.nodes.indigo.Compute, such as artifacts/os/configure_users.yml) are
  not pinned: they are served as an empty play and the test names them.
"""
import copy
import json
import glob
import gzip
import io
import os
import re
import subprocess
import sys
import urllib.request

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))
TYPES = os.path.join(ROOT, 'tests', 'unit', 'fixtures', 'tosca-types')
TEMPLATES = sorted(glob.glob(os.path.join(ROOT, 'tosca', '*.yaml')))
# URL prefixes the templates use, and where their files are here.
URL_MAP = [
    (re.compile(r'^https://raw\.githubusercontent\.com/indigo-dc/tosca-types/[^/]+/(.+)$'), os.path.join(TYPES, 'indigo-dc')),
    (re.compile(r'^https://raw\.githubusercontent\.com/fedgpu/platform/[^/]+/(.+)$'), ROOT),
]
# What a template input may set on a Compute node (tosca.nodes.indigo.Compute), as IM reads it.
COMPUTE_INPUTS = {'host.num_cpus', 'host.mem_size', 'host.disk_size', 'host.num_gpus', 'host.gpu_model', 'os.distribution', 'os.version',
                  'endpoint.ports', 'scalable.count', 'os_users'}
# TOSCA input type -> argument spec types that take it as it is.
COMPATIBLE = {'string': {'str', 'raw', 'path'}, 'integer': {'int', 'raw'}, 'boolean': {'bool', 'raw'}, 'list': {'list', 'raw'},
              'map': {'dict', 'raw'}, 'float': {'float', 'raw'}}


def local_path(url):
    for pattern, base in URL_MAP:
        m = pattern.match(url)
        if m:
            return os.path.join(base, m.group(1))
    return None


def read_local(path):
    """A served file's bytes, or None; the pinned upstream files are kept gzipped (fixtures/tosca-types/SOURCES.md)."""
    if path and os.path.exists(path):
        with open(path, 'rb') as f:
            return f.read()
    if path and os.path.exists(path + '.gz'):
        with gzip.open(path + '.gz', 'rb') as f:
            return f.read()
    return None


STUB = '---\n- hosts: localhost\n  tasks: []\n'
INDIGO_ARTIFACT = re.compile(r'^https://raw\.githubusercontent\.com/indigo-dc/tosca-types/[^/]+/artifacts/')


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """Serve the mapped URLs from files, refuse every other one (tosca-parser through urllib, IM through requests).

    Returns the list of INFN artifacts served as a stub.
    """
    stubbed = []

    def urlopen(url, *args, **kwargs):
        url = getattr(url, 'full_url', url)
        content = read_local(local_path(url))
        if content is None:
            raise AssertionError('the test reached for %s, which it does not serve' % url)
        resp = io.BytesIO(content)
        resp.getcode = lambda: 200
        return resp

    class Response:
        def __init__(self, text):
            self.status_code, self.reason, self.text = 200, 'OK', text

    def get(_session, url, *args, **kwargs):
        content = read_local(local_path(url))
        if content is not None:
            return Response(content.decode())
        if INDIGO_ARTIFACT.match(url):
            stubbed.append(url.split('/artifacts/', 1)[1])
            return Response(STUB)
        raise AssertionError('the test reached for %s, which it does not serve' % url)

    monkeypatch.setattr(urllib.request, 'urlopen', urlopen)
    import requests_cache  # pylint: disable=import-outside-toplevel
    monkeypatch.setattr(requests_cache.CachedSession, 'get', get)
    monkeypatch.chdir(tmp_path)  # IM's request cache file
    return stubbed


def load(path):
    with open(path) as f:
        return yaml.safe_load(f)


def role_specs():
    """{role: {option: spec}} of every role's main entry point."""
    specs = {}
    for path in glob.glob(os.path.join(ROOT, 'roles', '*', 'meta', 'argument_specs.yml')):
        role = path.split(os.sep)[-3]
        specs[role] = load(path)['argument_specs']['main'].get('options') or {}
    return specs


def artifact_roles(implementation):
    """Roles (short names) that an implementation artifact runs."""
    path = local_path(implementation)
    assert path and os.path.exists(path), 'implementation %s is not an artifact of this collection' % implementation
    with open(path) as f:
        text = f.read()
    return sorted(set(re.findall(r'fedgpu\.platform\.([a-z_]+)', text)) & set(role_specs()))


def input_uses(node_templates):
    """(input, node, kind, key, wrapped) for every get_input: kind 'interface' (key: variable) or 'compute' (key: capability property)."""
    uses = []

    def walk(value, node, kind, key, wrapped=False):
        if isinstance(value, dict) and set(value) == {'get_input'}:
            uses.append((value['get_input'], node, kind, key, wrapped))
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(v, node, kind, key, wrapped)
        elif isinstance(value, list):
            for v in value:
                walk(v, node, kind, key, True)

    for name, node in node_templates.items():
        for op in ((node.get('interfaces') or {}).get('Standard') or {}).values():
            for var, value in (op.get('inputs') or {}).items():
                walk(value, name, 'interface', var)
        for prop, value in (node.get('properties') or {}).items():
            walk(value, name, 'compute', prop)
        for cap, body in (node.get('capabilities') or {}).items():
            for prop, value in ((body or {}).get('properties') or {}).items():
                walk(value, name, 'compute', '%s.%s' % (cap, prop))
    return uses


def test_there_are_templates():
    assert [os.path.basename(t) for t in TEMPLATES] == ['htcondor_pool.yaml', 'jupyterhub_gpu_vm.yaml', 'platform.yaml']


@pytest.mark.parametrize('template', TEMPLATES, ids=os.path.basename)
def test_every_input_reaches_a_role_variable_of_a_compatible_type(template):
    tpl = load(template)
    topology = tpl['topology_template']
    inputs = topology['inputs']
    nodes = topology['node_templates']
    specs = role_specs()
    uses = input_uses(nodes)
    assert set(inputs) == {u[0] for u in uses}, 'inputs used nowhere: %s' % sorted(set(inputs) - {u[0] for u in uses})
    for name, node, kind, key, wrapped in uses:
        assert name in inputs, '%s: %s uses an input that is not declared: %s' % (node, key, name)
        decl = inputs[name]
        if kind == 'compute':
            assert nodes[node]['type'] == 'tosca.nodes.indigo.Compute' and key in COMPUTE_INPUTS, (name, node, key)
            continue
        configure = nodes[node]['interfaces']['Standard']['configure']
        roles = artifact_roles(configure['implementation'])
        owners = [r for r in roles if key in specs[r]]
        assert owners, '%s: input %s goes to %s, which no role of the artifact (%s) declares' % (node, name, key, ', '.join(roles))
        spec = specs[owners[0]][key]
        want = spec.get('type', 'str')
        if wrapped:
            assert want in ('list', 'raw') and spec.get('elements', 'str') == 'str', (name, key, spec)
        else:
            assert want in COMPATIBLE[decl['type']], '%s (%s) goes to %s (%s)' % (name, decl['type'], key, want)
        if 'choices' in spec and 'default' in decl:
            assert str(decl['default']) in [str(c) for c in spec['choices']], (name, decl['default'], spec['choices'])
        # Allowed values of the input are values the role accepts.
        for constraint in decl.get('constraints', []):
            if 'valid_values' in constraint and 'choices' in spec:
                assert set(map(str, constraint['valid_values'])) <= set(map(str, spec['choices'])), (name, key)


@pytest.mark.parametrize('template', TEMPLATES, ids=os.path.basename)
def test_required_role_options_are_set_by_the_template(template):
    nodes = load(template)['topology_template']['node_templates']
    specs = role_specs()
    for name, node in nodes.items():
        configure = ((node.get('interfaces') or {}).get('Standard') or {}).get('configure')
        if not configure:
            continue
        given = set(configure.get('inputs') or {})
        for role in artifact_roles(configure['implementation']):
            required = {k for k, v in specs[role].items() if v.get('required')}
            assert required <= given, '%s: %s needs %s' % (name, role, sorted(required - given))


def parse(tpl):
    from toscaparser.tosca_template import ToscaTemplate  # pylint: disable=import-outside-toplevel
    return ToscaTemplate(yaml_dict_tpl=copy.deepcopy(tpl))


def to_radl(tpl):
    from IM.tosca.Tosca import Tosca  # pylint: disable=import-outside-toplevel
    return Tosca(yaml.safe_dump(tpl)).to_radl()[1]  # (VMs to remove, RADL)


@pytest.mark.parametrize('template', TEMPLATES, ids=os.path.basename)
def test_tosca_parser_loads_the_template(offline, template):
    parsed = parse(load(template))
    assert {n.name for n in parsed.nodetemplates} == set(load(template)['topology_template']['node_templates'])
    assert {i.name for i in parsed.inputs} == set(load(template)['topology_template']['inputs'])


def with_inputs(tpl, **values):
    """The template as the orchestrator sends it with the user's input values (as defaults)."""
    tpl = copy.deepcopy(tpl)
    for name, value in values.items():
        tpl['topology_template']['inputs'][name]['default'] = value
    return tpl


def test_jupyterhub_gpu_vm_translates_to_radl(offline):
    tpl = with_inputs(load(os.path.join(ROOT, 'tosca', 'jupyterhub_gpu_vm.yaml')), num_gpus=2, gpu_model='A100', num_cpus=16,
                      mem_size='64 GB', gpu_partition_flavor='7x 1g.10gb MIG GPUs', iam_groups='cms', iam_client_id='hub',
                      iam_client_secret='s3cret', cvmfs_repos='cms.cern.ch')
    radl = to_radl(tpl)
    assert offline == ['os/configure_users.yml'], 'INFN artifacts served as a stub: %s' % offline
    systems = {s.name: s for s in radl.systems}
    assert list(systems) == ['vm_server']
    vm = systems['vm_server']
    assert vm.getValue('cpu.count') == 16
    assert vm.getFeature('memory.size').getValue('G') == 64
    assert vm.getValue('gpu.count') == 2 and vm.getValue('gpu.model') == 'A100' and vm.getValue('gpu.vendor') == 'NVIDIA'
    assert vm.getValue('disk.0.os.name') == 'linux'
    # The collection, installed before the recipe runs.
    assert "name = 'ansible.collections.fedgpu.platform'" in str(vm)
    assert [d.id for d in radl.deploys] == ['vm_server'] and radl.deploys[0].vm_number == 1
    # The recipe: this collection's artifact, with the role variables set from INFN's inputs.
    confs = {c.name: c for c in radl.configures}
    conf = confs['jupyterhub_vm_server_conf'] if 'jupyterhub_vm_server_conf' in confs else [c for n, c in confs.items() if n.startswith('jupyterhub')][0]
    recipe = yaml.safe_load(conf.recipes)
    play = recipe[0]
    assert 'hosts' not in play and 'connection' not in play
    assert play['vars']['jupyterhub_allowed_groups'] == ['cms']
    assert play['vars']['jupyterhub_oidc_client_secret'] == 's3cret'
    assert play['vars']['nvidia_mig_partition_flavor'] == '7x 1g.10gb MIG GPUs'
    assert play['vars']['cvmfs_repositories'] == 'cms.cern.ch'
    assert play['vars']['jupyterhub_use_gpu'] is True
    included = [t['ansible.builtin.include_role']['name'] for t in play['tasks'] if 'ansible.builtin.include_role' in t]
    assert 'fedgpu.platform.jupyterhub' in included and 'fedgpu.platform.cvmfs' in included


def readme_table(template):
    """{input: goes to} from the table of tosca/README.md's section on this template."""
    rows = {}
    section = None
    with open(os.path.join(ROOT, 'tosca', 'README.md')) as f:
        for line in f:
            if line.startswith('### '):
                section = line[4:].strip().strip('`')
            cells = [c.strip() for c in line.strip().strip('|').split('|')]
            if section != os.path.basename(template) or len(cells) != 3 or not cells[0].startswith('`'):
                continue
            inputs = re.findall(r'`([a-z_]+)`', cells[0])
            targets = re.findall(r'`([a-z_]+)`', cells[1])
            for k, name in enumerate(inputs):
                # A row on a Compute node ("`wn` `host` capability", "`front` `os_users`") keeps its whole cell.
                on_node = 'capability' in cells[1] or 'os_users' in cells[1]
                rows[name] = cells[1] if on_node else targets[k]
    return rows


@pytest.mark.parametrize('template', TEMPLATES, ids=os.path.basename)
def test_the_readme_lists_every_input_and_where_it_goes(template):
    rows = readme_table(template)
    for name, node, kind, key, _wrapped in input_uses(load(template)['topology_template']['node_templates']):
        assert name in rows, 'tosca/README.md does not list input %s' % name
        if kind == 'interface':
            assert rows[name] == key, 'tosca/README.md says %s goes to %s, the template says %s' % (name, rows[name], key)
        else:
            assert '`%s`' % node in rows[name] and '`%s`' % key.split('.')[0] in rows[name], (name, rows[name], node, key)


def test_a_missing_input_stops_the_translation_naming_the_variable(offline):
    tpl = load(os.path.join(ROOT, 'tosca', 'jupyterhub_gpu_vm.yaml'))
    with pytest.raises(Exception, match='input value for jupyterhub_oidc_client_secret in interface configure of node jupyterhub'):
        to_radl(with_inputs(tpl, iam_client_id='hub'))


def test_htcondor_pool_translates_to_radl(offline):
    tpl = with_inputs(load(os.path.join(ROOT, 'tosca', 'htcondor_pool.yaml')), number_of_nodes=3, number_of_nodes_with_gpu=2,
                      num_gpus_node=2, gpu_model_node='A100', gpu_partition_flavor='3x 2g.20gb MIG GPUs', num_cpus_node_with_gpu=16)
    radl = to_radl(tpl)
    assert set(offline) == {'os/configure_users.yml'}, offline
    systems = {s.name: s for s in radl.systems}
    assert sorted(systems) == ['front', 'wn', 'wn_gpu']
    assert {d.id: d.vm_number for d in radl.deploys} == {'front': 1, 'wn': 3, 'wn_gpu': 2}
    assert systems['front'].getValue('cpu.count') == 4 and systems['front'].getValue('gpu.count') is None
    assert systems['wn'].getValue('gpu.count') is None
    gpu = systems['wn_gpu']
    assert gpu.getValue('cpu.count') == 16 and gpu.getValue('gpu.count') == 2 and gpu.getValue('gpu.model') == 'A100'
    assert gpu.getFeature('memory.size').getValue('G') == 32
    for system in systems.values():
        assert "name = 'ansible.collections.fedgpu.platform'" in str(system)
    # Only the front end is public.
    public = {n.id for n in radl.networks if n.isPublic()}
    assert [s for s in systems.values() if any(system_net in public for system_net in
            [s.getValue('net_interface.%d.connection' % i) for i in range(3)])] == [systems['front']]
    recipes = {c.name: yaml.safe_load(c.recipes)[0] for c in radl.configures if c.name.startswith('htcondor_')}
    assert sorted(recipes) == ['htcondor_front_front_conf', 'htcondor_wn_gpu_wn_gpu_conf', 'htcondor_wn_wn_conf']
    for name, play in recipes.items():
        assert play['vars']['htcondor_central_manager_group'] == 'front' and play['vars']['htcondor_access_point_group'] == 'front'
    assert recipes['htcondor_wn_wn_conf']['vars']['htcondor_execute_group'] == 'wn'
    gpu_vars = recipes['htcondor_wn_gpu_wn_gpu_conf']['vars']
    assert gpu_vars['htcondor_execute_group'] == 'wn_gpu' and gpu_vars['htcondor_gpu_mode'] == 'discover'
    assert gpu_vars['nvidia_mig_partition_flavor'] == '3x 2g.20gb MIG GPUs'
    assert 'nvidia_mig_partition_flavor' not in recipes['htcondor_wn_wn_conf']['vars']


# The full platform: each Compute node is the openstack_federation inventory's node group of the same role.
PLATFORM_NODE_GROUPS = {'front': 'frontend', 'wn': 'cpu', 'wn_gpu': 'gpu', 'nfs': 'nfs', 'db': 'db', 'db_standby': 'db',
                        'db_witness': 'dbw', 'backup': 'backup'}


def platform_group_map():
    nodes = load(os.path.join(ROOT, 'tosca', 'platform.yaml'))['topology_template']['node_templates']
    maps = [n['interfaces']['Standard']['configure']['inputs']['fedgpu_group_map'] for n in nodes.values() if 'interfaces' in n]
    assert maps and all(m == maps[0] for m in maps), 'every software node of platform.yaml carries the same table'
    return maps[0], nodes


def test_platform_table_is_the_inventory_table():
    """One table: the template's, keyed by Compute node, is the openstack inventory's group_map (no drift)."""
    group_map, nodes = platform_group_map()
    computes = {name for name, n in nodes.items() if n['type'] == 'tosca.nodes.indigo.Compute'}
    assert set(group_map) == computes == set(PLATFORM_NODE_GROUPS)
    inventory = load(os.path.join(ROOT, 'inventories', 'openstack', 'fedgpu.openstack_federation.yml'))['group_map']
    for compute, groups in group_map.items():
        assert groups == inventory[PLATFORM_NODE_GROUPS[compute]], (compute, groups)
    # Every group a play of site.yml applies to is made by the table (or is a group every inventory has).
    site = [os.path.join(ROOT, 'playbooks', p['ansible.builtin.import_playbook']) for p in load(os.path.join(ROOT, 'playbooks', 'site.yml'))]
    made = {g for groups in group_map.values() for g in groups} | {'all'}
    while site:
        path = site.pop()
        for play in load(path):
            if 'ansible.builtin.import_playbook' in play:
                site.append(os.path.join(os.path.dirname(path), play['ansible.builtin.import_playbook']))
                continue
            for pattern in re.split(r'[:,]', play['hosts']):
                assert pattern in made, '%s applies to %s, which the platform template does not make' % (os.path.basename(path), pattern)


def test_platform_translates_to_radl(offline):
    tpl = with_inputs(load(os.path.join(ROOT, 'tosca', 'platform.yaml')), number_of_nodes=2, number_of_nodes_with_gpu=3,
                      num_gpus_node=2, gpu_model_node='H100', gpu_partition_flavor='7x 1g.10gb MIG GPUs', number_of_db_standbys=2,
                      iam_client_id='hub', iam_client_secret='s3cret', iam_groups='ml-infn-users')
    radl = to_radl(tpl)
    assert set(offline) == {'os/configure_users.yml'}, offline
    systems = {s.name: s for s in radl.systems}
    assert sorted(systems) == sorted(PLATFORM_NODE_GROUPS)
    counts = {'front': 1, 'wn': 2, 'wn_gpu': 3, 'nfs': 1, 'db': 1, 'db_standby': 2, 'db_witness': 1, 'backup': 1}
    assert {d.id: d.vm_number for d in radl.deploys} == counts
    assert [n for n, s in systems.items() if s.getValue('gpu.count')] == ['wn_gpu']
    assert systems['wn_gpu'].getValue('gpu.count') == 2 and systems['wn_gpu'].getValue('gpu.model') == 'H100'
    # The NFS areas live on the server's root disk.
    assert systems['nfs'].getFeature('disk.0.size').getValue('G') == 200
    recipes = {c.name: yaml.safe_load(c.recipes)[0] for c in radl.configures if c.name.startswith('platform_')}
    assert len(recipes) == 8
    group_map = platform_group_map()[0]
    for name, play in recipes.items():
        assert play['vars']['fedgpu_group_map'] == group_map, name
    by_node = {name.split('_', 1)[1].rsplit('_conf', 1)[0]: play for name, play in recipes.items()}
    front = [p for n, p in by_node.items() if n.startswith('front')][0]
    assert front['vars']['jupyterhub_oidc_client_secret'] == 's3cret' and front['vars']['jupyterhub_allowed_groups'] == ['ml-infn-users']
    gpu = [p for n, p in by_node.items() if n.startswith('wn_gpu')][0]
    assert gpu['vars']['nvidia_mig_partition_flavor'] == '7x 1g.10gb MIG GPUs' and gpu['vars']['htcondor_gpu_mode'] == 'discover'
    # The order of configuration: the IM runs a node's recipe after those it depends on.
    steps = {c.configure.split('_', 1)[1].rsplit('_conf', 1)[0]: c.num for c in radl.contextualize.items.values()
             if c.configure.startswith('platform_')}
    assert steps, radl.contextualize
    order = sorted(steps, key=steps.get)
    assert steps['db_db'] < steps['db_standby_db_standby'] < steps['backup_backup'], order
    assert steps['db_db'] < steps['db_witness_db_witness'] < steps['backup_backup'], order
    assert steps['nfs_nfs'] < steps['front_front'] < steps['wn_wn'] and steps['front_front'] < steps['wn_gpu_wn_gpu'], order


def im_inventory(counts):
    """An inventory as the IM writes it (ConfManager: hosts named IP_imid, one group per system), every host local."""
    children, all_hosts, im_id = {}, {}, 0
    for system, count in counts.items():
        hosts = {}
        for _k in range(count):
            name = '10.0.0.%d_%d' % (10 + im_id, im_id)
            hosts[name] = {'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable,
                           'IM_NODE_PRIVATE_IP': '10.0.0.%d' % (10 + im_id), 'IM_NODE_NUM': str(im_id)}
            all_hosts[name] = {}
            im_id += 1
        children[system] = {'hosts': hosts}
    children['allnowindows'] = {'hosts': all_hosts}
    return {'all': {'vars': {'IM_MASTER_HOSTNAME': 'front'}, 'children': children}}


def test_platform_recipe_lays_out_the_im_inventory(offline, tmp_path):
    """The recipe the IM would run (its header merged in) on a database VM joins site.yml's groups with repmgr's ids."""
    from IM.ConfManager import ConfManager  # pylint: disable=import-outside-toplevel
    from IM.ansible_utils import merge_recipes  # pylint: disable=import-outside-toplevel
    tpl = with_inputs(load(os.path.join(ROOT, 'tosca', 'platform.yaml')), number_of_db_standbys=2, iam_client_id='hub',
                      iam_client_secret='s3cret')
    radl = to_radl(tpl)
    conf = [c for c in radl.configures if c.name.startswith('platform_db_standby')][0]
    playbook = merge_recipes(ConfManager.add_ansible_header('linux'), conf.recipes)
    plays = yaml.safe_load(playbook)
    assert plays[0]['hosts'] == '{{IM_HOST}}' and plays[0]['gather_facts'] is True
    assert not isinstance(plays[0].get('become'), list), 'the header and the artifact both set become: %r' % plays[0].get('become')
    (tmp_path / 'site.yml').write_text(playbook)
    counts = {'front': 1, 'wn': 2, 'wn_gpu': 1, 'nfs': 1, 'db': 1, 'db_standby': 2, 'db_witness': 1, 'backup': 1}
    inventory = im_inventory(counts)
    (tmp_path / 'inventory.yml').write_text(yaml.safe_dump(inventory, sort_keys=False))
    standby = list(inventory['all']['children']['db_standby']['hosts'])[1]
    (tmp_path / 'ansible.cfg').write_text('[defaults]\n')
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK='ansible.posix.json', ANSIBLE_CONFIG=str(tmp_path / 'ansible.cfg'),
               ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, '.cache', 'collections'))
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', 'inventory.yml', 'site.yml',
                           '--tags', 'fedgpu_layout', '-e', 'IM_HOST=%s' % standby, '-e', 'ansible_become=false',
                           '-e', 'fedgpu_secrets_dir=%s' % (tmp_path / 'secrets')],
                          cwd=str(tmp_path), env=env, capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    tasks = {t['task']['name']: t['hosts'] for t in result['plays'][0]['tasks']}
    assert list(tasks['Show where this VM belongs']) == [standby]
    msg = tasks['Show where this VM belongs'][standby]['msg']
    # The second standby: node group db_standby (second of those mapped to db_data), index 2.
    assert msg == '%s: allnowindows, db, db_data, db_standby, platform, repmgr node 102 standby' % standby, msg
    joined = tasks["Join site.yml's groups, with the values derived for each VM (fedgpu_group_map)"][standby]['results']
    ids = {r['item']['node_group'] + str(r['item']['index']): (r['item']['vars'].get('repmgr_node_id'), r['item']['vars'].get('repmgr_role'))
           for r in joined}
    want = {'db1': (1, 'primary'), 'db_standby1': (101, 'standby'), 'db_standby2': (102, 'standby'), 'db_witness1': (1001, 'witness')}
    assert {k: v for k, v in ids.items() if v[0]} == want
    assert len(joined) == sum(counts.values())
    # The layout changed nothing, and no task outside it ran.
    assert set(tasks) <= {'Gathering Facts', 'Join site.yml\'s groups, with the values derived for each VM (fedgpu_group_map)',
                          'Show where this VM belongs'}, sorted(tasks)
    assert not any(h.get('changed') for hosts in tasks.values() for h in hosts.values())

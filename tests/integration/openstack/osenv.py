# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers for the tests against the OpenStack test sites (see conftest.py)."""
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
SITES_SH = os.path.join(HERE, 'sites.sh')
RUN = os.environ.get('FEDGPU_OS_RUN', os.path.join(ROOT, '.cache', 'openstack-sites'))
CLOUDS_YAML = os.path.join(RUN, 'clouds.yaml')
COLLECTIONS = os.path.join(ROOT, '.cache', 'collections')
BIN = os.path.dirname(sys.executable)
IMAGE = 'fedgpu-test-image'
SITE_A, SITE_B = 'site-a', 'site-b'


def default_venv():
    """The Ansible venv: FEDGPU_VENV, else the checkout's .venv (tools/bootstrap-host.sh)."""
    return os.environ.get('FEDGPU_VENV') or os.path.join(ROOT, '.venv')


def reexec_in_venv():
    """Run the calling script again under the Ansible venv unless this Python has Ansible and PyYAML."""
    py = os.path.join(default_venv(), 'bin', 'python')
    try:
        import yaml  # noqa: F401 pylint: disable=unused-import,import-outside-toplevel
        import ansible  # noqa: F401 pylint: disable=unused-import,import-outside-toplevel
    except ImportError:
        if os.path.exists(py) and os.path.realpath(sys.prefix) != os.path.realpath(default_venv()):
            os.execv(py, [py] + sys.argv)
        raise SystemExit('no Ansible venv at %s: run tools/bootstrap-host.sh or set FEDGPU_VENV' % default_venv())


def sites_up(n_sites):
    """Start the loopback test sites unless they run; True if this call started them."""
    if subprocess.run(['bash', SITES_SH, 'status'], capture_output=True, check=False).returncode == 0:
        return False
    subprocess.run(['bash', SITES_SH, 'start', '--sites', str(n_sites)], check=True)
    return True


def sites_down():
    subprocess.run(['bash', SITES_SH, 'stop'], check=False)


def ansible_env(extra=None):
    env = dict(os.environ)
    env.update({
        'ANSIBLE_COLLECTIONS_PATH': COLLECTIONS,
        'ANSIBLE_NOCOLOR': '1',
        'ANSIBLE_RETRY_FILES_ENABLED': 'false',
        'ANSIBLE_LOCALHOST_WARNING': 'false',
        'ANSIBLE_INVENTORY_UNPARSED_WARNING': 'false',
        'OS_CLIENT_CONFIG_FILE': CLOUDS_YAML,
    })
    env.update(extra or {})
    return env


def run_module(args, check=False, diff=False):
    """Run the fedgpu.platform.openstack_federation_cluster module the way Ansible runs it, without a playbook.

    The module reads ANSIBLE_MODULE_ARGS (with Ansible's internal
    _ansible_check_mode/_ansible_diff flags) from a JSON file and prints its
    result as JSON; this saves the playbook start-up on every call.
    """
    args = dict(args)
    args.setdefault('clouds_yaml', CLOUDS_YAML)
    args.setdefault('clouds', [{'name': SITE_A}, {'name': SITE_B}])
    args['_ansible_check_mode'] = check
    args['_ansible_diff'] = diff
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, 'args.json')
        with open(path, 'w') as f:
            json.dump({'ANSIBLE_MODULE_ARGS': args}, f)
        proc = subprocess.run([sys.executable, '-m', 'ansible_collections.fedgpu.platform.plugins.modules.openstack_federation_cluster', path],
                              capture_output=True, text=True, env=ansible_env({'PYTHONPATH': COLLECTIONS}), cwd=tmp, check=False)
    try:
        return json.loads(proc.stdout)
    except ValueError:
        raise AssertionError('module gave no JSON (rc %s):\n%s\n%s' % (proc.returncode, proc.stdout[-4000:], proc.stderr[-4000:]))


run_cluster = run_module


def run_playbook(playbook, extra_vars, *args):
    """Run one of the collection's playbooks against the test sites."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, 'vars.json')
        with open(path, 'w') as f:
            json.dump(extra_vars, f)
        return subprocess.run([os.path.join(BIN, 'ansible-playbook'), '-i', 'localhost,', '-c', 'local', '-e',
                               'ansible_python_interpreter=' + sys.executable, '-e', '@' + path, os.path.join(ROOT, 'playbooks', playbook)]
                              + list(args), capture_output=True, text=True, env=ansible_env(), check=False)


def cluster_servers(conns, cluster, site=None):
    """{name: (site, server)} of a cluster, read with openstacksdk."""
    found = {}
    for name in (SITE_A, SITE_B):
        if site and name != site:
            continue
        for server in conns[name].compute.servers(details=True):
            if (server.metadata or {}).get('fedgpu_cluster') == cluster:
                found[server.name] = (name, server)
    return found


def tagged(conns, cluster):
    """Neutron resources and key pairs a cluster left, per site."""
    tag = 'fedgpu-cluster:' + cluster
    left = {}
    for name in (SITE_A, SITE_B):
        net = conns[name].network
        items = []
        items += ['network %s' % n.name for n in net.networks(tags=[tag])]
        items += ['subnet %s' % n.name for n in net.subnets(tags=[tag])]
        items += ['router %s' % n.name for n in net.routers(tags=[tag])]
        items += ['security group %s' % n.name for n in net.security_groups(tags=[tag])]
        items += ['floating ip %s' % n.floating_ip_address for n in net.ips(tags=[tag])]
        key = conns[name].compute.find_keypair('fedgpu-%s' % cluster, ignore_missing=True)
        if key:
            items.append('key pair %s' % key.name)
        if items:
            left[name] = items
    return left

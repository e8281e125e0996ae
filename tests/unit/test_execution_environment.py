# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""execution-environment.yml: its pins agree with the collection, and ansible-builder makes a build context from it."""
import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
BIN = os.path.dirname(sys.executable)


def load(path):
    with open(os.path.join(ROOT, path)) as f:
        return yaml.safe_load(f)


def pins(path):
    with open(os.path.join(ROOT, path)) as f:
        return dict(line.split('==') for line in (raw.split('#')[0].strip() for raw in f) if line)


def test_collections_are_pinned_and_cover_galaxy_dependencies():
    galaxy = load('galaxy.yml')
    ee = load('ee/requirements.yml')['collections']
    named = {c['name']: c.get('version') for c in ee if c.get('type') != 'file'}
    assert set(named) == set(galaxy['dependencies']), 'ee/requirements.yml and galaxy.yml list other collections'
    assert all(re.match(r'^\d+\.\d+\.\d+$', str(v)) for v in named.values()), named
    # The collection itself, at galaxy.yml's version, from the tarball that make ee builds.
    tarball = 'fedgpu-platform-%s.tar.gz' % galaxy['version']
    assert [c['name'] for c in ee if c.get('type') == 'file'] == ['collections/' + tarball]
    assert load('execution-environment.yml')['additional_build_files'][0]['src'] == 'ee/' + tarball
    # The pins are what the tests run with (the ansible package that constraints.txt pins).
    import ansible_collections  # pylint: disable=import-outside-toplevel
    for name, version in named.items():
        manifests = [os.path.join(path, *name.split('.'), 'MANIFEST.json') for path in ansible_collections.__path__]
        manifest = [m for m in manifests if os.path.exists(m)]
        assert manifest, '%s is not installed: %s' % (name, manifests)
        with open(manifest[0]) as f:
            assert yaml.safe_load(f)['collection_info']['version'] == version, name


def requirement_ranges():
    """requirements.txt's requirements by canonical name."""
    from packaging.requirements import Requirement  # pylint: disable=import-outside-toplevel
    from packaging.utils import canonicalize_name  # pylint: disable=import-outside-toplevel
    with open(os.path.join(ROOT, 'requirements.txt')) as f:
        return {canonicalize_name(r.name): r
                for r in (Requirement(raw.split('#')[0].strip()) for raw in f if raw.split('#')[0].strip())}


def locked_pins():
    """constraints.txt's exact versions by canonical name."""
    from packaging.utils import canonicalize_name  # pylint: disable=import-outside-toplevel
    return {canonicalize_name(name): pinned for name, pinned in pins('constraints.txt').items()}


def test_constraints_pin_every_requirement_within_its_range_as_installed():
    """constraints.txt: the versions a fresh bootstrap installs, so a release upstream changes nothing untested."""
    from importlib.metadata import PackageNotFoundError, version  # pylint: disable=import-outside-toplevel
    locked = locked_pins()
    for name, requirement in requirement_ranges().items():
        assert name in locked, '%s is required by requirements.txt but not pinned in constraints.txt' % name
        assert requirement.specifier.contains(locked[name]), (name, locked[name], str(requirement.specifier))
    drift = {}
    for name, pinned in locked.items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            continue
        if installed != pinned:
            drift[name] = (installed, pinned)
    assert not drift, 'the tests run with other versions than constraints.txt pins (installed, pinned): %s; run make bootstrap' % drift


def test_python_pins_are_those_of_constraints_txt():
    from packaging.utils import canonicalize_name  # pylint: disable=import-outside-toplevel
    ranges, locked = requirement_ranges(), locked_pins()
    for name, pinned in pins('ee/requirements.txt').items():
        name = canonicalize_name(name)
        assert name in ranges, '%s is pinned in ee/requirements.txt but not required by requirements.txt' % name
        assert locked[name] == pinned, '%s: constraints.txt pins %s, the execution environment %s' % (name, locked[name], pinned)
    core = load('execution-environment.yml')['dependencies']['ansible_core']['package_pip']
    assert core == 'ansible-core==' + locked['ansible-core']


@pytest.fixture(scope='module')
def context(tmp_path_factory):
    """ansible-builder create on a copy of the definition, with the collection tarball that make ee builds."""
    work = tmp_path_factory.mktemp('ee')
    shutil.copy(os.path.join(ROOT, 'execution-environment.yml'), str(work))
    shutil.copytree(os.path.join(ROOT, 'ee'), str(work / 'ee'), ignore=shutil.ignore_patterns('*.tar.gz'))
    build = subprocess.run([os.path.join(BIN, 'ansible-galaxy'), 'collection', 'build', '--output-path', str(work / 'ee'), ROOT],
                           capture_output=True, text=True, check=False)
    assert build.returncode == 0, build.stderr
    create = subprocess.run([os.path.join(BIN, 'ansible-builder'), 'create', '-f', 'execution-environment.yml', '-c', 'context',
                             '--output-filename', 'Containerfile'], cwd=str(work), capture_output=True, text=True, check=False)
    assert create.returncode == 0, create.stdout + create.stderr
    return work / 'context'


def test_ansible_builder_creates_the_build_context(context):
    containerfile = (context / 'Containerfile').read_text()
    assert 'quay.io/centos/centos:stream9' in containerfile
    assert 'ansible-galaxy collection list fedgpu.platform' in containerfile
    build = context / '_build'
    assert pins(str(build / 'requirements.txt')) == pins('ee/requirements.txt')
    assert 'openssh-clients [platform:rpm]' in (build / 'bindep.txt').read_text()
    assert yaml.safe_load((build / 'requirements.yml').read_text()) == load('ee/requirements.yml')
    tarball = 'fedgpu-platform-%s.tar.gz' % load('galaxy.yml')['version']
    assert (build / 'collections' / tarball).stat().st_size > 10000
    # The tarball carries the collection, not the checkout's caches.
    listing = subprocess.run(['tar', 'tzf', str(build / 'collections' / tarball)], capture_output=True, text=True, check=True).stdout.split()
    assert 'plugins/inventory/openstack_federation.py' in listing and 'playbooks/deploy.yml' in listing
    assert not [n for n in listing if n.startswith(('.cache', '.venv'))]


@pytest.mark.skipif(os.environ.get('FEDGPU_EE_BUILD') != '1',
                    reason='building the execution environment image needs quay.io (base image), Galaxy and PyPI, which the build '
                           'machines cannot reach; set FEDGPU_EE_BUILD=1 where they can (make ee)')
def test_the_image_builds_and_runs_the_collection(context):
    proc = subprocess.run([os.path.join(BIN, 'ansible-builder'), 'build', '-c', str(context), '-f', os.path.join(ROOT, 'execution-environment.yml'),
                           '-t', 'fedgpu-platform-ee:test'], cwd=str(context.parent), capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

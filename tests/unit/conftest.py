# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures shared by the unit tests."""

import json
import os
import subprocess
import sys

import pytest
import yaml
from ansible.plugins.loader import init_plugin_loader
from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
COLLECTIONS = os.path.join(ROOT, ".cache", "collections")


@pytest.fixture(scope="module")
def collection_loader():
    """Ansible's plugin loader with this collection, for templates that call its filters (as in a play).

    Other tests may have imported the collection from sys.path; Ansible's plugin loader finds collection
    filters only through its own finder. Afterwards the finder and what it imported go, and the tests that
    follow import the collection from sys.path again, whatever their order.
    """
    def ours():
        return [name for name in sys.modules if name.startswith("ansible_collections")]
    saved = dict((name, sys.modules.pop(name)) for name in ours())
    init_plugin_loader([COLLECTIONS])
    yield
    _AnsibleCollectionFinder._remove()  # pylint: disable=protected-access
    for name in ours():
        del sys.modules[name]
    sys.modules.update(saved)


@pytest.fixture
def run_role_check(tmp_path):
    """Run one of the collection's roles on localhost with --check: run_role_check(role, variables[, tasks_from]).

    For the roles' input checks: a refused input must stop the play before any change.
    """
    def run(role, variables, tasks_from=None):
        play = [{"hosts": "localhost", "gather_facts": False, "connection": "local",
                 "roles": [{"role": "fedgpu.platform." + role}]}]
        if tasks_from:
            del play[0]["roles"]
            play[0]["tasks"] = [{"name": "Entry point " + tasks_from, "ansible.builtin.include_role": {
                "name": "fedgpu.platform." + role, "tasks_from": tasks_from}}]
        path = tmp_path / "play.yml"
        path.write_text(yaml.safe_dump(play))
        extra = dict({"ansible_python_interpreter": sys.executable}, **variables)
        env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
        return subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,",
                               "--check", "-e", json.dumps(extra), str(path)], capture_output=True, text=True,
                              env=env, cwd=ROOT, check=False)
    return run

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The contract every role of the collection keeps, checked over all of them.

- every variable in defaults/main.yml is an option of an argument spec entry
  point, and every option with a default in a spec has it in defaults/main.yml
  (an option without one is required, or computed when unset, as its
  description says);
- a literal default is the same in defaults/main.yml and in the spec; a
  computed one is described, not repeated as a literal;
- the role README names every option of every entry point;
- every template starts with ``{{ ansible_managed | comment }}``;
- every ``tasks_from`` that a playbook, role or scenario calls is a tasks
  file of the role with an argument spec entry of its own (so its inputs are
  validated), and every entry point of a spec is a tasks file.
"""

import glob
import os
import re

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
ROLES = sorted(os.path.basename(os.path.dirname(p)) for p in glob.glob(os.path.join(ROOT, "roles", "*", "tasks")))
# Files that cannot carry a comment: the format has none.
NO_COMMENT_FORMATS = (".json.j2",)


def load(path):
    with open(path) as handle:
        return yaml.safe_load(handle)


def specs(role):
    return load(os.path.join(ROOT, "roles", role, "meta", "argument_specs.yml"))["argument_specs"]


def defaults(role):
    path = os.path.join(ROOT, "roles", role, "defaults", "main.yml")
    return (load(path) or {}) if os.path.exists(path) else {}


def test_every_role_is_checked():
    assert len(ROLES) >= 16, ROLES


@pytest.mark.parametrize("role", ROLES)
def test_defaults_and_specs_agree(role):
    entries = specs(role)
    options = {}
    for spec in entries.values():
        options.update(spec.get("options", {}))
    values = defaults(role)
    assert sorted(set(values) - set(options)) == [], "in defaults/main.yml but in no argument spec"
    assert sorted(n for n in values if not n.startswith(role + "_")) == [], "defaults without the role's prefix"
    for name, spec in options.items():
        value = values.get(name)
        templated = "{{" in str(value)
        if "default" in spec:
            assert name in values, "%s: a default in the spec but none in defaults/main.yml" % name
            assert not templated, "%s: a computed default is described, not repeated as a literal" % name
            assert spec["default"] == value, "%s: spec default %r, defaults/main.yml %r" % (name, spec["default"], value)
        elif name in values and not templated:
            raise AssertionError("%s: defaults/main.yml has %r, the spec has no default" % (name, value))


@pytest.mark.parametrize("role", ROLES)
def test_readme_names_every_option(role):
    with open(os.path.join(ROOT, "roles", role, "README.md")) as handle:
        readme = handle.read()
    named = set(re.findall(r"`([a-z][a-z0-9_]+)`", readme))
    for entry, spec in specs(role).items():
        missing = sorted(set(spec.get("options", {})) - named)
        # Tables may group options as `a`, `b`, `c` in one row.
        assert missing == [], "%s entry point %s: options the README does not name" % (role, entry)


@pytest.mark.parametrize("role", ROLES)
def test_templates_start_with_ansible_managed(role):
    for path in glob.glob(os.path.join(ROOT, "roles", role, "templates", "**", "*.j2"), recursive=True):
        if path.endswith(NO_COMMENT_FORMATS):
            continue
        with open(path) as handle:
            first = handle.readline().strip()
            if first.startswith("#!"):
                # A script: the marker follows the interpreter line.
                first = handle.readline().strip()
        assert first.startswith("{{ ansible_managed | comment"), "%s does not start with ansible_managed" % path


def tasks_from_calls():
    """(role, entry point, file) for every tasks_from in playbooks, roles and scenarios."""
    calls = []
    for pattern in ("playbooks/**/*.yml", "roles/*/tasks/**/*.yml", "extensions/molecule/**/*.yml"):
        for path in glob.glob(os.path.join(ROOT, pattern), recursive=True):
            with open(path) as handle:
                text = handle.read()
            for match in re.finditer(r"name: *[\"']?([^\s\"']+)[\"']?\n(?:\s+[a-z_]+:.*\n)*?\s+tasks_from: *(\S+)", text):
                name, entry = match.groups()
                if "{{" in name:
                    continue
                calls.append((name.split(".")[-1], os.path.splitext(entry)[0], os.path.relpath(path, ROOT)))
    return calls


def test_tasks_from_calls_are_found():
    calls = tasks_from_calls()
    # The database playbook, the switchover and rejoin playbooks, the GPU facts and the accounts at least.
    assert len(calls) >= 20, calls


@pytest.mark.parametrize("role,entry,path", tasks_from_calls())
def test_every_tasks_from_has_an_argument_spec(role, entry, path):
    assert os.path.exists(os.path.join(ROOT, "roles", role, "tasks", entry + ".yml")), "%s calls a missing tasks file" % path
    assert entry in specs(role), "%s calls %s tasks_from %s, which has no argument spec entry" % (path, role, entry)


@pytest.mark.parametrize("role", ROLES)
def test_every_entry_point_is_a_tasks_file(role):
    for entry in specs(role):
        assert os.path.exists(os.path.join(ROOT, "roles", role, "tasks", entry + ".yml")), entry

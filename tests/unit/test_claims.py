# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the collection claims matches what it has.

- galaxy.yml declares exactly the collections the code uses, and
  requirements.yml lists the same;
- a role claims only the platforms that a Molecule scenario applying it runs on;
- every fedgpu.platform.<name> that the docs and READMEs mention exists.
"""

import glob
import os
import re

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CODE = ("roles/**/*.yml", "roles/**/*.j2", "playbooks/**/*.yml", "plugins/**/*.py", "extensions/**/*.yml",
        "inventories/**/*.yml")
DEFAULT_IMAGE = ("Debian", "trixie")


def load(path):
    with open(os.path.join(ROOT, path)) as handle:
        return yaml.safe_load(handle)


def read(path):
    with open(path) as handle:
        return handle.read()


def code_files():
    for pattern in CODE:
        yield from glob.glob(os.path.join(ROOT, pattern), recursive=True)


def used_collections():
    used = set()
    for path in code_files():
        for match in re.finditer(r"\b([a-z_]+)\.([a-z_]+)\.[a-z_]+", read(path)):
            used.add("%s.%s" % match.groups())
    return used


def test_galaxy_dependencies_are_the_collections_used():
    declared = set(load("galaxy.yml")["dependencies"])
    used = used_collections()
    assert sorted(declared - used) == [], "declared in galaxy.yml and never used"
    known = {"ansible.builtin", "fedgpu.platform"} | declared
    # Only collection prefixes that are real collections: names of the form ns.name.module in FQCN position.
    fqcn = set()
    for path in code_files():
        for match in re.finditer(r"^\s*-?\s*([a-z_]+\.[a-z_]+)\.[a-z_]+:\s*$|(?:name|module|src): *([a-z_]+\.[a-z_]+)\.[a-z_]+\s*$",
                                 read(path), re.M):
            fqcn.add(match.group(1) or match.group(2))
    assert sorted(fqcn - known) == [], "used and not declared in galaxy.yml"


def test_requirements_list_the_same_collections():
    listed = {c["name"] for c in load("requirements.yml")["collections"]}
    assert listed == set(load("galaxy.yml")["dependencies"])


def scenario_platforms():
    """{role: {(distribution, release)}} from every Molecule scenario."""
    tested = {}
    roles = [os.path.basename(p) for p in glob.glob(os.path.join(ROOT, "roles", "*"))]
    for path in glob.glob(os.path.join(ROOT, "extensions", "molecule", "*", "molecule.yml")):
        scenario = os.path.dirname(path)
        images = {DEFAULT_IMAGE}
        for platform in (yaml.safe_load(read(path)) or {}).get("platforms", []):
            image = platform.get("image")
            images.add(("Debian", image.rsplit(":", 1)[1]) if image else DEFAULT_IMAGE)
        text = "".join(read(p) for p in glob.glob(os.path.join(scenario, "*.yml")))
        # playbooks imported by path (.../site.yml) or by name (fedgpu.platform.site)
        imports = re.findall(r"import_playbook: *\S*?([a-z_]+\.yml)", text)
        imports += [name + ".yml" for name in re.findall(r"import_playbook: *fedgpu\.platform\.([a-z_]+)\s", text)]
        for playbook in imports:
            for imported in glob.glob(os.path.join(ROOT, "playbooks", playbook)):
                text += read(imported)
        for role in roles:
            if re.search(r"fedgpu\.platform\.%s\b|role: *%s\b" % (role, role), text):
                tested.setdefault(role, set()).update(images)
    return tested


@pytest.mark.parametrize("role", sorted(os.path.basename(p) for p in glob.glob(os.path.join(ROOT, "roles", "*"))))
def test_roles_claim_only_tested_platforms(role):
    claimed = set()
    for platform in load("roles/%s/meta/main.yml" % role)["galaxy_info"]["platforms"]:
        claimed.update((platform["name"], str(v)) for v in platform["versions"])
    tested = scenario_platforms().get(role, set())
    assert tested, "no Molecule scenario applies %s" % role
    assert sorted(claimed - tested) == [], "claimed in meta/main.yml, run by no scenario"


def collection_names():
    names = set()
    for kind in ("modules", "inventory", "filter", "lookup"):
        for path in glob.glob(os.path.join(ROOT, "plugins", kind, "*.py")):
            names.add(os.path.splitext(os.path.basename(path))[0])
    for path in glob.glob(os.path.join(ROOT, "plugins", "filter", "*.py")):
        names.update(re.findall(r"['\"]([a-z_][a-z0-9_]*)['\"]: *[a-z_][a-z0-9_]*,?", read(path)))
    names.update(os.path.basename(p) for p in glob.glob(os.path.join(ROOT, "roles", "*")))
    names.update(os.path.splitext(os.path.basename(p))[0] for p in glob.glob(os.path.join(ROOT, "playbooks", "*.yml")))
    routing = (load("meta/runtime.yml") or {}).get("plugin_routing", {})
    for plugins in routing.values():
        names.update(plugins)
    return names


def test_docs_name_only_what_exists():
    names = collection_names()
    wrong = []
    for path in glob.glob(os.path.join(ROOT, "**", "*.md"), recursive=True):
        if "/.cache/" in path or "/.venv/" in path or "/changelogs/" in path:
            continue
        for name in re.findall(r"fedgpu\.platform\.([a-z_][a-z0-9_]*)", read(path)):
            if name not in names:
                wrong.append("%s: fedgpu.platform.%s" % (os.path.relpath(path, ROOT), name))
    assert wrong == []

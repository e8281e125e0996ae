# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Render the nvidia_driver templates and expressions with Ansible's templar and check what they produce."""

import json
import os
import tomllib

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
DRIVER = os.path.join(ROOT, "roles", "nvidia_driver")
MIG = os.path.join(ROOT, "roles", "nvidia_mig")


def load(path):
    with open(path) as handle:
        return yaml.safe_load(handle)


def render(text, **variables):
    defaults = load(os.path.join(DRIVER, "defaults", "main.yml"))
    context = dict(defaults, ansible_managed="Ansible managed: do not edit")
    context.update(variables)
    # variables read from role files are trusted templates in Ansible; do the same here
    context = dict((k, trust_as_template(v) if isinstance(v, str) else v) for k, v in context.items())
    return Templar(loader=DataLoader(), variables=context).template(trust_as_template(text))


def runtime_fact(**variables):
    """The fact tasks/runtime.yml sets (entry point `runtime`), rendered as Ansible would."""
    task = load(os.path.join(DRIVER, "tasks", "runtime.yml"))[0]

    def walk(value):
        if isinstance(value, dict):
            return dict((k, walk(v)) for k, v in value.items())
        return render(value, **variables) if isinstance(value, str) else value
    return walk(task["ansible.builtin.set_fact"]["nvidia_driver_containerd_runtime"])


def containerd_dropin(**variables):
    variables.setdefault("nvidia_driver_containerd_runtime", runtime_fact(**variables))
    with open(os.path.join(DRIVER, "templates", "etc", "containerd", "conf.d", "99-nvidia.toml.j2")) as handle:
        return render(handle.read(), **variables)


@pytest.mark.parametrize("version,plugin", [(2, "io.containerd.grpc.v1.cri"), (3, "io.containerd.cri.v1.runtime")])
@pytest.mark.parametrize("default", [False, True])
def test_containerd_dropin_is_toml_with_nvidia_runtime(version, plugin, default):
    text = containerd_dropin(nvidia_driver_containerd_config_version=version, nvidia_driver_runtime_default=default)
    assert text.startswith("#\n# Ansible managed")
    config = tomllib.loads(text)
    assert config["version"] == version
    containerd = config["plugins"][plugin]["containerd"]
    runtime = containerd["runtimes"]["nvidia"]
    assert runtime["runtime_type"] == "io.containerd.runc.v2"
    assert runtime["options"]["BinaryName"] == "/usr/bin/nvidia-container-runtime"
    assert runtime["options"]["SystemdCgroup"] is True
    assert (containerd.get("default_runtime_name") == "nvidia") is default


def docker_task():
    tasks = load(os.path.join(DRIVER, "tasks", "configure.yml"))
    return [t for t in tasks if t["name"] == "Declare the nvidia runtime to Docker"][0]


@pytest.mark.parametrize("existing,default", [
    (None, False),
    ({"log-driver": "journald", "runtimes": {"crun": {"path": "/usr/bin/crun"}}}, False),
    ({"data-root": "/srv/docker"}, True),
])
def test_docker_daemon_json_merges_nvidia_runtime(existing, default):
    task = docker_task()
    variables = {"nvidia_driver_runtime_default": default}
    if existing is not None:
        import base64
        variables["__nvidia_driver_docker_current"] = {"content": base64.b64encode(json.dumps(existing).encode()).decode()}
    else:
        variables["__nvidia_driver_docker_current"] = {"failed": True, "msg": "file not found"}
    for name, expr in task["vars"].items():
        variables[name] = render(expr, **variables)
    text = render(task["ansible.builtin.copy"]["content"], **variables)
    config = json.loads(text)
    assert config["runtimes"]["nvidia"] == {"path": "/usr/bin/nvidia-container-runtime", "args": []}
    for key, value in (existing or {}).items():
        if key != "runtimes":
            assert config[key] == value, "existing setting %s lost" % key
    if existing and "runtimes" in existing:
        assert config["runtimes"]["crun"] == existing["runtimes"]["crun"]
    assert (config.get("default-runtime") == "nvidia") is default


@pytest.mark.parametrize("facts,expected", [
    ({"distribution": "Debian", "distribution_major_version": "12", "distribution_version": "12.7", "architecture": "x86_64"},
     "https://developer.download.nvidia.com/compute/cuda/repos/debian12/x86_64/"),
    ({"distribution": "Ubuntu", "distribution_major_version": "24", "distribution_version": "24.04", "architecture": "x86_64"},
     "https://developer.download.nvidia.com/compute/cuda/repos/ubuntu2404/x86_64/"),
    ({"distribution": "Ubuntu", "distribution_major_version": "22", "distribution_version": "22.04", "architecture": "aarch64"},
     "https://developer.download.nvidia.com/compute/cuda/repos/ubuntu2204/sbsa/"),
])
def test_cuda_repository_url_per_distribution(facts, expected):
    os_vars = load(os.path.join(DRIVER, "vars", "Debian.yml"))
    variables = {"ansible_facts": facts}
    for name in ("__nvidia_driver_repo_distro", "__nvidia_driver_repo_arch", "__nvidia_driver_repo_key_file",
                 "__nvidia_driver_cuda_repo_url", "__nvidia_driver_cuda_key_url"):
        variables[name] = render(os_vars[name], **variables)
    assert variables["__nvidia_driver_cuda_repo_url"] == expected
    assert variables["__nvidia_driver_cuda_key_url"] == expected + "3bf863cc.pub"


def test_cuda_repository_mirror_overrides():
    os_vars = load(os.path.join(DRIVER, "vars", "Debian.yml"))
    variables = {"nvidia_driver_repo_url": "https://mirror.example/cuda/", "__nvidia_driver_repo_key_file": "3bf863cc.pub",
                 "__nvidia_driver_repo_distro": "debian12", "__nvidia_driver_repo_arch": "x86_64"}
    variables["__nvidia_driver_cuda_repo_url"] = render(os_vars["__nvidia_driver_cuda_repo_url"], **variables)
    assert variables["__nvidia_driver_cuda_repo_url"] == "https://mirror.example/cuda/"
    assert render(os_vars["__nvidia_driver_cuda_key_url"], **variables) == "https://mirror.example/cuda/3bf863cc.pub"

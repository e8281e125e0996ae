# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The kubernetes role's templates rendered with Ansible's templar, its pinned files and its filters."""

import copy
import gzip
import hashlib
import os
import re
import sys
import tomllib

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import kubeadm_v1beta4  # noqa: E402  pylint: disable=wrong-import-position
import manifests  # noqa: E402  pylint: disable=wrong-import-position

from ansible_collections.fedgpu.platform.plugins.filter.kubernetes import (  # noqa: E402  pylint: disable=wrong-import-position
    kubernetes_gpu_pods, kubernetes_node)

ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
ROLE = os.path.join(ROOT, "roles", "kubernetes")
UPSTREAM = os.path.join(ROLE, "files", "upstream")
FIXTURES = os.path.join(ROOT, "tests", "unit", "fixtures", "k8s")


def load(path):
    with open(path) as handle:
        return yaml.safe_load(handle)


def render_file(relative, **variables):
    """Render a template of the role with its defaults and OS vars under the given variables."""
    context = dict(load(os.path.join(ROLE, "defaults", "main.yml")))
    context.update(load(os.path.join(ROLE, "vars", "main.yml")))
    context["ansible_managed"] = "Ansible managed: do not edit"
    context.update(variables)
    context = dict((k, trust_as_template(v) if isinstance(v, str) else v) for k, v in context.items())
    with open(os.path.join(ROLE, "templates", relative)) as handle:
        text = handle.read()
    return Templar(loader=DataLoader(), variables=context).template(trust_as_template(text))


def cluster(**extra):
    """Variables of a cluster: two control-plane nodes, two workers."""
    hosts = {"cp1": "10.0.0.11", "cp2": "10.0.0.12", "wn1": "10.0.0.21", "gpu1": "10.0.0.31"}
    variables = {
        "inventory_hostname": "cp1",
        "groups": {"k8s_control_plane": ["cp1", "cp2"], "k8s_workers": ["wn1", "gpu1"], "gpu_workers": ["gpu1"], "nfs": ["nfs1"]},
        "hostvars": dict((h, {"__kubernetes_node_ip": ip}) for h, ip in hosts.items()),
        "kubernetes_node_ip": hosts["cp1"],
        "__kubernetes_first_cp": "cp1",
        "__kubernetes_is_cp": True,
        "kubernetes_nfs_server": "nfs1",
    }
    variables.update(extra)
    return variables


# --- pinned files --------------------------------------------------------------

def sums(directory):
    with open(os.path.join(directory, "SHA256SUMS")) as handle:
        return dict(reversed(line.split()) for line in handle if line.strip())


@pytest.mark.parametrize("directory", [UPSTREAM, FIXTURES])
def test_pinned_files_are_the_listed_upstream_files(directory):
    listed = sums(directory)
    found = {}
    for base, _dirs, files in os.walk(directory):
        for name in files:
            if name in ("SHA256SUMS", "SOURCES.md"):
                continue
            path = os.path.join(base, name)
            opener = gzip.open if name.endswith(".gz") else open
            with opener(path, "rb") as handle:
                found[os.path.relpath(path, directory)[:-3] if name.endswith(".gz") else os.path.relpath(path, directory)] = \
                    hashlib.sha256(handle.read()).hexdigest()
    assert found == listed


def test_the_role_names_the_pinned_files():
    names = {"flannel": load(os.path.join(ROLE, "vars", "main.yml"))["__kubernetes_flannel_manifest"]}
    assert sorted(names.values()) == sorted(sums(UPSTREAM))


PINNED_MANIFESTS = [os.path.join(UPSTREAM, n) for n in sorted(sums(UPSTREAM))] + [
    os.path.join(FIXTURES, "nvidia-device-plugin", "v0.20.0", n)
    for n in ("nvidia-device-plugin.yml", "gpu-feature-discovery-daemonset-with-mig-mixed.yaml")]


@pytest.mark.parametrize("path", PINNED_MANIFESTS, ids=os.path.basename)
def test_pinned_manifests_are_valid_for_the_target_and_oldest_minor(path):
    documents = manifests.load(path + ".gz")
    assert documents
    assert [p for d in documents for p in manifests.problems(d)] == []


# --- kubeadm and kubelet -------------------------------------------------------

@pytest.mark.parametrize("version", ["1.35.0", "1.32.0"])
@pytest.mark.parametrize("schedulable", [False, True])
def test_init_configuration_is_kubeadm_v1beta4(version, schedulable):
    text = render_file("etc/kubernetes/fedgpu/kubeadm-init.yaml.j2",
                       **cluster(kubernetes_version=version, kubernetes_control_plane_schedulable=schedulable))
    assert text.startswith("#\n# Ansible managed")
    documents = list(yaml.safe_load_all(text))
    assert [d["kind"] for d in documents] == ["InitConfiguration", "ClusterConfiguration", "KubeletConfiguration"]
    for document in documents:
        assert kubeadm_v1beta4.check(document) == []
    init, clusterconf, kubelet = documents
    assert init["localAPIEndpoint"] == {"advertiseAddress": "10.0.0.11", "bindPort": 6443}
    assert init["nodeRegistration"]["kubeletExtraArgs"] == [{"name": "node-ip", "value": "10.0.0.11"}]
    assert ("taints" in init["nodeRegistration"]) is schedulable
    assert clusterconf["kubernetesVersion"] == "v" + version
    assert clusterconf["controlPlaneEndpoint"] == "10.0.0.11:6443"
    assert clusterconf["networking"] == {"podSubnet": "10.244.0.0/16", "serviceSubnet": "10.96.0.0/12", "dnsDomain": "cluster.local"}
    assert set(clusterconf["apiServer"]["certSANs"]) == {"cp1", "cp2", "10.0.0.11", "10.0.0.12"}
    assert kubelet["cgroupDriver"] == "systemd"
    assert kubelet["systemReserved"] == {"cpu": "500m", "memory": "1Gi"}


def test_init_configuration_takes_an_endpoint():
    text = render_file("etc/kubernetes/fedgpu/kubeadm-init.yaml.j2", **cluster(kubernetes_control_plane_endpoint="k8s.example:6443"))
    assert list(yaml.safe_load_all(text))[1]["controlPlaneEndpoint"] == "k8s.example:6443"


@pytest.mark.parametrize("is_cp", [False, True])
def test_join_configuration_is_kubeadm_v1beta4(is_cp):
    join = {"endpoint": "10.0.0.11:6443", "token": "abcdef.0123456789abcdef", "ca_hash": "sha256:" + "0" * 64,
            "certificate_key": "f" * 64}
    text = render_file("etc/kubernetes/fedgpu/kubeadm-join.yaml.j2",
                       **cluster(inventory_hostname="cp2" if is_cp else "gpu1", kubernetes_node_ip="10.0.0.12",
                                 __kubernetes_is_cp=is_cp, __kubernetes_join=join))
    document = yaml.safe_load(text)
    assert kubeadm_v1beta4.check(document) == []
    assert document["discovery"]["bootstrapToken"] == {"apiServerEndpoint": "10.0.0.11:6443", "token": join["token"],
                                                       "caCertHashes": [join["ca_hash"]]}
    assert ("controlPlane" in document) is is_cp
    if is_cp:
        assert document["controlPlane"]["certificateKey"] == join["certificate_key"]


def test_the_checker_catches_a_v1beta3_style_document():
    """The field lists are not a rubber stamp: map-style extraArgs (v1beta3) and a misspelt field fail."""
    document = yaml.safe_load(render_file("etc/kubernetes/fedgpu/kubeadm-join.yaml.j2", **cluster(
        inventory_hostname="wn1", __kubernetes_is_cp=False,
        __kubernetes_join={"endpoint": "a:1", "token": "t", "ca_hash": "h", "certificate_key": ""})))
    broken = copy.deepcopy(document)
    broken["nodeRegistration"]["kubeletExtraArgs"] = {"node-ip": "10.0.0.21"}
    broken["discovery"]["bootstrapToken"]["caCertHash"] = broken["discovery"]["bootstrapToken"].pop("caCertHashes")
    assert len(kubeadm_v1beta4.check(broken)) == 2


# --- containerd ----------------------------------------------------------------

NVIDIA = {"name": "nvidia", "default": False, "runtime_type": "io.containerd.runc.v2",
          "options": {"BinaryName": "/usr/bin/nvidia-container-runtime", "SystemdCgroup": True}}


@pytest.mark.parametrize("host,default", [("wn1", False), ("gpu1", False), ("gpu1", True)])
def test_containerd_configuration(host, default):
    nvidia = dict(NVIDIA, default=default)
    config = tomllib.loads(render_file("etc/containerd/config.toml.j2",
                                       **cluster(inventory_hostname=host, nvidia_driver_containerd_runtime=nvidia)))
    assert config["version"] == 2
    assert "imports" not in config, "containerd 1.7 would let an imported file replace the CRI section"
    cri = config["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["sandbox_image"] == "registry.k8s.io/pause:3.10.1"
    assert cri["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"] is True
    runtimes = cri["containerd"]["runtimes"]
    if host == "gpu1":
        assert runtimes["nvidia"] == {"runtime_type": "io.containerd.runc.v2", "options": NVIDIA["options"]}
        assert cri["containerd"]["default_runtime_name"] == ("nvidia" if default else "runc")
    else:
        assert set(runtimes) == {"runc"}
        assert cri["containerd"]["default_runtime_name"] == "runc"


# --- objects -------------------------------------------------------------------

def test_device_plugin_is_upstreams_with_the_documented_changes():
    rendered = list(yaml.safe_load_all(render_file("objects/20-gpus.yml.j2", **cluster())))
    assert [d["kind"] for d in rendered] == ["RuntimeClass", "DaemonSet"]
    assert [p for d in rendered for p in manifests.problems(d)] == []
    ours = rendered[1]
    upstream = manifests.load(os.path.join(FIXTURES, "nvidia-device-plugin", "v0.20.0", "nvidia-device-plugin.yml.gz"))[0]
    expected = copy.deepcopy(upstream)
    pod = expected["spec"]["template"]["spec"]
    pod["nodeSelector"] = {"nvidia.com/gpu.present": "true"}
    pod["containers"][0]["env"] = [{"name": "MIG_STRATEGY", "value": "mixed"}]
    assert ours == expected
    assert pod["containers"][0]["image"] == load(os.path.join(ROLE, "defaults", "main.yml"))["kubernetes_device_plugin_image"]


GROUPS = [{"name": "physics", "gid": 3100, "share": 0.6}, {"name": "cms", "gid": 3101, "parent": "physics", "share": 1.0},
          {"name": "ml-infn", "gid": 3200, "share": 0.4}]


@pytest.mark.usefixtures("collection_loader")  # the template calls fedgpu.platform.kubernetes_name
def test_storage_objects_are_valid_and_bound():
    documents = list(yaml.safe_load_all(render_file("objects/30-storage.yml.j2", **cluster(kubernetes_groups=GROUPS))))
    assert [p for d in documents for p in manifests.problems(d)] == []
    kinds = [d["kind"] for d in documents]
    assert kinds.count("Namespace") == 4 and kinds.count("PersistentVolume") == 9 and kinds.count("PersistentVolumeClaim") == 9
    storage_class = documents[0]
    assert storage_class["kind"] == "StorageClass"
    assert storage_class["parameters"] == {"server": "nfs1", "share": "/srv/nfs/dynamic"}
    volumes = dict((d["metadata"]["name"], d) for d in documents if d["kind"] == "PersistentVolume")
    claims = [d for d in documents if d["kind"] == "PersistentVolumeClaim"]
    for claim in claims:
        volume = volumes[claim["spec"]["volumeName"]]
        assert volume["spec"]["claimRef"] == {"namespace": claim["metadata"]["namespace"], "name": claim["metadata"]["name"]}
        assert volume["spec"]["accessModes"] == claim["spec"]["accessModes"]
    assert volumes["fedgpu-cms-collab"]["spec"]["nfs"] == {"server": "nfs1", "path": "/srv/nfs/collab/cms", "readOnly": False}
    assert volumes["fedgpu-cms-conda"]["spec"]["nfs"]["readOnly"] is True
    namespaces = dict((d["metadata"]["name"], d["metadata"].get("labels", {})) for d in documents if d["kind"] == "Namespace")
    assert namespaces["community-cms"] == {"fedgpu.platform/community": "cms"}
    assert "jupyterhub" in namespaces


# --- node description and GPU pods ----------------------------------------------

def gpu(name="NVIDIA A100-SXM4-80GB", profiles=()):
    return {"name": name, "model": "A100-80GB",
            "gpu_instances": [{"compute_instances": [{"profile": p}]} for p in profiles]}


def gfd_label_patterns():
    with open(os.path.join(FIXTURES, "nvidia-device-plugin", "v0.20.0", "expected-output-mig-mixed.txt")) as handle:
        return [re.compile(line.strip()) for line in handle if line.strip()]


def test_node_labels_are_feature_discoverys():
    node = kubernetes_node([gpu(profiles=["1g.10gb"] * 7), gpu(profiles=["3g.40gb", "3g.40gb"])], "mixed")
    assert node["resources"] == {"nvidia.com/mig-1g.10gb": 7, "nvidia.com/mig-3g.40gb": 2}
    assert node["mig_layout"] == "7x1g.10gb_2x3g.40gb"
    patterns = gfd_label_patterns()
    for key, value in node["labels"].items():
        if not key.startswith("nvidia.com/"):
            continue
        # the keys are feature discovery's; upstream's value patterns are loose ([true|false] is a character class,
        # the product's has no digits), so the values are checked below
        candidates = [p for p in patterns if p.pattern.split("=")[0].replace("\\", "") == key]
        if key == "nvidia.com/gpu.present":
            # not written by feature discovery: the label its DaemonSet selects nodes by (upstream's static manifest)
            daemonset = manifests.load(os.path.join(FIXTURES, "nvidia-device-plugin", "v0.20.0",
                                                    "gpu-feature-discovery-daemonset-with-mig-mixed.yaml.gz"))[0]
            assert key in str(daemonset["spec"]["template"]["spec"]["affinity"]) and value == "true"
            continue
        assert candidates, "%s is not a label of feature discovery" % key
    assert node["labels"] == {"nvidia.com/gpu.present": "true", "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB",
                              "nvidia.com/gpu.count": "2", "nvidia.com/mig.capable": "true", "nvidia.com/mig.strategy": "mixed",
                              "fedgpu.platform/mig-layout": "7x1g.10gb_2x3g.40gb"}
    assert node["labels"]["nvidia.com/gpu.product"] == "NVIDIA-A100-SXM4-80GB"
    assert node["labels"]["fedgpu.platform/mig-layout"] == "7x1g.10gb_2x3g.40gb"


def test_node_strategies():
    gpus = [gpu(profiles=["1g.10gb"] * 7), gpu()]
    assert kubernetes_node(gpus, "mixed")["resources"] == {"nvidia.com/mig-1g.10gb": 7, "nvidia.com/gpu": 1}
    assert kubernetes_node(gpus, "single")["resources"] == {"nvidia.com/gpu": 8}
    assert kubernetes_node(gpus, "none")["resources"] == {"nvidia.com/gpu": 2}
    assert kubernetes_node([], "mixed") == {"gpu_model": "", "resources": {}, "mig_layout": "none", "labels": {}}


def test_node_errors_name_the_input():
    with pytest.raises(AnsibleFilterError, match="kubernetes_mig_strategy"):
        kubernetes_node([], "all")
    with pytest.raises(AnsibleFilterError, match="1g.10gb\\+me"):
        kubernetes_node([gpu(profiles=["1g.10gb+me"])], "mixed")
    with pytest.raises(AnsibleFilterError, match="mixes GPU models"):
        kubernetes_node([gpu(), gpu(name="NVIDIA H100 80GB HBM3")])


def pod(name, resources=None, owner=None, phase="Running"):
    return {"metadata": {"name": name, "namespace": "x", "ownerReferences": [{"kind": owner}] if owner else []},
            "spec": {"containers": [{"name": "c", "resources": resources or {}}]}, "status": {"phase": phase}}


def test_gpu_pods_to_move_before_a_mig_change():
    pods = [pod("cpu", {"limits": {"cpu": "1"}}), pod("gpu", {"limits": {"nvidia.com/gpu": 1}}),
            pod("mig", {"requests": {"nvidia.com/mig-1g.10gb": 1}}),
            pod("plugin", {"limits": {"nvidia.com/gpu": 1}}, owner="DaemonSet"),
            pod("done", {"limits": {"nvidia.com/gpu": 1}}, phase="Succeeded")]
    assert [p["metadata"]["name"] for p in kubernetes_gpu_pods(pods)] == ["gpu", "mig"]


@pytest.mark.usefixtures("collection_loader")
def test_storage_and_kueue_name_a_community_alike():
    """A community name with '_' (valid in platform_groups, not in Kubernetes names): one namespace for both."""
    from ansible_collections.fedgpu.platform.plugins.module_utils import kueue  # pylint: disable=import-outside-toplevel
    groups = [{"name": "ml_infn", "gid": 3300, "share": 1.0}]
    documents = list(yaml.safe_load_all(render_file("objects/30-storage.yml.j2", **cluster(kubernetes_groups=groups))))
    assert [p for d in documents for p in manifests.problems(d)] == []
    storage = {d["metadata"]["name"] for d in documents if d["kind"] == "Namespace"} - {"jupyterhub"}
    inventory = [{"name": "wn1", "cpu": 8, "memory_mib": 16000}]
    queues = {o["metadata"]["namespace"] for o in kueue.objects(inventory, groups, notebooks={"fraction": 0.25})
              if o["kind"] == "LocalQueue"} - {"jupyterhub"}
    assert storage == queues == {"community-ml-infn"}

"""The z2jh values at work in the real KubeSpawner, offline (no cluster).

The hub's configuration is built as Zero to JupyterHub 4.4.0's
jupyterhub/files/hub/jupyterhub_config.py builds it (tag 4.4.0, commit
5c5f5df751588a68a7781ead01d0f62e88e2e72f): the KubeSpawner traits it sets
from ``singleuser.*``, the storage and extraFiles volumes, the culler, the
``hub.config`` pass-through, then every ``hub.extraConfig`` snippet executed
with ``c`` in scope and a minimal ``z2jh`` module (``get_config`` over the
merged values), fedgpu_hub.py imported from the text that ``hub.extraFiles``
ships. Spawners are made as kubespawner's own tests make them
(``KubeSpawner(config=..., user=MockUser(), hub=Hub(), _mock=True)``); pod
manifests are checked with kubernetes-validate's schemas of 1.35 and 1.32.
"""
import asyncio
import importlib.util
import os
import re
import sys
import types
from unittest.mock import Mock

import kubernetes_validate
import pytest
from jupyterhub.objects import Hub, Server
from kubernetes_asyncio import client as k8s_async
from tornado import web
from traitlets.config import Config

import kubespawner.spawner
from kubespawner import KubeSpawner

SPEC = importlib.util.spec_from_file_location("fedgpu_test_z2jh_values", os.path.join(os.path.dirname(os.path.abspath(__file__)), "test_z2jh.py"))
V = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(V)

WRAPPER = "/opt/fedgpu/bin/fedgpu-singleuser"
K8S_VERSIONS = ("1.35.0", "1.32.0")


# ------------------------------------------------ z2jh's jupyterhub_config.py


def z2jh_module(values):
    """The chart's z2jh.py helpers this configuration uses, over ``values`` instead of the mounted Secret."""
    module = types.ModuleType("z2jh")

    def get_config(key, default=None):
        value = values
        for level in key.split("."):
            if not isinstance(value, dict) or level not in value:
                return default
            value = value[level]
        return value

    module.get_config = get_config
    module.get_name = lambda name: name  # the chart's full names: not needed offline
    return module


def camel(s):
    return re.sub(r"_([a-z])", lambda m: m.group(1).upper(), s)


def hub_config(values, tmp_path):
    """A traitlets Config as the chart's jupyterhub_config.py makes it from the merged ``values``."""
    z2jh = z2jh_module(values)
    get_config = z2jh.get_config

    def set_if(parent, name, key):
        data = get_config(key)
        if data is not None:
            setattr(parent, name, data)

    c = Config()
    c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
    c.KubeSpawner.namespace = "jupyterhub"
    for trait, key in (
        ("pod_name_template", None), ("start_timeout", None), ("image_pull_policy", "image.pullPolicy"),
        ("events_enabled", "events"), ("extra_labels", None), ("extra_annotations", None), ("uid", None),
        ("fs_gid", None), ("service_account", "serviceAccountName"), ("storage_extra_labels", "storage.extraLabels"),
        ("node_selector", None), ("node_affinity_required", "extraNodeAffinity.required"),
        ("node_affinity_preferred", "extraNodeAffinity.preferred"), ("pod_affinity_required", "extraPodAffinity.required"),
        ("pod_affinity_preferred", "extraPodAffinity.preferred"), ("pod_anti_affinity_required", "extraPodAntiAffinity.required"),
        ("pod_anti_affinity_preferred", "extraPodAntiAffinity.preferred"), ("lifecycle_hooks", None), ("init_containers", None),
        ("extra_containers", None), ("mem_limit", "memory.limit"), ("mem_guarantee", "memory.guarantee"),
        ("cpu_limit", "cpu.limit"), ("cpu_guarantee", "cpu.guarantee"), ("extra_resource_limits", "extraResource.limits"),
        ("extra_resource_guarantees", "extraResource.guarantees"), ("environment", "extraEnv"), ("profile_list", None),
        ("extra_pod_config", None),
    ):
        set_if(c.KubeSpawner, trait, "singleuser." + (key or camel(trait)))
    image = get_config("singleuser.image.name")
    if image:
        tag = get_config("singleuser.image.tag")
        c.KubeSpawner.image = "%s:%s" % (image, tag) if tag else image
    c.KubeSpawner.allow_privilege_escalation = get_config("singleuser.allowPrivilegeEscalation")
    if get_config("scheduling.userScheduler.enabled"):
        c.KubeSpawner.scheduler_name = z2jh.get_name("user-scheduler")
    if get_config("scheduling.userPods.nodeAffinity.matchNodePurpose") == "prefer":
        c.KubeSpawner.node_affinity_preferred.append({"weight": 100, "preference": {
            "matchExpressions": [{"key": "hub.jupyter.org/node-purpose", "operator": "In", "values": ["user"]}]}})
    tolerations = get_config("scheduling.userPods.tolerations", []) + get_config("singleuser.extraTolerations", [])
    if tolerations:
        c.KubeSpawner.tolerations = tolerations
    assert get_config("singleuser.storage.type") == "none"  # dynamic/static storage: not emulated
    volumes, mounts = {}, {}
    extra_files = get_config("singleuser.extraFiles", {})
    if extra_files:
        items = [dict({"key": k, "path": k}, **({"mode": f["mode"]} if "mode" in f else {})) for k, f in extra_files.items()]
        volumes["files"] = {"name": "files", "secret": {"secretName": z2jh.get_name("singleuser"), "items": items}}
        for idx, (key, details) in enumerate(extra_files.items()):
            mounts["%d-files" % idx] = {"mountPath": details["mountPath"], "subPath": key, "name": "files"}
    for volume in get_config("singleuser.storage.extraVolumes", []):
        volumes[volume["name"]] = volume
    for idx, mount in enumerate(get_config("singleuser.storage.extraVolumeMounts", [])):
        mounts["%d-%s" % (idx, mount["name"])] = mount
    c.KubeSpawner.volumes = volumes
    c.KubeSpawner.volume_mounts = mounts
    c.JupyterHub.services = []
    c.JupyterHub.load_roles = []
    if get_config("cull.enabled", False):
        cmd = ["python3", "-m", "jupyterhub_idle_culler", "--url=http://localhost:8081/hub/api"]
        for option, key in (("timeout", "cull.timeout"), ("cull-every", "cull.every"), ("concurrency", "cull.concurrency")):
            if get_config(key):
                cmd.append("--%s=%s" % (option, get_config(key)))
        if not get_config("cull.adminUsers"):
            cmd.append("--cull-admin-users=false")
        c.JupyterHub.services.append({"name": "jupyterhub-idle-culler", "command": cmd})
        c.JupyterHub.load_roles.append({"name": "jupyterhub-idle-culler", "services": ["jupyterhub-idle-culler"],
                                        "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"]})
    for key, role in get_config("hub.loadRoles", {}).items():
        c.JupyterHub.load_roles.append(dict(role, name=role.get("name", key)))
    c.Spawner.cmd = get_config("singleuser.cmd")
    set_if(c.Spawner, "default_url", "singleuser.defaultUrl")
    if get_config("singleuser.cloudMetadata.blockWithIptables") is True:
        c.KubeSpawner.init_containers.append(k8s_async.V1Container(
            name="block-cloud-metadata",
            image="%s:%s" % (get_config("singleuser.networkTools.image.name"), get_config("singleuser.networkTools.image.tag")),
            command=["iptables", "--append", "OUTPUT", "--protocol", "tcp", "--destination",
                     get_config("singleuser.cloudMetadata.ip"), "--destination-port", "80", "--jump", "DROP"],
            security_context=k8s_async.V1SecurityContext(privileged=True, run_as_user=0,
                                                         capabilities=k8s_async.V1Capabilities(add=["NET_ADMIN"])),
            resources=get_config("singleuser.networkTools.resources")))
    for section, cfg in get_config("hub.config", {}).items():
        c[section].update(cfg)
    # hub.extraFiles, where the hub pod mounts them; then hub.extraConfig.
    files = tmp_path / "hub-files"
    module_dirs = set()
    for key, details in get_config("hub.extraFiles", {}).items():
        target = files / details["mountPath"].lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(details["stringData"])
        module_dirs.add(str(target.parent))
    saved_path, saved_modules = list(sys.path), {k: sys.modules.get(k) for k in ("z2jh", "fedgpu_hub")}
    sys.path[:0] = sorted(module_dirs)
    sys.modules["z2jh"] = z2jh
    sys.modules.pop("fedgpu_hub", None)
    try:
        for key, config_py in sorted(get_config("hub.extraConfig", {}).items()):
            exec(config_py, {"c": c, "get_config": get_config})
        hub_module = sys.modules["fedgpu_hub"]
    finally:
        sys.path[:] = saved_path
        for name, module in saved_modules.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
    assert hub_module.__file__.startswith(str(files))  # the shipped copy, not the repository's
    return c


# ------------------------------------------------------------ spawners


class MockUser(Mock):
    """As in kubespawner's tests, with the user's JupyterHub groups (set from the provider at login)."""
    name = "fake"
    server = Server()

    @property
    def escaped_name(self):
        return self.name

    @property
    def url(self):
        return self.server.url


def make_user(name, groups):
    user = MockUser()
    user.name = name
    user.id = 7
    user.groups = [types.SimpleNamespace(name=g) for g in groups]
    return user


GROUPS_OF = {"alice": ["cms"], "bob": ["ml-infn", "cms"], "carol": ["guests"], "dave": [], "mallory": ["cms"]}


@pytest.fixture(scope="module", autouse=True)
def no_cluster():
    """KubeSpawner loads a kube config when made; there is no cluster here, and nothing calls its API."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(kubespawner.spawner, "load_config", lambda **kwargs: None)
        yield


def run(coro):
    return asyncio.run(coro)


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    return hub_config(V.merged(V.z2jh_values(V.settings())), tmp_path_factory.mktemp("hub"))


@pytest.fixture(scope="module")
def config_no_gpu(tmp_path_factory):
    return hub_config(V.merged(V.z2jh_values(V.settings(use_gpu=False))), tmp_path_factory.mktemp("hub"))


def spawner(config, name, options=None):
    """A spawner (made in the running event loop, as in the hub) for ``name`` with ``options``."""
    sp = KubeSpawner(config=config, user=make_user(name, GROUPS_OF[name]), hub=Hub(), _mock=True)
    sp.user_options = dict(options or {})
    return sp


def in_loop(config, name, options, action):
    """Run ``action(spawner)`` (a coroutine function) in a fresh event loop."""
    async def main():
        return await action(spawner(config, name, options))
    return run(main())


def offered(config, name):
    async def action(sp):
        return {p["slug"]: list(p["profile_options"]["environment"]["choices"]) for p in sp.profile_list(sp)}
    return in_loop(config, name, None, action)


# ------------------------------------------------------------ the hub


def test_authenticator_and_culler(config):
    auth = config.GenericOAuthenticator
    assert config.JupyterHub.authenticator_class == "generic-oauth"
    assert auth.client_secret == V.SECRET and auth.allowed_groups == ["physics", "cms", "ml-infn", "guests"]
    # The groups claim read as one key, leading slash stripped (fedgpu_hub.groups_from_auth_state).
    assert auth.auth_state_groups_key({"oauth_user": {"wlcg.groups": ["/cms", "/physics"]}}) == ["cms", "physics"]
    culler = config.JupyterHub.services[0]
    assert culler["name"] == "jupyterhub-idle-culler"
    assert "--timeout=1800" in culler["command"] and "--cull-every=120" in culler["command"]


@pytest.mark.parametrize("user, expected", [
    ("alice", {"cpu": ["base", "cms-sw"], "mig-small": ["base", "cms-sw"]}),
    ("bob", {"cpu": ["base", "cms-sw", "torch"], "mig-small": ["base", "cms-sw", "torch"],
             "a100": ["base", "cms-sw", "torch"], "h100-3g": ["base", "cms-sw", "torch"]}),
    ("carol", {"cpu": ["base"]}),
    ("dave", {"cpu": ["base"]}),
])
def test_profiles_offered_by_group(config, user, expected):
    assert offered(config, user) == expected


def test_no_gpu_hides_gpu_flavours(config_no_gpu):
    assert offered(config_no_gpu, "bob") == {"cpu": ["base", "cms-sw", "torch"]}


def test_spawn_form_shows_only_what_the_groups_may_pick(config):
    async def action(sp):
        form = await sp._render_options_form_dynamically(sp)
        assert "mig-small" in form and "CMS software" in form
        assert "a100" not in form and "torch" not in form
        assert sp.options_from_form({"profile": ["mig-small"], "profile-option-mig-small--environment": ["cms-sw"]}) == {
            "profile": "mig-small", "environment": "cms-sw"}
    in_loop(config, "alice", None, action)


# ------------------------------------------------------ choices, refused


def test_load_user_options_allowed(config):
    async def action(sp):
        await sp.load_user_options()
        assert sp.extra_resource_limits == {"nvidia.com/mig-1g.10gb": 1}
        assert sp.image == "registry.example.org:5000/fedgpu/base:1.0"
        assert sp.cmd == [WRAPPER, "/opt/conda-envs/cms-sw/bin/jupyterhub-singleuser"]
    in_loop(config, "alice", {"profile": "mig-small", "environment": "cms-sw"}, action)


@pytest.mark.parametrize("options, error", [
    ({"profile": "a100"}, "No such profile: a100"),        # another group's flavour
    ({"profile": "cpu", "environment": "torch"}, "torch"),  # another group's environment
    ({"profile": "cpu", "environment--unlisted-choice": "evil/image"}, "unlisted_choice"),
])
def test_load_user_options_refused(config, options, error):
    async def action(sp):
        with pytest.raises((ValueError, KeyError), match=error):
            await sp.load_user_options()
    in_loop(config, "alice", options, action)


@pytest.mark.parametrize("options, message", [
    ({"profile": "a100", "environment": "base"}, "The flavour 'a100' is not open to your groups (cms)."),
    ({"profile": "cpu", "environment": "torch"}, "The environment 'torch' is not open to your groups (cms)."),
    ({"profile": "nope"}, "There is no flavour named 'nope'."),
])
def test_pre_spawn_hook_refuses_with_the_vm_message(config, options, message):
    async def action(sp):
        with pytest.raises(web.HTTPError) as info:
            sp.pre_spawn_hook(sp)
        assert info.value.status_code == 403 and info.value.jupyterhub_message == message
    in_loop(config, "alice", options, action)


def test_pre_spawn_hook_refuses_a_user_without_uid(config):
    async def action(sp):
        with pytest.raises(web.HTTPError, match="no uid on this platform"):
            sp.pre_spawn_hook(sp)
    in_loop(config, "mallory", {"profile": "cpu"}, action)


def test_a_spawn_keeps_nothing_of_the_previous_choice(config):
    async def action(sp):
        sp.pre_spawn_hook(sp)
        await sp.load_user_options()
        assert sp.extra_resource_limits == {"nvidia.com/gpu": 1} and sp.node_selector
        sp.user_options = {"profile": "cpu", "environment": "base"}
        sp.pre_spawn_hook(sp)
        await sp.load_user_options()
        assert sp.extra_resource_limits == {} and sp.node_selector == {}
        assert sp.environment["NVIDIA_VISIBLE_DEVICES"] == "void" and "PATH" not in sp.environment
        assert all(t["key"] != "nvidia.com/gpu" for t in sp.tolerations)
    in_loop(config, "bob", {"profile": "a100", "environment": "torch"}, action)


# ------------------------------------------------------------ pod manifests


CASES = [
    # user, flavour, environment, extra resources, node selector
    ("alice", "cpu", "base", {}, None),
    ("alice", "mig-small", "cms-sw", {"nvidia.com/mig-1g.10gb": "1"}, None),
    ("bob", "a100", "torch", {"nvidia.com/gpu": "1"}, "NVIDIA-A100-SXM4-80GB"),
    ("bob", "h100-3g", "base", {"nvidia.com/mig-3g.40gb": "1"}, None),
    ("carol", "cpu", "base", {}, None),
]


async def _manifest(sp):
    sp.pre_spawn_hook(sp)
    await sp.load_user_options()
    pod = await sp.get_pod_manifest()
    # KubeSpawner 7 builds kubernetes_asyncio models: serialised by that client's ApiClient, as when it
    # creates the pod (kubernetes' own ApiClient would turn these foreign models into snake_case dicts).
    async with k8s_async.ApiClient() as api:
        return api.sanitize_for_serialization(pod)


@pytest.mark.parametrize("user, flavour, env, gpu, product", CASES, ids=["%s-%s-%s" % c[:3] for c in CASES])
def test_pod_manifest(config, user, flavour, env, gpu, product):
    pod = in_loop(config, user, {"profile": flavour, "environment": env}, _manifest)
    for version in K8S_VERSIONS:
        kubernetes_validate.validate(pod, version, strict=True)

    spec = pod["spec"]
    container = next(c for c in spec["containers"] if c["name"] == "notebook")
    account = V.z2jh_values(V.settings())["custom"]["fedgpu"]["accounts"][user]
    # Runs as the user, with the communities' gids; no fsGroup on NFS.
    assert container["securityContext"]["runAsUser"] == account["uid"]
    assert container["securityContext"]["runAsGroup"] == account["gid"]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert spec.get("securityContext", {}).get("supplementalGroups", []) == account["gids"]
    assert "fsGroup" not in spec.get("securityContext", {})
    # Kueue.
    assert pod["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "notebooks"
    assert pod["metadata"]["labels"]["kueue.x-k8s.io/priority-class"] == "interactive"
    # Resources of the flavour.
    want = next(f for f in V.FLAVOURS if f["name"] == flavour)
    limits, requests = container["resources"]["limits"], container["resources"]["requests"]
    assert float(limits["cpu"]) == want["cpu_limit"]
    assert float(requests["cpu"]) == float(want.get("cpu_guarantee", want["cpu_limit"]))
    assert int(limits["memory"]) == int(want["mem_limit"][:-1]) * 1024 ** 3 == int(requests["memory"])
    assert {k: str(v) for k, v in limits.items() if k.startswith("nvidia.com/")} == gpu
    assert {k: str(v) for k, v in requests.items() if k.startswith("nvidia.com/")} == gpu
    assert spec.get("nodeSelector", {}).get("nvidia.com/gpu.product") == product
    gpu_toleration = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    assert (gpu_toleration in spec["tolerations"]) == bool(gpu)
    # Volumes: the NFS areas at the VMs' paths, the start wrapper from the chart's Secret.
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["fedgpu-private"]["nfs"] == {"server": "10.0.0.10", "path": "/srv/nfs/private"}
    assert volumes["fedgpu-software"]["nfs"] == {"server": "10.0.0.10", "path": "/srv/nfs/conda", "readOnly": True}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/nfs/private/" + user]["subPath"] == user
    assert mounts["/nfs/shared"]["name"] == "fedgpu-shared" and mounts["/nfs/collab"]["name"] == "fedgpu-collab"
    assert mounts["/opt/conda-envs"]["readOnly"] is True
    assert mounts[WRAPPER]["subPath"] == "fedgpu-singleuser"
    assert container["workingDir"] == "/nfs/private/" + user
    # The environment: its image and its jupyterhub-singleuser behind the wrapper; the links as on the VM.
    env_item = next(e for e in V.ENVIRONMENTS if e["name"] == env)
    exe = env_item["path"].rstrip("/") + "/bin/jupyterhub-singleuser" if "path" in env_item else "jupyterhub-singleuser"
    assert container["image"] == env_item.get("image", "registry.example.org:5000/fedgpu/base:1.0")
    assert container["args"][:2] == [WRAPPER, exe]  # KubeSpawner passes cmd as args: the image's entrypoint stays
    variables = {e["name"]: e.get("value") for e in container["env"]}
    assert variables["HOME"] == "/nfs/private/" + user
    assert variables["FEDGPU_ENVIRONMENT"] == env
    links = ["shared=/nfs/shared/" + user] + ["collab-%s=/nfs/collab/%s" % (g, g) for g in sorted(GROUPS_OF[user])]
    assert variables["FEDGPU_LINKS"] == ";".join(links)
    if gpu:
        assert "NVIDIA_VISIBLE_DEVICES" not in variables and "CUDA_VISIBLE_DEVICES" not in variables
    else:
        assert variables["NVIDIA_VISIBLE_DEVICES"] == "void" and variables["CUDA_VISIBLE_DEVICES"] == ""
    if "path" in env_item:
        assert variables["PATH"].startswith(env_item["path"].rstrip("/") + "/bin:")
    else:
        assert "PATH" not in variables


def test_a_bad_manifest_is_caught():
    """The validation is not vacuous: a uid that is not a number fails with both schemas."""
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"},
           "spec": {"containers": [{"name": "c", "image": "i", "securityContext": {"runAsUser": "alice"}}]}}
    for version in K8S_VERSIONS:
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(pod, version, strict=True)

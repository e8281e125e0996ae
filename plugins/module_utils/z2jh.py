# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helm values of the Zero to JupyterHub chart (4.4.0) from the jupyterhub role's variables.

Pure data in, pure data out: the filter fedgpu.platform.z2jh_values wraps
``values()``. Each error names the role variable (``jupyterhub_<key>``) it is
about. The hub-side decisions (what a user's groups may pick, the re-check
at spawn time, the home links) stay in roles/jupyterhub/files/fedgpu_hub.py,
which the values ship into the hub pod (``hub.extraFiles``) and load
(``hub.extraConfig``); this module only lays out data for it.
"""

from __future__ import annotations

import copy
import posixpath
import re

from ansible_collections.fedgpu.platform.plugins.module_utils import mig as miglib
from ansible_collections.fedgpu.platform.plugins.module_utils.k8s_names import DNS_LABEL, LABEL_VALUE
from ansible_collections.fedgpu.platform.plugins.module_utils.k8s_names import mig_resource as k8s_mig_resource

CHART_VERSION = "4.4.0"
# Where the hub pod finds fedgpu_hub.py, and user pods the start wrapper.
HUB_MODULE_DIR = "/usr/local/etc/jupyterhub/fedgpu"
WRAPPER_PATH = "/opt/fedgpu/bin/fedgpu-singleuser"
GPU_KINDS = ("none", "full", "mig")
# The chart's default scheduling.userPods.tolerations, set again explicitly so
# that a GPU flavour's list (which replaces it) can start from it.
CHART_USER_TOLERATIONS = [
    {"key": "hub.jupyter.org/dedicated", "operator": "Equal", "value": "user", "effect": "NoSchedule"},
    {"key": "hub.jupyter.org_dedicated", "operator": "Equal", "value": "user", "effect": "NoSchedule"},
]

DEFAULTS = {
    "oidc_scopes": ["openid", "email", "profile", "wlcg", "offline_access", "address", "wlcg.groups"],
    "oidc_username_claim": "preferred_username",
    "oidc_groups_claim": "wlcg.groups",
    "oidc_authorize_url": "",
    "oidc_token_url": "",
    "oidc_userdata_url": "",
    "admin_groups": [],
    "users": [],
    "groups": [],
    "home_root": "/nfs/private",
    "shared_root": "/nfs/shared",
    "collab_root": "/nfs/collab",
    "collab_link_prefix": "collab-",
    "flavours": [{"name": "cpu-small", "display_name": "CPU: 1 core, 2 GB", "cpu_limit": 1, "mem_limit": "2G", "gpu": "none", "groups": []}],
    "use_gpu": True,
    "idle_timeout": 3600,
    "idle_cull_every": 300,
    "start_timeout": 120,
    "db_url": "",
    "api_services": [],
    "extra_config": "",
    "k8s_default_image": "quay.io/jupyterhub/k8s-singleuser-sample:" + CHART_VERSION,
    "k8s_nfs_exports": {"private": "/srv/nfs/private", "shared": "/srv/nfs/shared",
                        "collab": "/srv/nfs/collab", "software": "/srv/nfs/conda"},
    "k8s_software_root": "/opt/conda-envs",
    "k8s_kueue_queue": "notebooks",
    "k8s_priority_class": "interactive",
    "k8s_storage_class": "",
    "k8s_hub_image": "",
    "k8s_default_gid": 100,
    "k8s_gpu_tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
}

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_POSIX_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_MEM = re.compile(r"^[0-9]+[KMGT]?$")
_HTTPS = re.compile(r"^https://[^/\s?#]+(/[^\s?#]*)?$")


class Z2jhError(ValueError):
    """A setting that cannot make valid values; the text names the role variable."""


def _fail(key, text):
    raise Z2jhError("jupyterhub_%s: %s" % (key, text))


def _list(settings, key):
    value = settings[key]
    if not isinstance(value, (list, tuple)):
        _fail(key, "must be a list, got %r" % (value,))
    return list(value)


def _str(settings, key, required=False):
    value = settings.get(key)
    value = "" if value is None else str(value).strip()
    if required and not value:
        _fail(key, "must be set")
    return value


def _int(settings, key, minimum):
    try:
        value = int(settings[key])
    except (TypeError, ValueError):
        value = None
    if value is None or value < minimum:
        _fail(key, "must be a whole number of %d or more, got %r" % (minimum, settings[key]))
    return value


def _abs(key, path, what):
    path = str(path or "")
    if not path.startswith("/") or ".." in path.split("/"):
        _fail(key, "%s must be an absolute path, got %r" % (what, path))
    return posixpath.normpath(path)


def split_image(ref, key):
    """'registry:5000/name:tag' -> ('registry:5000/name', 'tag'); a digest stays in the name."""
    ref = str(ref or "").strip()
    if not ref or any(c.isspace() for c in ref):
        _fail(key, "an image reference is needed (name:tag), got %r" % (ref,))
    if "@" in ref:
        return ref, ""
    name, sep, tag = ref.rpartition(":")
    if sep and "/" not in tag:
        return name, tag
    return ref, ""


# ------------------------------------------------------------ people


def _groups(settings):
    gids = {}
    for item in _list(settings, "groups"):
        if not isinstance(item, dict) or not item.get("name"):
            _fail("groups", "every community needs a name, got %r" % (item,))
        gid = item.get("gid")
        if gid is not None:
            try:
                gid = int(gid)
            except (TypeError, ValueError):
                _fail("groups", "community '%s' has a gid that is not a number: %r" % (item["name"], gid))
        gids[str(item["name"])] = gid
    return gids


def accounts(settings, gids):
    """{user: {uid, gid, gids}}: the pod runs as the user's uid, primary group the gid of the first
    community that has one (else k8s_default_gid), every community gid as a supplemental group."""
    out = {}
    for user in _list(settings, "users"):
        name = str((user or {}).get("name", "")) if isinstance(user, dict) else ""
        if not _POSIX_USER.match(name):
            _fail("users", "user %r needs a POSIX name (lower case, digits, _ and -)" % (name or user,))
        try:
            uid = int(user.get("uid"))
        except (TypeError, ValueError):
            uid = -1
        if uid < 1000:
            _fail("users", "user '%s' needs a uid of 1000 or more (the owner of its NFS areas), got %r" % (name, user.get("uid")))
        groups = [str(g) for g in user.get("groups") or []]
        unknown = [g for g in groups if g not in gids]
        if unknown:
            _fail("users", "user '%s' is in unknown communities %s (not in jupyterhub_groups)" % (name, unknown))
        own = []
        for group in groups:
            if gids[group] is not None and gids[group] not in own:
                own.append(gids[group])
        out[name] = {"uid": uid, "gid": own[0] if own else settings["k8s_default_gid"], "gids": own}
    return out


def _known_groups(settings, key, known):
    groups = [str(g) for g in _list(settings, key)]
    bad = [g for g in groups if g not in known or g.startswith("/")]
    if bad:
        _fail(key, "unknown communities %s (known, without the provider's leading slash: %s)" % (bad, ", ".join(sorted(known)) or "none"))
    return groups


# ------------------------------------------------ environments, flavours


def _items(settings, key, known):
    items = _list(settings, key)
    if not items:
        _fail(key, "at least one is needed")
    seen = set()
    out = []
    for item in items:
        name = str(item.get("name", "")) if isinstance(item, dict) else ""
        if not _NAME.match(name) or name in seen:
            _fail(key, "'%s' needs a unique name (letters, digits, . _ -)" % (name or item,))
        seen.add(name)
        bad = [g for g in item.get("groups") or [] if g not in known]
        if bad:
            _fail(key, "'%s' is for unknown communities %s" % (name, bad))
        item = dict(item, name=name, groups=[str(g) for g in item.get("groups") or []])
        out.append(item)
    return out


def environment_choice(env, settings):
    """A KubeSpawner profile option choice: an image of its own, or the default image running the
    environment's jupyterhub-singleuser from the software area (read-only NFS)."""
    override = {"cmd": [WRAPPER_PATH, "jupyterhub-singleuser"]}
    if env.get("image"):
        override["image"] = str(env["image"]).strip()
    else:
        override["image"] = settings["k8s_default_image"]
        override["cmd"] = [WRAPPER_PATH, env["path"].rstrip("/") + "/bin/jupyterhub-singleuser"]
    return {"display_name": env.get("display_name") or env["name"], "kubespawner_override": override}


def _environments(settings, known):
    envs = _items(settings, "environments", known)
    root = settings["k8s_software_root"]
    for env in envs:
        if env.get("image"):
            split_image(env["image"], "environments")
            continue
        path = env.get("path") or ""
        if not str(path).startswith("/"):
            _fail("environments", "'%s' needs an image or an absolute path (a conda environment)" % env["name"])
        path = posixpath.normpath(str(path))
        if not path.startswith(root + "/"):
            _fail("environments", "'%s' has only a path (%s): on Kubernetes it must lie under jupyterhub_k8s_software_root (%s), "
                  "the software area mounted from NFS, or the environment needs an image" % (env["name"], path, root))
        env["path"] = path
    return envs


def mig_resource(profile, flavour_name):
    known = {p.name for key in miglib.model_keys() for p in miglib.model_profiles(key)}
    if profile not in known:
        _fail("flavours", "flavour '%s' asks for the MIG profile '%s', which no known GPU offers; known: %s"
              % (flavour_name, profile, ", ".join(sorted(known))))
    try:
        return k8s_mig_resource(profile)
    except ValueError as exc:
        _fail("flavours", "flavour '%s': %s" % (flavour_name, exc))


def _quantity(flavour, key):
    value = flavour.get(key)
    if value in (None, "", 0, "0"):
        return None
    return value


def _flavours(settings, known):
    flavours = _items(settings, "flavours", known)
    for flavour in flavours:
        name = flavour["name"]
        gpu = str(flavour.get("gpu", "none"))
        if gpu not in GPU_KINDS:
            _fail("flavours", "'%s' has gpu '%s'; one of %s" % (name, gpu, ", ".join(GPU_KINDS)))
        flavour["gpu"] = gpu
        for key in ("mem_limit", "mem_guarantee"):
            if _quantity(flavour, key) is not None and not _MEM.match(str(flavour[key])):
                _fail("flavours", "'%s' has %s %r; write it like 512M or 4G" % (name, key, flavour[key]))
        for key in ("cpu_limit", "cpu_guarantee"):
            try:
                if float(flavour.get(key) or 0) < 0:
                    raise ValueError
            except (TypeError, ValueError):
                _fail("flavours", "'%s' has %s %r; a number of cores, 0 or more" % (name, key, flavour.get(key)))
        if gpu == "mig":
            flavour["resource"] = mig_resource(str(flavour.get("mig_profile", "")), name)
        elif gpu == "full":
            flavour["resource"] = "nvidia.com/gpu"
        model = str(flavour.get("model") or "").strip().replace(" ", "-")
        if model and (gpu == "none" or len(model) > 63 or not LABEL_VALUE.match(model)):
            _fail("flavours", "'%s' has model %r: a GPU flavour's model is the node label nvidia.com/gpu.product "
                  "(e.g. NVIDIA-A100-SXM4-80GB)" % (name, flavour.get("model")))
        flavour["model"] = model
    return flavours


def flavour_profile(flavour, settings):
    """A KubeSpawner profile: limits and guarantees (guarantee defaults to the limit), the GPU or MIG
    resource, the GPU model as a node selector and the GPU tolerations."""
    cpu = _quantity(flavour, "cpu_limit")
    mem = _quantity(flavour, "mem_limit")
    override = {
        "cpu_limit": float(cpu) if cpu is not None else None,
        "cpu_guarantee": float(_quantity(flavour, "cpu_guarantee") or cpu) if (cpu or _quantity(flavour, "cpu_guarantee")) else None,
        "mem_limit": str(mem) if mem is not None else None,
        "mem_guarantee": str(_quantity(flavour, "mem_guarantee") or mem) if (mem or _quantity(flavour, "mem_guarantee")) else None,
    }
    parts = []
    if cpu is not None:
        parts.append("%g cores" % float(cpu))
    if mem is not None:
        parts.append("%s memory" % mem)
    if flavour.get("resource"):
        override["extra_resource_limits"] = {flavour["resource"]: 1}
        override["extra_resource_guarantees"] = {flavour["resource"]: 1}
        override["tolerations"] = CHART_USER_TOLERATIONS + list(settings["k8s_gpu_tolerations"])
        parts.append("1 %s" % ("GPU" if flavour["gpu"] == "full" else "MIG %s slice" % flavour["mig_profile"]))
        if flavour["model"]:
            override["node_selector"] = {"nvidia.com/gpu.product": flavour["model"]}
            parts.append(flavour["model"])
    return {"display_name": flavour.get("display_name") or flavour["name"], "slug": flavour["name"],
            "description": ", ".join(parts), "kubespawner_override": override}


# ------------------------------------------------------------ the rest


def _oidc(settings):
    issuer = _str(settings, "oidc_issuer", True)
    if not _HTTPS.match(issuer):
        _fail("oidc_issuer", "'%s' must be the provider's https:// URL" % issuer)
    _str(settings, "oidc_client_id", True)
    if len(_str(settings, "oidc_client_secret")) < 8:
        _fail("oidc_client_secret", "missing or shorter than 8 characters")
    urls = {k: _str(settings, "oidc_%s_url" % k) for k in ("authorize", "token", "userdata")}
    if not all(_HTTPS.match(u) for u in urls.values()):
        raise Z2jhError("jupyterhub_oidc_authorize_url, jupyterhub_oidc_token_url, jupyterhub_oidc_userdata_url: all three "
                        "https:// URLs are needed on Kubernetes (the role reads them from the issuer's discovery document)")
    return urls


def _nfs(settings):
    server = _str(settings, "k8s_nfs_server", True)
    exports = settings["k8s_nfs_exports"]
    if not isinstance(exports, dict):
        _fail("k8s_nfs_exports", "must be a mapping {private, shared, collab, software}")
    exports = dict(DEFAULTS["k8s_nfs_exports"], **exports)
    return server, {k: _abs("k8s_nfs_exports", v, "the %s export" % k) for k, v in exports.items()}


def _labels(settings):
    labels = {}
    for key, label in (("k8s_kueue_queue", "kueue.x-k8s.io/queue-name"), ("k8s_priority_class", "kueue.x-k8s.io/priority-class")):
        value = _str(settings, key)
        if value and (len(value) > 63 or not DNS_LABEL.match(value)):
            _fail(key, "%r is not a Kubernetes object name (lower case, digits, -)" % value)
        if value:
            labels[label] = value
    return labels


def _volumes(settings, server, exports, any_path):
    home = posixpath.join(settings["home_root"], "{unescaped_username}")
    volumes = [{"name": "fedgpu-" + area, "nfs": {"server": server, "path": exports[area]}} for area in ("private", "shared", "collab")]
    mounts = [
        # The same paths as on the VMs, so the links in the home work on both.
        {"name": "fedgpu-private", "mountPath": home, "subPath": "{unescaped_username}"},
        {"name": "fedgpu-shared", "mountPath": settings["shared_root"]},
        {"name": "fedgpu-collab", "mountPath": settings["collab_root"]},
    ]
    if any_path:
        volumes.append({"name": "fedgpu-software", "nfs": {"server": server, "path": exports["software"], "readOnly": True}})
        mounts.append({"name": "fedgpu-software", "mountPath": settings["k8s_software_root"], "readOnly": True})
    return home, volumes, mounts


def _extra_config():
    return "\n".join([
        "# fedgpu.platform: environments and flavours by group, re-checked at spawn, the pod as the user's uid/gids.",
        "# The logic is the VM hub's (roles/jupyterhub/files/fedgpu_hub.py, shipped by hub.extraFiles).",
        "import sys",
        "",
        "sys.path.insert(0, %r)" % HUB_MODULE_DIR,
        "import fedgpu_hub  # noqa: E402",
        "from z2jh import get_config  # noqa: E402",
        "",
        "_fedgpu = fedgpu_hub.make_kubespawner_hooks(get_config('custom.fedgpu'))",
        "c.GenericOAuthenticator.auth_state_groups_key = _fedgpu['auth_state_groups_key']",
        "for _trait in ('profile_list', 'pre_spawn_hook', 'uid', 'gid', 'supplemental_gids'):",
        "    setattr(c.KubeSpawner, _trait, _fedgpu[_trait])",
        "",
    ])


def normalise(settings):
    if not isinstance(settings, dict):
        raise Z2jhError("z2jh_values: the input must be a mapping of the jupyterhub role's variables (without jupyterhub_)")
    out = copy.deepcopy(DEFAULTS)
    out.update({k: copy.deepcopy(v) for k, v in settings.items() if v is not None})
    for key in ("home_root", "shared_root", "collab_root", "k8s_software_root"):
        out[key] = _abs(key, out[key], "the path")
    if not isinstance(out["k8s_gpu_tolerations"], list):
        _fail("k8s_gpu_tolerations", "must be a list of tolerations")
    out["k8s_default_gid"] = _int(out, "k8s_default_gid", 1)
    return out


def values(settings, hub_module_source, singleuser_wrapper_source):
    """The chart's values (a dict): merge it over the chart's defaults, as Helm does."""
    s = normalise(settings)
    if "def make_kubespawner_hooks" not in str(hub_module_source or ""):
        raise Z2jhError("z2jh_values: hub_module_source must be the text of roles/jupyterhub/files/fedgpu_hub.py")
    if not str(singleuser_wrapper_source or "").startswith("#!"):
        raise Z2jhError("z2jh_values: singleuser_wrapper_source must be the text of roles/jupyterhub/files/fedgpu-singleuser")
    urls = _oidc(s)
    server_name = _str(s, "server_name", True)
    gids = _groups(s)
    known = set(gids) | {str(g) for u in s["users"] if isinstance(u, dict) for g in u.get("groups") or []}
    allowed = _known_groups(dict(s, allowed_groups=s.get("allowed_groups", list(gids))), "allowed_groups", known)
    if not allowed:
        _fail("allowed_groups", "at least one community must be allowed to log in")
    admins = _known_groups(s, "admin_groups", known)
    people = accounts(s, gids)
    envs = _environments(s, known)
    flavours = _flavours(s, known)
    server, exports = _nfs(s)
    labels = _labels(s)
    idle = _int(s, "idle_timeout", 0)
    every = _int(s, "idle_cull_every", 1)
    start_timeout = _int(s, "start_timeout", 1)
    name, tag = split_image(s["k8s_default_image"], "k8s_default_image")
    home, volumes, mounts = _volumes(s, server, exports, any(not e.get("image") for e in envs))

    hub = {
        "config": {
            "JupyterHub": {"authenticator_class": "generic-oauth"},
            "GenericOAuthenticator": {
                "login_service": "your institution's account",
                "client_id": _str(s, "oidc_client_id"),
                # Secret: the chart keeps all values in the hub's k8s Secret.
                "client_secret": _str(s, "oidc_client_secret"),
                "oauth_callback_url": "https://%s/hub/oauth_callback" % server_name,
                "authorize_url": urls["authorize"],
                "token_url": urls["token"],
                "userdata_url": urls["userdata"],
                "scope": [str(x) for x in _list(s, "oidc_scopes")],
                "username_claim": _str(s, "oidc_username_claim", True),
                "manage_groups": True,
                "allowed_groups": allowed,
                "admin_groups": admins,
                "enable_auth_state": True,
            },
            "KubeSpawner": {"working_dir": home, "http_timeout": start_timeout},
        },
        "extraFiles": {"fedgpu-hub": {"mountPath": HUB_MODULE_DIR + "/fedgpu_hub.py", "stringData": str(hub_module_source)}},
        "extraConfig": {"10-fedgpu": _extra_config()},
    }
    if s["extra_config"]:
        hub["extraConfig"]["90-extra"] = str(s["extra_config"])
    if s["db_url"]:
        hub["db"] = {"type": "postgres", "url": str(s["db_url"])}  # secret (a password in the URL)
    elif s["k8s_storage_class"]:
        hub["db"] = {"pvc": {"storageClassName": str(s["k8s_storage_class"])}}
    if s["k8s_hub_image"]:
        hub_name, hub_tag = split_image(s["k8s_hub_image"], "k8s_hub_image")
        hub["image"] = {"name": hub_name, "tag": hub_tag}
    for service in _list(s, "api_services"):
        token = str((service or {}).get("api_token") or "")
        if not isinstance(service, dict) or not service.get("name") or len(token) < 32:
            _fail("api_services", "every service needs a name and an api_token of 32 or more characters")
        hub.setdefault("services", {})[str(service["name"])] = {"apiToken": token}  # secret
        hub.setdefault("loadRoles", {})[str(service["name"]) + "-role"] = {
            "scopes": [str(x) for x in service.get("scopes") or []], "services": [str(service["name"])]}

    custom = {
        "environments": envs,
        "flavours": flavours,
        "use_gpu": bool(s["use_gpu"]),
        "groups_claim": _str(s, "oidc_groups_claim", True),
        "home_root": s["home_root"],
        "shared_root": s["shared_root"],
        "collab_root": s["collab_root"],
        "collab_prefix": str(s["collab_link_prefix"]),
        "accounts": people,
        "profiles": {f["name"]: flavour_profile(f, s) for f in flavours},
        "environment_choices": {e["name"]: environment_choice(e, s) for e in envs},
    }
    return {
        "hub": hub,
        "singleuser": {
            "image": {"name": name, "tag": tag},
            "cmd": [WRAPPER_PATH, "jupyterhub-singleuser"],
            "defaultUrl": "/lab",
            "startTimeout": start_timeout,
            # Per user, from custom.fedgpu.accounts (hub.extraConfig): no fixed uid, no fsGroup (NFS keeps its owners).
            "uid": None,
            "fsGid": None,
            "extraLabels": labels,
            "extraFiles": {"fedgpu-singleuser": {"mountPath": WRAPPER_PATH, "mode": 0o755, "stringData": str(singleuser_wrapper_source)}},
            "storage": {"type": "none", "homeMountPath": home, "extraVolumes": volumes, "extraVolumeMounts": mounts},
            "profileList": [],
        },
        "scheduling": {"userPods": {"tolerations": copy.deepcopy(CHART_USER_TOLERATIONS)}},
        "cull": {"enabled": True, "timeout": idle, "every": every} if idle else {"enabled": False},
        "custom": {"fedgpu": custom},
    }

"""fedgpu.platform.z2jh_values: Zero to JupyterHub 4.4.0 values from the jupyterhub role's variables.

The values are merged over the chart's own defaults as Helm does and checked
against the chart's values.schema.json (pinned in tests/unit/fixtures/k8s/z2jh,
see SOURCES.md). KubeSpawner running on these values: test_kubespawner.py.
"""
import copy
import gzip
import json
import os

import jsonschema
import pytest
import yaml

from ansible.errors import AnsibleFilterError
from ansible_collections.fedgpu.platform.plugins.filter.z2jh import FilterModule, z2jh_values

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
CHART = os.path.join(ROOT, "tests", "unit", "fixtures", "k8s", "z2jh", "4.4.0")
ROLE_FILES = os.path.join(ROOT, "roles", "jupyterhub", "files")
SECRET = "s3cr3t-client-secret-value"

# docs/people.md's example, plus a user in no community with a gid and one in none at all.
GROUPS = [
    {"name": "physics", "gid": 3100},
    {"name": "cms", "gid": 3101, "parent": "physics"},
    {"name": "ml-infn", "gid": 3200},
    {"name": "guests"},
]
USERS = [
    {"name": "alice", "uid": 3001, "groups": ["cms"]},
    {"name": "bob", "uid": 3002, "groups": ["ml-infn", "cms"]},
    {"name": "carol", "uid": 3003, "groups": ["guests"]},
    {"name": "dave", "uid": 3004},
]
ENVIRONMENTS = [
    {"name": "base", "display_name": "Base (image)", "image": "quay.io/jupyter/scipy-notebook:2025-06-02", "groups": []},
    {"name": "cms-sw", "display_name": "CMS software", "path": "/opt/conda-envs/cms-sw/", "groups": ["cms"]},
    {"name": "torch", "path": "/opt/conda-envs/torch", "groups": ["ml-infn"]},
]
FLAVOURS = [
    {"name": "cpu", "display_name": "CPU: 2 cores, 4 GB", "cpu_limit": 2, "mem_limit": "4G", "gpu": "none", "groups": []},
    {"name": "mig-small", "cpu_limit": 4, "mem_limit": "16G", "gpu": "mig", "mig_profile": "1g.10gb", "groups": ["cms", "ml-infn"]},
    {"name": "a100", "cpu_limit": 8, "cpu_guarantee": 2, "mem_limit": "64G", "gpu": "full", "model": "NVIDIA-A100-SXM4-80GB",
     "groups": ["ml-infn"]},
    {"name": "h100-3g", "cpu_limit": 4, "mem_limit": "32G", "gpu": "mig", "mig_profile": "3g.40gb", "groups": ["ml-infn"]},
]
SETTINGS = {
    "oidc_issuer": "https://iam.example.org/",
    "oidc_client_id": "fedgpu-hub",
    "oidc_client_secret": SECRET,
    "oidc_authorize_url": "https://iam.example.org/authorize",
    "oidc_token_url": "https://iam.example.org/token",
    "oidc_userdata_url": "https://iam.example.org/userinfo",
    "server_name": "hub.example.org",
    "admin_groups": ["physics"],
    "users": USERS,
    "groups": GROUPS,
    "environments": ENVIRONMENTS,
    "flavours": FLAVOURS,
    "idle_timeout": 1800,
    "idle_cull_every": 120,
    "k8s_nfs_server": "10.0.0.10",
    "k8s_default_image": "registry.example.org:5000/fedgpu/base:1.0",
}


def settings(**changes):
    out = copy.deepcopy(SETTINGS)
    out.update(changes)
    return out


def helm_merge(defaults, values):
    """Helm's coalescing of user values over a chart's values: maps merge, anything else replaces, null deletes."""
    out = copy.deepcopy(defaults)
    for key, value in values.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = helm_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def chart_defaults():
    with gzip.open(os.path.join(CHART, "values.yaml.gz"), "rt") as handle:
        return yaml.safe_load(handle)


def chart_schema():
    with open(os.path.join(CHART, "values.schema.json")) as handle:
        return json.load(handle)


def merged(values):
    # The role writes the values as YAML: check that they survive it.
    return helm_merge(chart_defaults(), yaml.safe_load(yaml.safe_dump(values)))


def schema_errors(values):
    validator = jsonschema.validators.validator_for(chart_schema())(chart_schema())
    return sorted("%s: %s" % ("/".join(map(str, e.absolute_path)), e.message) for e in validator.iter_errors(values))


VARIANTS = {
    "gpu-and-mig": {},
    "no-gpu": {"use_gpu": False, "flavours": [FLAVOURS[0]]},
    "mig-only": {"flavours": [FLAVOURS[1], FLAVOURS[3]]},
    "images-only": {"environments": [ENVIRONMENTS[0]], "idle_timeout": 0},
    "paths-only": {"environments": ENVIRONMENTS[1:], "k8s_kueue_queue": "", "k8s_priority_class": ""},
    "everything": {"db_url": "postgresql://jupyterhub:pw@db.example:5432/jupyterhub", "k8s_hub_image": "quay.io/jupyterhub/k8s-hub:4.4.0",
                   "api_services": [{"name": "monitor", "api_token": "x" * 40, "scopes": ["read:users"]}],
                   "extra_config": "c.JupyterHub.shutdown_on_logout = True", "allowed_groups": ["cms"]},
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_values_validate_against_the_chart_schema(variant):
    values = z2jh_values(settings(**VARIANTS[variant]))
    assert schema_errors(merged(values)) == []


def test_the_schema_check_is_not_vacuous():
    values = merged(z2jh_values(settings()))
    values["singleuser"]["extraLabels"]["bad"] = 1
    values["hub"]["config"]["genericOAuthenticator"] = {}
    errors = schema_errors(values)
    assert any("extraLabels" in e for e in errors) and any("config" in e for e in errors)


def test_filter_is_registered():
    assert FilterModule().filters()["z2jh_values"] is z2jh_values


def test_login_and_where_the_secret_sits():
    values = z2jh_values(settings())
    auth = values["hub"]["config"]["GenericOAuthenticator"]
    assert values["hub"]["config"]["JupyterHub"] == {"authenticator_class": "generic-oauth"}
    assert auth["client_secret"] == SECRET
    assert auth["oauth_callback_url"] == "https://hub.example.org/hub/oauth_callback"
    assert auth["token_url"] == "https://iam.example.org/token"
    assert auth["allowed_groups"] == ["physics", "cms", "ml-infn", "guests"]
    assert auth["admin_groups"] == ["physics"]
    assert auth["manage_groups"] is True and auth["enable_auth_state"] is True
    assert auth["username_claim"] == "preferred_username"
    # The client secret is in one place only.
    text = json.dumps(values)
    assert text.count(SECRET) == 1


def test_hub_module_and_wrapper_are_the_roles_files():
    values = z2jh_values(settings())
    with open(os.path.join(ROLE_FILES, "fedgpu_hub.py")) as handle:
        assert values["hub"]["extraFiles"]["fedgpu-hub"] == {
            "mountPath": "/usr/local/etc/jupyterhub/fedgpu/fedgpu_hub.py", "stringData": handle.read()}
    with open(os.path.join(ROLE_FILES, "fedgpu-singleuser")) as handle:
        wrapper = values["singleuser"]["extraFiles"]["fedgpu-singleuser"]
        assert wrapper["stringData"] == handle.read() and wrapper["mode"] == 0o755
    assert "import fedgpu_hub" in values["hub"]["extraConfig"]["10-fedgpu"]
    # Or the texts the role passes (lookup('file', ...)).
    passed = z2jh_values(settings(), "def make_kubespawner_hooks(settings): pass\n", "#!/bin/sh\nexec \"$@\"\n")
    assert passed["hub"]["extraFiles"]["fedgpu-hub"]["stringData"].startswith("def make_kubespawner_hooks")


def test_storage_labels_culler():
    values = z2jh_values(settings())
    single = values["singleuser"]
    assert single["extraLabels"] == {"kueue.x-k8s.io/queue-name": "notebooks", "kueue.x-k8s.io/priority-class": "interactive"}
    assert single["storage"]["type"] == "none"
    assert single["storage"]["extraVolumes"] == [
        {"name": "fedgpu-private", "nfs": {"server": "10.0.0.10", "path": "/srv/nfs/private"}},
        {"name": "fedgpu-shared", "nfs": {"server": "10.0.0.10", "path": "/srv/nfs/shared"}},
        {"name": "fedgpu-collab", "nfs": {"server": "10.0.0.10", "path": "/srv/nfs/collab"}},
        {"name": "fedgpu-software", "nfs": {"server": "10.0.0.10", "path": "/srv/nfs/conda", "readOnly": True}},
    ]
    assert single["storage"]["extraVolumeMounts"][0] == {
        "name": "fedgpu-private", "mountPath": "/nfs/private/{unescaped_username}", "subPath": "{unescaped_username}"}
    assert single["image"] == {"name": "registry.example.org:5000/fedgpu/base", "tag": "1.0"}
    assert values["cull"] == {"enabled": True, "timeout": 1800, "every": 120}
    # No software area without path-only environments; no culler with idle_timeout 0; no labels when empty.
    images = z2jh_values(settings(**VARIANTS["images-only"]))
    assert "fedgpu-software" not in json.dumps(images["singleuser"]["storage"])
    assert images["cull"] == {"enabled": False}
    assert z2jh_values(settings(**VARIANTS["paths-only"]))["singleuser"]["extraLabels"] == {}


def test_accounts_uid_primary_and_supplemental_gids():
    accounts = z2jh_values(settings())["custom"]["fedgpu"]["accounts"]
    assert accounts == {
        "alice": {"uid": 3001, "gid": 3101, "gids": [3101]},
        "bob": {"uid": 3002, "gid": 3200, "gids": [3200, 3101]},
        "carol": {"uid": 3003, "gid": 100, "gids": []},
        "dave": {"uid": 3004, "gid": 100, "gids": []},
    }


def test_profiles_from_flavours_and_choices_from_environments():
    custom = z2jh_values(settings())["custom"]["fedgpu"]
    profiles = custom["profiles"]
    assert profiles["cpu"]["kubespawner_override"] == {"cpu_limit": 2.0, "cpu_guarantee": 2.0, "mem_limit": "4G", "mem_guarantee": "4G"}
    mig = profiles["mig-small"]["kubespawner_override"]
    assert mig["extra_resource_limits"] == {"nvidia.com/mig-1g.10gb": 1} == mig["extra_resource_guarantees"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in mig["tolerations"]
    assert "node_selector" not in mig
    a100 = profiles["a100"]["kubespawner_override"]
    assert a100["extra_resource_limits"] == {"nvidia.com/gpu": 1}
    assert a100["node_selector"] == {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}
    assert a100["cpu_guarantee"] == 2.0 and a100["cpu_limit"] == 8.0
    assert profiles["a100"]["description"] == "8 cores, 64G memory, 1 GPU, NVIDIA-A100-SXM4-80GB"
    choices = custom["environment_choices"]
    assert choices["base"]["kubespawner_override"] == {
        "image": "quay.io/jupyter/scipy-notebook:2025-06-02", "cmd": ["/opt/fedgpu/bin/fedgpu-singleuser", "jupyterhub-singleuser"]}
    assert choices["cms-sw"]["kubespawner_override"] == {
        "image": "registry.example.org:5000/fedgpu/base:1.0",
        "cmd": ["/opt/fedgpu/bin/fedgpu-singleuser", "/opt/conda-envs/cms-sw/bin/jupyterhub-singleuser"]}


def _flavour(**changes):
    return [dict(FLAVOURS[1], **changes)]


BAD = [
    ({"flavours": _flavour(gpu="tpu")}, "jupyterhub_flavours: 'mig-small' has gpu 'tpu'"),
    ({"flavours": _flavour(mig_profile="9g.99gb")}, "jupyterhub_flavours: flavour 'mig-small' asks for the MIG profile '9g.99gb'"),
    ({"flavours": _flavour(mig_profile="1g.10gb+me")}, "jupyterhub_flavours: flavour 'mig-small': the MIG profile '1g.10gb+me'"),
    ({"flavours": _flavour(mem_limit="4GB")}, "jupyterhub_flavours: 'mig-small' has mem_limit '4GB'"),
    ({"flavours": _flavour(cpu_limit=-1)}, "jupyterhub_flavours: 'mig-small' has cpu_limit -1"),
    ({"flavours": _flavour(groups=["atlas"])}, "jupyterhub_flavours: 'mig-small' is for unknown communities ['atlas']"),
    ({"flavours": FLAVOURS + [FLAVOURS[0]]}, "jupyterhub_flavours: 'cpu' needs a unique name"),
    ({"flavours": [dict(FLAVOURS[0], model="A100")]}, "jupyterhub_flavours: 'cpu' has model 'A100'"),
    ({"flavours": []}, "jupyterhub_flavours: at least one is needed"),
    ({"environments": [{"name": "venv", "path": "/opt/jupyterhub/venv"}]}, "jupyterhub_environments: 'venv' has only a path"),
    ({"environments": [{"name": "nothing"}]}, "jupyterhub_environments: 'nothing' needs an image or an absolute path"),
    ({"environments": [dict(ENVIRONMENTS[0], image="bad image")]}, "jupyterhub_environments: an image reference is needed"),
    ({"users": USERS + [{"name": "eve", "uid": 10}]}, "jupyterhub_users: user 'eve' needs a uid of 1000 or more"),
    ({"users": [{"name": "Eve", "uid": 4000}]}, "jupyterhub_users: user 'Eve' needs a POSIX name"),
    ({"users": [{"name": "eve", "uid": 4000, "groups": ["atlas"]}]}, "jupyterhub_users: user 'eve' is in unknown communities"),
    ({"allowed_groups": ["/cms"]}, "jupyterhub_allowed_groups: unknown communities ['/cms']"),
    ({"admin_groups": ["atlas"]}, "jupyterhub_admin_groups: unknown communities ['atlas']"),
    ({"oidc_issuer": "http://iam.example.org/"}, "jupyterhub_oidc_issuer: 'http://iam.example.org/' must be the provider's https:// URL"),
    ({"oidc_client_secret": "short"}, "jupyterhub_oidc_client_secret: missing or shorter than 8 characters"),
    ({"oidc_token_url": ""}, "jupyterhub_oidc_authorize_url, jupyterhub_oidc_token_url, jupyterhub_oidc_userdata_url: all three"),
    ({"server_name": ""}, "jupyterhub_server_name: must be set"),
    ({"k8s_nfs_server": ""}, "jupyterhub_k8s_nfs_server: must be set"),
    ({"k8s_nfs_exports": {"private": "srv/private"}}, "jupyterhub_k8s_nfs_exports: the private export must be an absolute path"),
    ({"k8s_kueue_queue": "Notebooks"}, "jupyterhub_k8s_kueue_queue: 'Notebooks' is not a Kubernetes object name"),
    ({"k8s_priority_class": "inter_active"}, "jupyterhub_k8s_priority_class: 'inter_active' is not a Kubernetes object name"),
    ({"idle_timeout": -5}, "jupyterhub_idle_timeout: must be a whole number of 0 or more"),
    ({"home_root": "nfs/private"}, "jupyterhub_home_root: the path must be an absolute path"),
    ({"api_services": [{"name": "x", "api_token": "short"}]}, "jupyterhub_api_services: every service needs a name and an api_token"),
]


@pytest.mark.parametrize("changes, message", BAD, ids=[m.split(":")[0] + "-%d" % i for i, (c, m) in enumerate(BAD)])
def test_bad_settings_name_the_variable(changes, message):
    with pytest.raises(AnsibleFilterError) as info:
        z2jh_values(settings(**changes))
    assert str(info.value).startswith("z2jh_values: ")
    assert message in str(info.value)


def test_bad_input_and_sources():
    with pytest.raises(AnsibleFilterError, match="the input must be a mapping"):
        z2jh_values(["oidc_issuer"])
    with pytest.raises(AnsibleFilterError, match="hub_module_source must be the text of"):
        z2jh_values(settings(), "print('not the hub module')")

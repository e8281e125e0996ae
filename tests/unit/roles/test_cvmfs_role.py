# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Render the cvmfs role's default.local (defaults, vars and template) for several inputs."""

import os

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
ROLE = os.path.join(ROOT, "roles", "cvmfs")

GIB_BLOCKS = 262144  # 4 KiB blocks in a GiB
HOSTVARS = {
    "squid1": {"common_address": "10.0.0.11"},
    "squid2": {"ansible_facts": {"default_ipv4": {"address": "10.0.0.12"}}},
}


# Templates call the collection's filters: the loader of tests/unit/conftest.py.
pytestmark = pytest.mark.usefixtures("collection_loader")


def load(path):
    with open(path) as handle:
        return yaml.safe_load(handle)


def render(groups=None, fs_blocks=50 * GIB_BLOCKS, **variables):
    context = dict(load(os.path.join(ROLE, "defaults", "main.yml")))
    context.update(load(os.path.join(ROLE, "vars", "main.yml")))
    context.update(variables)
    context = {k: trust_as_template(v) if isinstance(v, str) else v for k, v in context.items()}
    context.update(
        ansible_managed="Ansible managed: do not edit",
        # what tasks/validate.yml reads with stat -f: blocks and block size
        __cvmfs_fs_stat={"stdout": "%d 4096" % fs_blocks},
        groups=groups or {},
        hostvars=HOSTVARS,
    )
    with open(os.path.join(ROLE, "templates", "etc", "cvmfs", "default.local.j2")) as handle:
        text = handle.read()
    return Templar(loader=DataLoader(), variables=context).template(trust_as_template(text))


def settings(text):
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, dummy, value = line.partition("=")
            out[key] = value.strip('"')
    return out


def test_string_repositories_and_site_squids():
    conf = settings(render(groups={"squid": ["squid1", "squid2"]},
                           cvmfs_repositories="cms.cern.ch sft.cern.ch  atlas.cern.ch"))
    assert conf["CVMFS_REPOSITORIES"] == "cms.cern.ch,sft.cern.ch,atlas.cern.ch"
    assert conf["CVMFS_HTTP_PROXY"] == "http://10.0.0.11:3128|http://10.0.0.12:3128"
    assert "CVMFS_CLIENT_PROFILE" not in conf


def test_list_repositories_and_infn_name():
    conf = settings(render(cvmfs_repositories=["cms.cern.ch", "sft.cern.ch", "cms.cern.ch"]))
    assert conf["CVMFS_REPOSITORIES"] == "cms.cern.ch,sft.cern.ch"
    del_default = settings(render(cvmfs_repos="lhcb.cern.ch,sft.cern.ch"))
    assert del_default["CVMFS_REPOSITORIES"] == "lhcb.cern.ch,sft.cern.ch"


def test_no_proxy_is_single_profile():
    conf = settings(render())
    assert conf["CVMFS_CLIENT_PROFILE"] == "single"
    assert "CVMFS_HTTP_PROXY" not in conf


def test_explicit_proxy_groups_win_over_site_squids():
    proxy = "http://p1.example.org:3128|http://p2.example.org:3128;http://backup.example.org:3128;DIRECT"
    conf = settings(render(groups={"squid": ["squid1"]}, cvmfs_http_proxy=proxy))
    assert conf["CVMFS_HTTP_PROXY"] == proxy


def test_quota_derived_from_cache_filesystem():
    assert settings(render())["CVMFS_QUOTA_LIMIT"] == str(int(50 * 1024 * 0.8))
    assert settings(render(fs_blocks=200 * 256))["CVMFS_QUOTA_LIMIT"] == "160"   # a tiny 200 MB filesystem
    assert settings(render(cvmfs_quota_fraction=0.5))["CVMFS_QUOTA_LIMIT"] == str(25 * 1024)
    assert settings(render(cvmfs_quota_limit_mb=4000))["CVMFS_QUOTA_LIMIT"] == "4000"


def test_extra_settings_and_header():
    text = render(cvmfs_extra_config={"CVMFS_NFILES": 65536})
    assert text.startswith("#\n# Ansible managed")
    assert settings(text)["CVMFS_NFILES"] == "65536"

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The gpu_accounting role: its rendered configuration, and bad input refused before any change."""

import json
import os
import sys

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
ROLE = os.path.join(ROOT, "roles", "gpu_accounting")
SECRET = "s3cret:with\\odd-chars"

pytestmark = pytest.mark.usefixtures("collection_loader")


def load(path):
    with open(path) as handle:
        return yaml.safe_load(handle)


def render(template, **variables):
    context = dict(load(os.path.join(ROLE, "defaults", "main.yml")))
    context.update(load(os.path.join(ROLE, "vars", "main.yml")))
    context.update(variables)
    context = {k: trust_as_template(v) if isinstance(v, str) else v for k, v in context.items()}
    context.update(ansible_managed="Ansible managed: do not edit", inventory_hostname="fg-gpu1",
                   groups={"db_data": ["fg-db1", "fg-db2"]}, accounting_db_owner_password=SECRET,
                   pki_dir="/pki")
    with open(os.path.join(ROLE, "templates", template)) as handle:
        text = handle.read()
    return Templar(loader=DataLoader(), variables=context).template(trust_as_template(text))


def test_collector_configuration_is_json_without_the_password():
    text = render("collector.json.j2")
    config = json.loads(text)
    assert SECRET not in text
    dsn = dict(part.split("=", 1) for part in config["dsn"].split())
    assert dsn["host"] == "fg-db1,fg-db2" and dsn["port"] == "5432,5432"
    assert dsn["target_session_attrs"] == "read-write" and dsn["sslmode"] == "verify-full"
    assert dsn["passfile"] == "/etc/fedgpu/accounting/pgpass" and dsn["sslrootcert"] == "/etc/fedgpu/accounting/ca.crt"
    assert config["host"] == "fg-gpu1" and config["interval"] == 15 and config["spool_max_bytes"] == 256 * 1048576
    # Every key is a setting the collector knows (it refuses others).
    sys.path.insert(0, os.path.join(ROLE, "files"))
    from fedgpu_accounting import collector  # pylint: disable=import-outside-toplevel
    assert {k for k in config if not k.startswith("_")} <= set(collector.DEFAULTS)


def test_every_module_of_the_program_is_installed():
    listed = load(os.path.join(ROLE, "vars", "main.yml"))["__gpu_accounting_modules"]
    present = sorted(n for n in os.listdir(os.path.join(ROLE, "files", "fedgpu_accounting")) if n.endswith(".py"))
    assert sorted(listed) == present


def test_passfile_escapes_the_password():
    lines = [line for line in render("pgpass.j2").splitlines() if not line.startswith("#")]
    # libpq's passfile: ':' and '\\' escaped with a backslash
    assert lines == ["fg-db%d:5432:accounting:accounting:s3cret\\:with\\\\odd-chars" % n for n in (1, 2)]


@pytest.mark.parametrize("variables,named", [
    ({"gpu_accounting_interval": 2}, "gpu_accounting_interval must be 5..3600"),
    ({"gpu_accounting_interval": "often"}, "gpu_accounting_interval"),
    ({"gpu_accounting_db_password": "short"}, "gpu_accounting_db_password must be set"),
    ({"gpu_accounting_source": "dcgm"}, "gpu_accounting_source"),
    ({"gpu_accounting_ca_cert": "/nonexistent/ca.crt"}, "gpu_accounting_ca_cert: /nonexistent/ca.crt is not a file"),
])
def test_bad_input_is_refused_naming_the_variable(run_role_check, variables, named):
    proc = run_role_check("gpu_accounting", dict({"gpu_accounting_db_hosts": ["db1"],
                                                  "gpu_accounting_db_password": "long-enough-password",
                                                  "gpu_accounting_ca_cert": __file__}, **variables))
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and named in out, out[-2000:]
    assert "changed=0" in out and "long-enough-password" not in out


@pytest.mark.parametrize("variables,named", [
    ({"gpu_accounting_report_by": "team"}, "gpu_accounting_report_by"),
    ({"gpu_accounting_report_from": "last monday"}, "gpu_accounting_report_from (last monday) and"),
    ({"gpu_accounting_report_db_password": ""}, "gpu_accounting_report_db_password must be"),
])
def test_report_refuses_bad_input_naming_the_variable(run_role_check, variables, named):
    proc = run_role_check("gpu_accounting", dict({"gpu_accounting_db_hosts": ["db1"],
                                                  "gpu_accounting_report_db_password": "long-enough-password"},
                                                 **variables), tasks_from="report")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and named in out, out[-2000:]
    assert "changed=0" in out and "long-enough-password" not in out

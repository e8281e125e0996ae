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
    with open(os.path.join(ROLE, "templates", template)) as handle:
        return render_text(handle.read(), **variables)


def render_text(text, **variables):
    context = dict(load(os.path.join(ROLE, "defaults", "main.yml")))
    context.update(load(os.path.join(ROLE, "vars", "main.yml")))
    context.update(variables)
    context = {k: trust_as_template(v) if isinstance(v, str) else v for k, v in context.items()}
    context.update(ansible_managed="Ansible managed: do not edit", inventory_hostname="fg-gpu1",
                   groups={"db_data": ["fg-db1", "fg-db2"]}, accounting_db_owner_password=SECRET,
                   pki_dir="/pki")
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


TOKEN = "a" * 48


def hub_module():
    import importlib.util  # pylint: disable=import-outside-toplevel
    spec = importlib.util.spec_from_file_location("fedgpu_hub", os.path.join(ROOT, "roles", "jupyterhub", "files", "fedgpu_hub.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("stop_after, scopes", [(0, []), (3600, ["list:users", "read:servers", "delete:servers"])])
def test_the_usage_pages_registration_is_what_the_hub_reads(tmp_path, stop_after, scopes):
    """The page's JSON in the jupyterhub role's services.d, read by the hub's own loader."""
    text = render("usage-page.service.json.j2", __gpu_accounting_page_token=TOKEN,
                  gpu_accounting_usage_page_stop_idle_after=stop_after)
    (tmp_path / "usage.json").write_text(text)
    services, roles, user_scopes, notices = hub_module().registered_services(str(tmp_path))
    assert services == [{"name": "usage", "api_token": TOKEN, "url": "http://127.0.0.1:9480", "display": True,
                         "info": {"description": "Your own GPU usage (fedgpu.platform accounting)"},
                         "oauth_no_confirm": True}]
    assert roles == ([{"name": "usage-service", "scopes": scopes, "services": ["usage"]}] if scopes else [])
    assert user_scopes == ["access:services!service=usage"] and notices == ["/var/lib/fedgpu-usage-page/notices"]


def test_the_usage_pages_unit_environment_and_connection():
    sys.path.insert(0, os.path.join(ROLE, "files"))
    from fedgpu_accounting import usage_page  # pylint: disable=import-outside-toplevel
    unit = render("fedgpu-usage-page.service.j2")
    execstart = [line for line in unit.splitlines() if line.startswith("ExecStart=")][0].split()
    assert execstart[0] == "ExecStart=/opt/jupyterhub/venv/bin/python" and execstart[1:3] == ["-m", "fedgpu_accounting.usage_page"]
    args = usage_page.parser().parse_args(execstart[3:])  # what the program accepts
    assert (args.dsn_file, args.address, args.port, args.days, args.stop_idle_after) == (
        "/etc/fedgpu-usage-page/dsn", "127.0.0.1", 9480, 30, 0)
    assert "User=fedgpu-usage" in unit and "ProtectSystem=strict" in unit and TOKEN not in unit
    env = dict(line.split("=", 1) for line in render("usage-page.env.j2", __gpu_accounting_page_token=TOKEN).splitlines()
               if line and not line.startswith("#"))
    assert env == {"JUPYTERHUB_API_TOKEN": TOKEN, "JUPYTERHUB_API_URL": "http://127.0.0.1:8888/hub/api",
                   "JUPYTERHUB_BASE_URL": "/", "JUPYTERHUB_SERVICE_NAME": "usage",
                   "JUPYTERHUB_SERVICE_PREFIX": "/services/usage/", "JUPYTERHUB_CLIENT_ID": "service-usage",
                   "JUPYTERHUB_OAUTH_CALLBACK_URL": "/services/usage/oauth_callback",
                   "JUPYTERHUB_PUBLIC_URL": "https://fg-gpu1/"}
    context = {"__gpu_accounting_ca_file": "/etc/fedgpu-usage-page/ca.crt"}
    dsn = dict(part.split("=", 1) for part in render_text("{{ __gpu_accounting_page_dsn }}", **context).split())
    assert dsn["user"] == "accounting_reporting" and dsn["target_session_attrs"] == "prefer-standby"
    assert dsn["passfile"] == "/etc/fedgpu-usage-page/pgpass" and dsn["sslrootcert"] == "/etc/fedgpu-usage-page/ca.crt"
    assert dsn["host"] == "fg-db1,fg-db2" and dsn["sslmode"] == "verify-full" and "password" not in dsn


@pytest.mark.parametrize("variables,named", [
    ({"gpu_accounting_usage_page_days": 14}, "gpu_accounting_usage_page_days"),
    ({"gpu_accounting_usage_page_name": "Usage Page"}, "gpu_accounting_usage_page_name (Usage Page) must be"),
    ({"gpu_accounting_usage_page_port": 70000}, "gpu_accounting_usage_page_port (70000) must be"),
    ({"gpu_accounting_usage_page_stop_idle_after": 600, "gpu_accounting_metrics_port": 0},
     "needs the collector's metrics"),
    ({"gpu_accounting_usage_page_check_every": 1}, "gpu_accounting_usage_page_check_every (1) must be"),
    ({"gpu_accounting_report_db_password": ""}, "gpu_accounting_report_db_password must be"),
])
def test_usage_page_refuses_bad_input_naming_the_variable(run_role_check, variables, named):
    proc = run_role_check("gpu_accounting", dict({"gpu_accounting_db_hosts": ["db1"], "gpu_accounting_ca_cert": __file__,
                                                  "gpu_accounting_report_db_password": "long-enough-password"},
                                                 **variables), tasks_from="usage_page")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and named in out, out[-2000:]
    assert "changed=0" in out and "long-enough-password" not in out


def test_usage_page_dry_run_on_a_new_node(run_role_check):
    """--check where the page was never installed (this machine): no failure, nothing made, nothing restarted."""
    if os.path.exists("/etc/fedgpu-usage-page"):
        pytest.skip("SKIPPED: the usage page is installed on this machine: not a new node")
    proc = run_role_check("gpu_accounting", {"gpu_accounting_db_hosts": ["db1"], "gpu_accounting_ca_cert": __file__,
                                             "gpu_accounting_report_db_password": "long-enough-password",
                                             "gpu_accounting_usage_page_stop_idle_after": 3600}, tasks_from="usage_page")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "failed=0" in out, out[-3000:]
    assert not os.path.exists("/etc/fedgpu-usage-page") and not os.path.exists("/etc/jupyterhub/services.d/usage.json")
    assert "long-enough-password" not in out

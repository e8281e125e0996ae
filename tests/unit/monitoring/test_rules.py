# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The prometheus role's alert rules, Prometheus and Alertmanager configurations, rendered as the role renders
them (its template module, its defaults, a small inventory) and checked by the real tools: `promtool check rules`,
`promtool test rules` with the fixtures in fedgpu_rules_test.yml, `promtool check config`, `amtool check-config`.
Also the input checks of the prometheus and prometheus_exporters roles."""

import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
TOOLS = [tool for tool in ("promtool", "amtool") if not shutil.which(tool)]
REASON = ("%s not installed (Debian's prometheus and prometheus-alertmanager; tools/bootstrap-host.sh installs them)"
          % " and ".join(TOOLS))
needs_tools = pytest.mark.skipif(bool(TOOLS), reason=REASON)
WEBHOOK = "http://alerts.example.org:9095/hook?token=abc"


def render(out_dir, **variables):
    extra = dict({"out_dir": str(out_dir), "ansible_python_interpreter": sys.executable}, **variables)
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"),
                           "-i", os.path.join(HERE, "inventory.yml"), "-e", json.dumps(extra),
                           os.path.join(HERE, "render.yml")], capture_output=True, text=True, env=env, cwd=ROOT,
                          check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    return out_dir


def tool(*argv, cwd=None):
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, check=False)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    return render(tmp_path_factory.mktemp("prometheus"), prometheus_alert_webhook_urls=[WEBHOOK],
                  prometheus_alert_email_to=["gpu-ops@example.org"], prometheus_alert_smtp_require_tls=False,
                  prometheus_alert_smtp_smarthost="mail.example.org:2525")


def load(path):
    with open(path) as handle:
        return yaml.safe_load(handle)


@needs_tools
def test_rules_pass_promtool_check_without_warnings(rendered):
    rc, out = tool("promtool", "check", "rules", str(rendered / "fedgpu.rules.yml"))
    assert rc == 0 and "SUCCESS: 9 rules found" in out, out


@needs_tools
def test_rules_pass_the_fixtures(rendered):
    shutil.copy(os.path.join(HERE, "fedgpu_rules_test.yml"), rendered / "fedgpu_rules_test.yml")
    rc, out = tool("promtool", "test", "rules", "fedgpu_rules_test.yml", cwd=str(rendered))
    assert rc == 0 and "SUCCESS" in out, out


def test_the_fixtures_cover_every_alert(rendered):
    alerts = {rule["alert"] for group in load(rendered / "fedgpu.rules.yml")["groups"] for rule in group["rules"]}
    tested = {case["alertname"] for test in load(os.path.join(HERE, "fedgpu_rules_test.yml"))["tests"]
              for case in test["alert_rule_test"] if case["exp_alerts"]}
    assert alerts == tested


@needs_tools
def test_prometheus_scrapes_every_exporter_by_node_name(rendered):
    rc, out = tool("promtool", "check", "config", "--syntax-only", str(rendered / "prometheus.yml"))
    assert rc == 0, out
    config = load(rendered / "prometheus.yml")
    targets = {job["job_name"]: sorted((t["labels"]["instance"], t["targets"][0]) for t in job["static_configs"])
               for job in config["scrape_configs"]}
    assert targets["node"] == sorted((h, h + ":9100") for h in ("fg-frontend", "fg-gpu1", "fg-db1", "fg-db2"))
    assert targets["postgres"] == [("fg-db1", "fg-db1:9187"), ("fg-db2", "fg-db2:9187")]
    assert targets["fedgpu_collector"] == [("fg-gpu1", "fg-gpu1:9477")]
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["127.0.0.1:9093"]
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yml"]


@needs_tools
def test_alertmanager_sends_to_the_webhook_and_by_mail(rendered):
    rc, out = tool("amtool", "check-config", str(rendered / "alertmanager.yml"))
    assert rc == 0, out
    config = load(rendered / "alertmanager.yml")
    receiver = config["receivers"][0]
    assert config["route"]["receiver"] == receiver["name"]
    assert [w["url"] for w in receiver["webhook_configs"]] == [WEBHOOK]
    assert [e["to"] for e in receiver["email_configs"]] == ["gpu-ops@example.org"]
    assert config["global"]["smtp_smarthost"] == "mail.example.org:2525" and config["global"]["smtp_require_tls"] is False
    assert "smtp_auth_password" not in config["global"]


@needs_tools
def test_without_database_or_collectors_only_the_target_rules(tmp_path):
    out = render(tmp_path, prometheus_scrape_jobs=[{"name": "node", "port": 9100, "hosts": ["fg-frontend"]}])
    rc, text = tool("promtool", "check", "rules", str(out / "fedgpu.rules.yml"))
    assert rc == 0, text
    assert [g["name"] for g in load(out / "fedgpu.rules.yml")["groups"]] == ["fedgpu.targets"]
    jobs = [j["job_name"] for j in load(out / "prometheus.yml")["scrape_configs"]]
    assert jobs == ["prometheus", "alertmanager", "node"]


@pytest.mark.parametrize("role,variables,named", [
    ("prometheus", {"prometheus_gpu_idle_for": "30 minutes"}, "prometheus_gpu_idle_for"),
    ("prometheus", {"prometheus_port": "web"}, "prometheus_port"),
    ("prometheus", {"prometheus_scrape_jobs": [{"name": "node-exporter", "port": 9100, "hosts": []}]},
     "prometheus_scrape_jobs"),
    ("prometheus", {"prometheus_alert_email_to": ["ops@example.org"], "prometheus_alert_smtp_smarthost": "mail"},
     "prometheus_alert_smtp_smarthost must be host:port"),
    ("prometheus", {"prometheus_alert_webhook_urls": ["alerts.example.org/hook"]}, "prometheus_alert_webhook_urls"),
    ("prometheus_exporters", {"prometheus_exporters_node_port": 9187}, "prometheus_exporters_node_port"),
    ("prometheus_exporters", {"prometheus_exporters_postgres": "maybe"}, "prometheus_exporters_postgres"),
])
def test_bad_input_is_refused_naming_the_variable(run_role_check, role, variables, named):
    proc = run_role_check(role, variables)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and named in out, out[-2000:]
    assert "changed=0" in out

# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The researchers' usage page (fedgpu_accounting.usage_page): its figures on test_report's hand-worked fixture,
the HTML, the idle check against the collector's metrics text, and one user's page read through the database.

The tornado/JupyterHub glue (make_app, main's server) runs in the demo's usage journey against the real hub.
"""

import json
import os

from fedgpu_accounting import report, usage_page
# shipped: the fixture shipped into the throwaway database, read as the reporting role
from test_report import EXPECTED_BY_USER, H0, H1, HOURLY, WA, WB, WC, check_figures, shipped  # noqa: F401  pylint: disable=unused-import


def alice_data():
    return {"start": H0, "end": H1 + 3600, "user": "alice", "hourly": [r for r in HOURLY if r["username"] == "alice"],
            "usage": []}


def test_figures_of_one_user():
    figures = usage_page.page_data(alice_data())
    assert figures["user"] == "alice" and figures["from"] == "2026-11-30T10:00:00Z"
    want = {k: v for k, v in EXPECTED_BY_USER["alice"].items() if k != "free_gpu_hours"}
    check_figures(figures["total"], want)
    assert [f["flavour"] for f in figures["by_flavour"]] == ["mig-medium"]
    check_figures(figures["by_flavour"][0], {"allocated_gpu_hours": 9 / 14, "busy_gpu_hours": 3 / 14})
    assert len(figures["workloads"]) == 1
    w = figures["workloads"][0]
    assert (w["workload_id"], w["kind"], w["community"], w["flavour"], w["first_hour"]) == (
        WA, "jupyter", "cms", "mig-medium", "2026-11-30T10:00:00Z")
    check_figures(w, {"allocated_gpu_hours": 9 / 14, "idle_fraction": 2 / 3})
    json.dumps(figures)  # the ?format=json answer


def test_workloads_newest_first_and_nothing_held():
    data = {"start": H0, "end": H1 + 3600, "user": "x", "usage": [],
            "hourly": [dict(r, username="x") for r in HOURLY if r["workload_id"]]}
    figures = usage_page.page_data(data)
    # newest first hour first; within an hour, by id (descending)
    assert [w["workload_id"] for w in figures["workloads"]] == [WC, WA, WB]
    empty = usage_page.page_data({"start": H0, "end": H1, "user": "bob", "hourly": [], "usage": []})
    assert empty["workloads"] == [] and empty["total"]["allocated_gpu_hours"] == 0
    assert "No GPU or MIG device was held" in usage_page.render_html(empty, 30, "/services/usage/")


def test_html_escapes_and_links():
    figures = usage_page.page_data(alice_data())
    figures["workloads"][0]["workload_id"] = "<script>alert(1)</script>"
    page = usage_page.render_html(figures, 7, "/services/usage/")
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "GPU usage of alice" in page and "last 7 days" in page
    assert 'href="/services/usage/?days=90"' in page and 'href="/hub/home"' in page
    assert "0.64" in page  # her allocated GPU-hours, 9/14


def test_period():
    assert usage_page.parse_days("7", 30) == 7
    assert usage_page.parse_days("8", 30) == 30
    assert usage_page.parse_days("", 30) == 30
    assert usage_page.parse_days("x", 1) == 1


METRICS = """# HELP fedgpu_gpu_allocated_idle_seconds How long the device has been held and idle.
# TYPE fedgpu_gpu_allocated_idle_seconds gauge
fedgpu_gpu_allocated_idle_seconds{host="fg-gpu1",device="MIG-a",model="A100",mig_profile="1g.10gb",user="alice",community="cms",kind="jupyter"} 4000
fedgpu_gpu_allocated_idle_seconds{host="fg-gpu1",device="MIG-b",model="A100",mig_profile="1g.10gb",user="alice",community="cms",kind="jupyter"} 4500
fedgpu_gpu_allocated_idle_seconds{host="fg-gpu1",device="MIG-c",model="A100",mig_profile="1g.10gb",user="bob",community="cms",kind="condor"} 9000
fedgpu_gpu_allocated_idle_seconds{host="fg-gpu1",device="GPU-d",model="A100",mig_profile="",user="dave",community="ml-infn",kind="jupyter"} 100
fedgpu_gpu_allocated_idle_seconds{host="fg-gpu1",device="GPU-e",model="A100",mig_profile="",user="",community="",kind=""} 0
fedgpu_gpu_busy{host="fg-gpu1",device="GPU-d",model="A100",mig_profile="",user="dave",community="ml-infn",kind="jupyter"} 0
"""


def test_idle_servers_from_the_collectors_metrics():
    idle = usage_page.idle_servers(METRICS, 3600)
    assert sorted(idle) == ["alice"]  # bob's is a job, dave's is idle for 100 s only
    assert idle["alice"]["seconds"] == 4500 and idle["alice"]["device"] == "MIG-b"
    assert sorted(usage_page.idle_servers(METRICS, 60)) == ["alice", "dave"]
    assert usage_page.idle_servers("", 1) == {}


def test_idle_stopper_stops_and_leaves_a_notice(tmp_path):
    asked = []

    def stop(user):
        asked.append(user)
        return user != "dave"  # dave's server was already gone: no notice

    stopper = usage_page.IdleStopper(60, lambda: METRICS, stop, str(tmp_path), clock=lambda: H0)
    assert stopper.run_once() == ["alice"]
    assert asked == ["alice", "dave"]
    assert sorted(os.listdir(tmp_path)) == ["alice.json"]
    notice = json.loads((tmp_path / "alice.json").read_text())
    assert notice["at"] == H0 and notice["device"] == "MIG-b"
    assert notice["message"] == ("Your notebook server was stopped at 2026-11-30 10:00 UTC: its MIG 1g.10gb slice had "
                                 "been allocated and idle for 75 minutes. Start it again when you need the GPU; "
                                 "your files are kept.")
    whole = usage_page.notice("dave", {"seconds": 7200, "mig_profile": ""}, now=H0)
    assert "its GPU had been allocated and idle for 120 minutes" in whole["message"]
    assert [usage_page.duration(s) for s in (30, 119, 120, 10799, 10800, 12600)] == [
        "30 seconds", "119 seconds", "2 minutes", "179 minutes", "3.0 hours", "3.5 hours"]


def test_stop_idle_now_needs_a_threshold(capsys):
    assert usage_page.main(["--stop-idle-now"]) == 2
    assert "--stop-idle-after" in capsys.readouterr().err


def test_one_users_page_through_the_database(shipped):
    reporting = shipped
    figures = usage_page.load(reporting, "alice", 30, now=H1 + 3600)
    assert [w["workload_id"] for w in figures["workloads"]] == [WA]
    check_figures(figures["total"], {"allocated_gpu_hours": 9 / 14, "sessions": 1, "jobs": 0})
    assert [r["workload_id"] for r in figures["rightsizing"]] == [WA]
    page = usage_page.render_html(figures, 30, "/services/usage/")
    assert WA in page and WB not in page and WC not in page and "bob" not in page and "carol" not in page
    bob = usage_page.load(reporting, "bob", 30, now=H1 + 3600)
    assert [w["workload_id"] for w in bob["workloads"]] == [WB]
    assert usage_page.load(reporting, "nobody", 30, now=H1 + 3600)["workloads"] == []
    # the same figures as the report of that user
    rep = report.run(reporting, H1 + 3600 - 30 * 86400, H1 + 3600, by="user", user="alice")
    check_figures(figures["total"], {k: rep["total"][k] for k in ("allocated_gpu_hours", "busy_gpu_hours", "gpus")})

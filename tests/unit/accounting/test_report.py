# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reports: every figure against numbers worked out by hand, on plain rows and through the database.

The fixture (two hours, H0 and H1, of three devices):

  MIG3  a 3g.40gb slice of an A100: gpu_fraction 3/7
  GPUB  a whole H100: gpu_fraction 1
  GPUC  a whole H100, never held

  hour  device  holder                    seconds  busy
  H0    MIG3    alice (jupyter, cms)       3600    1800
  H0    GPUB    bob (condor, ml-infn)      3600    2700
  H0    GPUC    nobody                     3600       0
  H1    MIG3    alice                      1800       0
  H1    MIG3    nobody                     1800       0
  H1    GPUB    carol (condor, physics,    3600    3600
                2 GPUs requested)

Allocated GPU-hours = seconds * fraction / 3600:
  alice 3/7 + 3/14 = 9/14 (0.642857), busy 3/14 (0.214286), idle 3/7, idle fraction 1 - 3/9 = 2/3
  bob   1, busy 0.75, idle fraction 0.25
  carol 1, busy 1, idle fraction 0
  total allocated 9/14 + 2 = 37/14, busy 3/14 + 1.75 = 27.5/14, free (nobody) 3/14 + 1 = 17/14
  gpus (distinct devices held, as fractions): alice 3/7, total 3/7 + 1 = 10/7
  sessions: alice 1; jobs: bob 1, carol 1
"""

import calendar
import csv
import importlib.util
import io
import json
import os

import psycopg2
import pytest

from fedgpu_accounting import report, ship

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
H0 = float(calendar.timegm((2026, 11, 30, 10, 0, 0)))
H1 = H0 + 3600
MIG3, GPUB, GPUC = "MIG-33333333-3333-3333-3333-333333333333", "GPU-bbbbbbbb", "GPU-cccccccc"
WA, WB, WC = "jupyter:fg-gpu1:inv-a", "condor:sched#1.0#1", "condor:sched#2.0#2"
F3 = 3 / 7

DEVICES = {
    MIG3: {"uuid": MIG3, "host": "fg-gpu1", "parent_uuid": "GPU-aaaaaaaa", "model": "NVIDIA A100-SXM4-80GB",
           "mig_profile": "3g.40gb", "gpu_fraction": F3},
    GPUB: {"uuid": GPUB, "host": "fg-gpu2", "parent_uuid": None, "model": "NVIDIA H100 80GB HBM3", "mig_profile": None,
           "gpu_fraction": 1.0},
    GPUC: {"uuid": GPUC, "host": "fg-gpu2", "parent_uuid": None, "model": "NVIDIA H100 80GB HBM3", "mig_profile": None,
           "gpu_fraction": 1.0},
}
WORKLOADS = {
    WA: {"workload_id": WA, "kind": "jupyter", "host": "fg-gpu1", "username": "alice", "uid": 3001, "community": "cms",
         "flavour": "mig-medium", "requested_cpus": 4.0, "requested_mem_mib": 8192.0, "requested_gpus": F3},
    WB: {"workload_id": WB, "kind": "condor", "host": "fg-gpu2", "username": "bob", "uid": 3002,
         "community": "ml-infn", "flavour": "gpu-full", "requested_cpus": 8.0, "requested_mem_mib": 32768.0,
         "requested_gpus": 1.0},
    WC: {"workload_id": WC, "kind": "condor", "host": "fg-gpu2", "username": "carol", "uid": 3003,
         "community": "physics", "flavour": None, "requested_cpus": 16.0, "requested_mem_mib": 65536.0,
         "requested_gpus": 2.0},
}


def hrow(hour, device, workload, seconds, busy):
    d, w = DEVICES[device], WORKLOADS.get(workload, {})
    return {"hour": hour, "host": d["host"], "device_uuid": device, "workload_id": workload, "seconds": seconds,
            "busy_seconds": busy, "gpu_fraction": d["gpu_fraction"], "model": d["model"],
            "mig_profile": d["mig_profile"], "username": w.get("username"), "community": w.get("community"),
            "flavour": w.get("flavour"), "kind": w.get("kind")}


HOURLY = [
    hrow(H0, MIG3, WA, 3600.0, 1800.0),
    hrow(H0, GPUB, WB, 3600.0, 2700.0),
    hrow(H0, GPUC, "", 3600.0, 0.0),
    hrow(H1, MIG3, WA, 1800.0, 0.0),
    hrow(H1, MIG3, "", 1800.0, 0.0),
    hrow(H1, GPUB, WC, 3600.0, 3600.0),
]

# Workload samples (ts relative to H0):
#   alice: cpu 0, 60, 180, 240, 360 at 0, 60, 120, 180, 240 -> rates 1, 2, 1, 2 -> sorted [1, 1, 2, 2]
#          p50: position 1.5 -> 1.5; p95: position 2.85 -> 2 + 0 * 0.85 = 2.0
#          suggested 2.0 * 1.25 = 2.5 (already a multiple of 0.5); requested 4 -> reduction 1.5
#          mem 1000, 2000, 1500, 3000, 2500 -> sorted [1000, 1500, 2000, 2500, 3000]
#          p50 2000; p95: position 3.8 -> 2500 + 500 * 0.8 = 2900
#          suggested 2900 * 1.25 = 3625 -> up to 256: 15 * 256 = 3840; requested 8192 -> reduction 4352
#   bob:   cpu 100, 340, 640, 10 (counter reset: skipped), 250, 610 at 0, 30, 60, 90, 120, 150
#          -> rates 8, 10, 8, 12 -> sorted [8, 8, 10, 12]; p50: position 1.5 -> 9; p95: position 2.85 -> 10 + 2 * 0.85 = 11.7
#          suggested 11.7 * 1.25 = 14.625 -> 15.0 > requested 8 -> reduction 0
#          mem 30000 x 6 -> p95 30000, suggested 37500 -> 147 * 256 = 37632 > 32768 -> reduction 0
#   carol: asked for 2 GPUs -> not in rightsizing
SAMPLES = (
    [{"workload_id": WA, "ts": H0 + t, "cpu_seconds": c, "mem_mib": m}
     for t, c, m in ((0, 0, 1000), (60, 60, 2000), (120, 180, 1500), (180, 240, 3000), (240, 360, 2500))] +
    [{"workload_id": WB, "ts": H0 + t, "cpu_seconds": c, "mem_mib": 30000}
     for t, c in ((0, 100), (30, 340), (60, 640), (90, 10), (120, 250), (150, 610))] +
    [{"workload_id": WC, "ts": H1 + t, "cpu_seconds": 16.0 * t, "mem_mib": 1024} for t in (0, 60, 120)]
)

# The fairshare_targets filter's output (what the playbook writes), physics 0.6 with cms (1.0) below it, ml-infn 0.4.
TARGETS = [
    {"name": "ml-infn", "parent": "", "path": ["ml-infn"], "depth": 1, "share": 0.4, "target": 0.4,
     "accept_surplus": True, "priority_factor": 1000.0},
    {"name": "physics", "parent": "", "path": ["physics"], "depth": 1, "share": 0.6, "target": 0.6,
     "accept_surplus": True, "priority_factor": 1000.0},
    {"name": "cms", "parent": "physics", "path": ["physics", "cms"], "depth": 2, "share": 1.0, "target": 0.6,
     "accept_surplus": True, "priority_factor": 1000.0},
]

EXPECTED_BY_USER = {
    "alice": {"allocated_gpu_hours": 9 / 14, "busy_gpu_hours": 3 / 14, "idle_gpu_hours": 3 / 7, "idle_fraction": 2 / 3,
              "free_gpu_hours": 0.0, "gpus": 3 / 7, "devices": 1, "sessions": 1, "jobs": 0},
    "bob": {"allocated_gpu_hours": 1.0, "busy_gpu_hours": 0.75, "idle_gpu_hours": 0.25, "idle_fraction": 0.25,
            "free_gpu_hours": 0.0, "gpus": 1.0, "devices": 1, "sessions": 0, "jobs": 1},
    "carol": {"allocated_gpu_hours": 1.0, "busy_gpu_hours": 1.0, "idle_gpu_hours": 0.0, "idle_fraction": 0.0,
              "free_gpu_hours": 0.0, "gpus": 1.0, "devices": 1, "sessions": 0, "jobs": 1},
}
EXPECTED_TOTAL = {"allocated_gpu_hours": 37 / 14, "busy_gpu_hours": 27.5 / 14, "idle_gpu_hours": 37 / 14 - 27.5 / 14,
                  "idle_fraction": 1 - 27.5 / 37, "free_gpu_hours": 17 / 14, "gpus": 10 / 7, "devices": 2,
                  "sessions": 1, "jobs": 2}
# Fair share of the 37/14 allocated GPU-hours:
#   physics: carol 1 + cms 9/14 = 23/14 -> 23/37 (0.6216), target 0.6, difference +0.0216
#   cms:     9/14 -> 9/37 (0.2432), target 0.6, difference -0.3568
#   ml-infn: 1 = 14/14 -> 14/37 (0.3784), target 0.4, difference -0.0216
EXPECTED_FAIRSHARE = {
    "ml-infn": (1.0, 14 / 37, 0.4, 14 / 37 - 0.4),
    "physics": (23 / 14, 23 / 37, 0.6, 23 / 37 - 0.6),
    "cms": (9 / 14, 9 / 37, 0.6, 9 / 37 - 0.6),
}
EXPECTED_RIGHTSIZING = {
    WA: {"cpu_p50": 1.5, "cpu_p95": 2.0, "suggested_cpus": 2.5, "cpu_reduction": 1.5, "mem_p50_mib": 2000.0,
         "mem_p95_mib": 2900.0, "suggested_mem_mib": 3840.0, "mem_reduction_mib": 4352.0, "cpu_rates": 4,
         "mem_samples": 5},
    WB: {"cpu_p50": 9.0, "cpu_p95": 11.7, "suggested_cpus": 15.0, "cpu_reduction": 0.0, "mem_p50_mib": 30000.0,
         "mem_p95_mib": 30000.0, "suggested_mem_mib": 37632.0, "mem_reduction_mib": 0.0, "cpu_rates": 4,
         "mem_samples": 6},
}


def check_figures(got, expected):
    for key, value in expected.items():
        if value is None:
            assert got[key] is None, key
        else:
            assert float(got[key]) == pytest.approx(value, abs=1e-9), key


def by_key(groups, by):
    return dict((g[by], g) for g in groups)


# ----------------------------------------------------------------------------------------------- pure rows


def test_by_user_and_total():
    groups, total = report.summarise(HOURLY, "user")
    assert [g["user"] for g in groups] == ["alice", "bob", "carol"]  # nobody's rows belong to no user
    for g in groups:
        check_figures(g, EXPECTED_BY_USER[g["user"]])
    check_figures(total, EXPECTED_TOTAL)


def test_mig_normalisation():
    # One hour of a 3g.40gb slice of an A100 is 3/7 of a GPU-hour; seven 1g.10gb slices make one GPU.
    groups = report.summarise([hrow(H0, MIG3, WA, 3600.0, 3600.0)], "device")[0]
    assert groups[0]["allocated_gpu_hours"] == pytest.approx(3 / 7) and groups[0]["gpus"] == pytest.approx(3 / 7)
    slices = [dict(hrow(H0, MIG3, WA, 3600.0, 0.0), device_uuid="MIG-%d" % i, gpu_fraction=1 / 7) for i in range(7)]
    total = report.summarise(slices, "device")[1]
    assert total["gpus"] == pytest.approx(1.0) and total["allocated_gpu_hours"] == pytest.approx(1.0)
    assert total["devices"] == 7


def test_by_community_device_flavour_kind():
    community = by_key(report.summarise(HOURLY, "community")[0], "community")
    assert sorted(community) == ["cms", "ml-infn", "physics"]
    check_figures(community["cms"], {"allocated_gpu_hours": 9 / 14, "idle_fraction": 2 / 3, "sessions": 1})

    # MIG3: alice 9/14 held, 3/14 busy, 3/14 free; GPUB: bob + carol 2 held, 0.75 + 1 busy -> idle 1 - 1.75/2 = 0.125;
    # GPUC: only free, 1 GPU-hour -> no idle fraction (nothing allocated)
    device = by_key(report.summarise(HOURLY, "device")[0], "device")
    check_figures(device[MIG3], {"allocated_gpu_hours": 9 / 14, "busy_gpu_hours": 3 / 14, "free_gpu_hours": 3 / 14,
                                 "gpus": 3 / 7, "sessions": 1, "jobs": 0})
    check_figures(device[GPUB], {"allocated_gpu_hours": 2.0, "busy_gpu_hours": 1.75, "idle_fraction": 0.125,
                                 "jobs": 2, "sessions": 0})
    check_figures(device[GPUC], {"allocated_gpu_hours": 0.0, "free_gpu_hours": 1.0, "idle_fraction": None,
                                 "gpus": 0.0, "devices": 0})

    # flavour: the workload's, else the device's MIG profile, else its model (carol has none; free rows neither)
    flavour = by_key(report.summarise(HOURLY, "flavour")[0], "flavour")
    assert sorted(flavour) == ["3g.40gb", "NVIDIA H100 80GB HBM3", "gpu-full", "mig-medium"]
    check_figures(flavour["mig-medium"], {"allocated_gpu_hours": 9 / 14})
    check_figures(flavour["3g.40gb"], {"allocated_gpu_hours": 0.0, "free_gpu_hours": 3 / 14})
    check_figures(flavour["NVIDIA H100 80GB HBM3"], {"allocated_gpu_hours": 1.0, "free_gpu_hours": 1.0, "jobs": 1})

    kind = by_key(report.summarise(HOURLY, "kind")[0], "kind")
    check_figures(kind["jupyter"], {"allocated_gpu_hours": 9 / 14, "sessions": 1, "jobs": 0})
    check_figures(kind["condor"], {"allocated_gpu_hours": 2.0, "busy_gpu_hours": 1.75, "sessions": 0, "jobs": 2})

    with pytest.raises(ValueError):
        report.summarise(HOURLY, "host")


def test_nothing_allocated():
    groups, total = report.summarise([], "user")
    assert groups == [] and total["allocated_gpu_hours"] == 0.0 and total["idle_fraction"] is None


def test_percentile_and_rounding():
    assert report.percentile([1, 2, 1, 2], 0.5) == 1.5
    assert report.percentile([1, 2, 1, 2], 0.95) == pytest.approx(2.0)
    assert report.percentile([1000, 2000, 1500, 3000, 2500], 0.95) == pytest.approx(2900.0)
    assert report.percentile([7.0], 0.95) == 7.0 and report.percentile([], 0.5) is None
    assert report.round_up(2.5, 0.5) == 2.5 and report.round_up(2.51, 0.5) == 3.0 and report.round_up(0.0, 0.5) == 0.5
    assert report.round_up(3625.0, 256) == 3840.0 and report.round_up(0.3 * 3, 0.3) == pytest.approx(0.9)


def test_rightsizing_pure():
    usage = report.workload_usage(SAMPLES, WORKLOADS)
    got = dict((r["workload_id"], r) for r in report.rightsizing(usage))
    assert sorted(got) == [WB, WA]  # carol asked for 2 GPUs
    for wid, expected in EXPECTED_RIGHTSIZING.items():
        check_figures(got[wid], expected)
    assert got[WA]["username"] == "alice" and got[WA]["requested_cpus"] == 4.0
    # unknown request or no usage: no reduction
    rows = report.rightsizing([{"workload_id": "x", "requested_gpus": None, "requested_cpus": None, "cpu_p95": 1.0,
                                "requested_mem_mib": 1024.0, "mem_p95_mib": None}])
    assert rows[0]["suggested_cpus"] == 1.5 and rows[0]["cpu_reduction"] is None
    assert rows[0]["suggested_mem_mib"] is None and rows[0]["mem_reduction_mib"] is None


def test_fairshare_pure():
    got = dict((r["community"], r) for r in report.fairshare(HOURLY, TARGETS))
    assert sorted(got) == sorted(EXPECTED_FAIRSHARE)
    for name, (hours, share, target, diff) in EXPECTED_FAIRSHARE.items():
        check_figures(got[name], {"allocated_gpu_hours": hours, "share": share, "target": target, "difference": diff})
    # a plain mapping has no hierarchy: physics is carol alone (14/37); an unknown community has no target
    flat = dict((r["community"], r) for r in report.fairshare(HOURLY, {"physics": 0.6, "cms": 0.6}))
    check_figures(flat["physics"], {"share": 14 / 37, "difference": 14 / 37 - 0.6})
    check_figures(flat["ml-infn"], {"share": 14 / 37, "target": None, "difference": None})
    with pytest.raises(ValueError):
        report.load_targets({"cms": 1.5})


def test_targets_from_the_collections_fairshare():
    # The shape the playbook's fairshare_targets filter writes (module_utils/fairshare.targets), read as it is.
    spec = importlib.util.spec_from_file_location("fairshare_mu", os.path.join(ROOT, "plugins", "module_utils",
                                                                               "fairshare.py"))
    mu = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mu)
    targets = json.loads(json.dumps(mu.targets([{"name": "physics", "share": 0.6},
                                                {"name": "cms", "parent": "physics", "share": 1.0},
                                                {"name": "ml-infn", "share": 0.4}])))
    loaded = report.load_targets(targets)
    assert loaded["cms"] == {"target": 0.6, "parent": "physics", "path": ["physics", "cms"]}
    assert report.fairshare(HOURLY, targets) == report.fairshare(HOURLY, TARGETS)


def test_time_parsing():
    assert report.to_epoch("2026-11-30T10:00:00Z") == H0
    assert report.to_epoch("2026-11-30T11:00:00+01:00") == H0
    assert report.to_epoch("2026-11-30 10:00") == H0 and report.to_epoch("2026-11-30") == H0 - 36000
    assert report.iso(H0) == "2026-11-30T10:00:00Z"


def test_plots(tmp_path):
    mpl_image = pytest.importorskip("matplotlib.image")
    paths = report.plots(HOURLY, str(tmp_path / "plots"))
    assert sorted(os.path.basename(p) for p in paths) == ["heatmap.png", "idle.png", "usage.png"]
    for path in paths:
        with open(path, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
        img = mpl_image.imread(path)
        assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100 and img.shape[2] in (3, 4)
        assert float(img[:, :, :3].std()) > 0.01  # something is drawn
    # the data behind them
    hours, series = report.usage_series(HOURLY)
    assert hours == [H0, H1] and series["cms"] == pytest.approx([3 / 7, 3 / 14])
    assert series["physics"] == pytest.approx([0.0, 1.0])
    assert report.idle_by_user(HOURLY) == [("alice", pytest.approx(3 / 7)), ("bob", 0.25), ("carol", 0.0)]
    devices, hours, matrix = report.busy_heatmap(HOURLY)
    assert devices == [GPUB, GPUC, MIG3] and matrix == [[0.75, 1.0], [0.0, None], [0.5, 0.0]]
    # empty data still gives pictures
    assert len(report.plots([], str(tmp_path / "empty"))) == 3


def test_table_is_aligned():
    text = report.format_table(report.build({"start": H0, "end": H0 + 7200, "hourly": HOURLY, "usage": []}, "user"))
    lines = text.splitlines()
    assert lines[0].startswith("GPU usage by user, 2026-11-30T10:00:00Z to 2026-11-30T12:00:00Z")
    header, rule = lines[1], lines[2]
    assert header.split() == ["user"] + list(report.GROUP_FIELDS)
    assert set(rule.replace(" ", "")) == {"-"}
    body = lines[3:7]
    assert [b.split()[0] for b in body] == ["alice", "bob", "carol", "TOTAL"]
    assert len(set(len(b) for b in body)) == 1  # numbers right-aligned under their headers
    assert body[0].split()[1] == "0.643"


# ----------------------------------------------------------------------------------------------- database


def records():
    """What the collectors would ship for the fixture: 900 s samples, so an hour is 4 of them."""
    out = []
    for d in DEVICES.values():
        out.append(("device", dict(d, first_seen=H0, last_seen=H1 + 2700)))
    for w in WORKLOADS.values():
        out.append(("workload", dict(w, started=H0, first_seen=H0, last_seen=H1 + 2700, cpu_seconds=None,
                                     mem_peak_mib=None)))

    def gpu(ts, device, holder, util, procs):
        out.append(("gpu_sample", {"ts": ts, "host": DEVICES[device]["host"], "device_uuid": device,
                                   "workload_id": holder, "util_pct": util, "mem_used_mib": 100.0, "power_w": None,
                                   "processes": procs, "interval_s": 900.0}))
        if holder:
            out.append(("allocation", {"workload_id": holder, "device_uuid": device, "host": DEVICES[device]["host"],
                                       "started": ts, "ended": ts}))

    for i in range(4):
        gpu(H0 + 900 * i, MIG3, WA, None, 1 if i < 2 else 0)       # MIG: busy by process, 2 x 900 = 1800 s
        gpu(H0 + 900 * i, GPUB, WB, 50.0 if i < 3 else 0.0, 1)      # 3 x 900 = 2700 s busy
        gpu(H0 + 900 * i, GPUC, None, 0.0, 0)                       # free
        gpu(H1 + 900 * i, MIG3, WA if i < 2 else None, None, 0)    # alice 1800 s, then free 1800 s
        gpu(H1 + 900 * i, GPUB, WC, 90.0, 1)                        # 3600 s busy
    for s in SAMPLES:
        out.append(("workload_sample", dict(s, interval_s=60.0)))
    return out


@pytest.fixture
def shipped(pg, pg_server):
    ship.ship(pg, records())
    conn = psycopg2.connect(pg_server.dsn(user="accounting_reporting"))
    yield conn
    conn.close()


def test_reporting_role_is_read_only(shipped):
    with pytest.raises(psycopg2.Error):
        with shipped:
            shipped.cursor().execute("INSERT INTO device VALUES ('x', 'h', NULL, 'm', NULL, 1, now(), now())")


def test_end_to_end_through_the_database(shipped):
    data = report.fetch(shipped, H0 + 1200, H1 + 3600)  # from is rounded down to the hour
    assert data["start"] == H0 and len(data["hourly"]) == 6
    # the roll-up gives the same figures as the hand-made rows
    for by in report.BY:
        got, got_total = report.summarise(data["hourly"], by)
        want, want_total = report.summarise(HOURLY, by)
        assert [g[by] for g in got] == [g[by] for g in want], by
        for g, w in zip(got + [got_total], want + [want_total]):
            check_figures(g, dict((k, w[k]) for k in report.GROUP_FIELDS))
    for g in report.summarise(data["hourly"], "user")[0]:
        check_figures(g, EXPECTED_BY_USER[g["user"]])
    # the database's percentiles are those of workload_usage() on the same samples
    got = dict((r["workload_id"], r) for r in report.rightsizing(data["usage"]))
    assert sorted(got) == [WB, WA]
    for wid, expected in EXPECTED_RIGHTSIZING.items():
        check_figures(got[wid], expected)
    fair = dict((r["community"], r) for r in report.fairshare(data["hourly"], TARGETS))
    for name, (hours, share, target, diff) in EXPECTED_FAIRSHARE.items():
        check_figures(fair[name], {"allocated_gpu_hours": hours, "share": share, "target": target, "difference": diff})
    # one hour only: H1
    later = report.fetch(shipped, H1, H1 + 3600, rightsizing=False)
    assert sorted(r["hour"] for r in later["hourly"]) == [H1] * 3 and later["usage"] == []
    assert shipped.get_transaction_status() == 0  # fetch's read-only transaction is over


def test_run_is_fetch_then_build(shipped):
    out = report.run(shipped, H0, H1 + 3600, by="community", rightsizing=True, targets={"cms": 0.36, "physics": 0.24})
    assert [r["community"] for r in out["rows"]] == ["cms", "ml-infn", "physics"]
    check_figures(out["total"], EXPECTED_TOTAL)
    assert sorted(r["workload_id"] for r in out["rightsizing"]) == [WB, WA]
    assert dict((r["community"], r["target"]) for r in out["fairshare"]) == {"cms": 0.36, "physics": 0.24,
                                                                             "ml-infn": None}
    assert json.loads(report.format_json(out)) == out


def test_user_sees_only_their_own(shipped):
    data = report.fetch(shipped, H0, H1 + 3600, user="alice")
    assert data["hourly"] and all(r["username"] == "alice" for r in data["hourly"])
    assert [r["workload_id"] for r in data["usage"]] == [WA]
    groups, total = report.summarise(data["hourly"], "user")
    assert [g["user"] for g in groups] == ["alice"]
    check_figures(total, dict(EXPECTED_BY_USER["alice"], free_gpu_hours=0.0))
    text = report.format_table(report.build(data, "device", True, TARGETS))
    assert "bob" not in text and "carol" not in text and WB not in text


def test_cli_csv_and_json(shipped, pg_server, tmp_path, capsys):
    targets = tmp_path / "targets.json"
    targets.write_text(json.dumps(TARGETS))
    dsn_file = tmp_path / "dsn"
    dsn_file.write_text(pg_server.dsn(user="accounting_reporting") + "\n")
    common = ["--from", "2026-11-30T10:00:00Z", "--to", "2026-11-30T12:00:00Z", "--by", "user", "--rightsizing",
              "--fairshare", str(targets)]

    assert report.main(["--dsn", pg_server.dsn(user="accounting_reporting"), "--format", "json"] + common) == 0
    parsed = json.loads(capsys.readouterr().out)
    assert parsed["from"] == "2026-11-30T10:00:00Z" and parsed["by"] == "user"
    for g in parsed["rows"]:
        check_figures(g, EXPECTED_BY_USER[g["user"]])
    check_figures(parsed["total"], EXPECTED_TOTAL)
    for r in parsed["rightsizing"]:
        check_figures(r, EXPECTED_RIGHTSIZING[r["workload_id"]])
    for r in parsed["fairshare"]:
        hours, share, target, diff = EXPECTED_FAIRSHARE[r["community"]]
        check_figures(r, {"allocated_gpu_hours": hours, "share": share, "target": target, "difference": diff})

    plots = tmp_path / "plots"
    assert report.main(["--dsn-file", str(dsn_file), "--format", "csv", "--plots", str(plots), "--progress"]
                       + common) == 0
    out, err = capsys.readouterr()
    assert "fedgpu-report:" in err and "hourly rows" in err and "heatmap.png" in err
    assert sorted(os.listdir(plots)) == ["heatmap.png", "idle.png", "usage.png"]
    usage, sizing, fair = report.parse_csv(out)
    assert list(csv.reader(io.StringIO(out)))[0] == ["user"] + list(report.GROUP_FIELDS)
    assert [r["user"] for r in usage] == ["alice", "bob", "carol", "TOTAL"]
    for r in usage:
        want = EXPECTED_TOTAL if r["user"] == "TOTAL" else EXPECTED_BY_USER[r["user"]]
        check_figures(r, want)
    assert dict((r["workload_id"], r["username"]) for r in sizing) == {WA: "alice", WB: "bob"}
    for r in sizing:
        check_figures(r, EXPECTED_RIGHTSIZING[r["workload_id"]])
    for r in fair:
        hours, share, target, diff = EXPECTED_FAIRSHARE[r["community"]]
        check_figures(r, {"allocated_gpu_hours": hours, "share": share, "target": target, "difference": diff})
    # the same figures in both formats
    assert float(usage[0]["allocated_gpu_hours"]) == parsed["rows"][0]["allocated_gpu_hours"]


def test_cli_defaults_and_errors(shipped, pg_server, capsys):
    # default: the last 7 days by community as a table
    assert report.main(["--dsn", pg_server.dsn(user="accounting_reporting")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("GPU usage by community") and "TOTAL" in out
    assert report.main(["--dsn", pg_server.dsn(user="accounting_reporting"), "--from", "2026-12-01",
                        "--to", "2026-11-01"]) == 2
    assert report.main(["--dsn", pg_server.dsn(user="nobody"), "--from", "2026-11-30"]) == 1
    assert "database:" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        report.main(["--dsn", "x", "--by", "host"])

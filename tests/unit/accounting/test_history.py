# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""HTCondor's finished jobs from the access point's history, into the same tables once each.

tests/unit/fixtures/htcondor/condor_history.json: its first ad is what HTCondor 23.9.6's
``condor_history -json -completedsince ... -attributes ...`` printed on the local platform's front end
for alice's MIG job; the others are written in the same form: bob's two-GPU job with CPU time and memory,
dave's job assigned a device by index (no UUID), and a job removed before it ran (no completion date).
"""

import json
import os

import pytest

from fedgpu_accounting import collector as collector_mod
from fedgpu_accounting import history, ship

FIXTURE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures", "htcondor",
                       "condor_history.json")
MIG = "MIG-13f65033-b0cb-5e2c-8352-4c3bdddae93e"
GPUS = ["GPU-1a2b3c4d-0000-4000-8000-000000000001", "GPU-1a2b3c4d-0000-4000-8000-000000000002"]


def ads():
    with open(FIXTURE) as handle:
        return json.load(handle)


class History:
    """condor_history: the fixture's jobs completed at or after -completedsince; the calls it got."""

    def __init__(self, jobs=None, status=0, text=None):
        self.jobs = ads() if jobs is None else jobs
        self.status = status
        self.text = text
        self.calls = []

    def __call__(self, argv):
        self.calls.append(argv)
        if self.text is not None or self.status:
            return self.status, self.text or ""
        since = int(argv[argv.index("-completedsince") + 1])
        done = [ad for ad in self.jobs if ad.get("CompletionDate", 0) >= since]
        return 0, json.dumps(done, indent=2) if done else ""


def by_kind(records, kind):
    return [row for k, row in records if k == kind]


def test_finished_jobs_become_workloads_and_allocations():
    records = history.records(ads(), "fg-frontend")
    work = {w["workload_id"]: w for w in by_kind(records, "workload")}
    assert sorted(work) == ["condor:fg-frontend#3.0#1796648035", "condor:fg-frontend#7.0#1796640000",
                            "condor:fg-frontend#8.0#1796651000"]  # the removed job (no completion) is not there
    alice = work["condor:fg-frontend#3.0#1796648035"]
    assert (alice["username"], alice["community"], alice["host"], alice["kind"], alice["source"]) == (
        "alice", "cms", "fg-gpu1", "condor", "history")
    assert (alice["started"], alice["ended"], alice["first_seen"], alice["last_seen"]) == (
        1796648035.0, 1796648051.0, 1796648035.0, 1796648051.0)
    assert (alice["requested_cpus"], alice["requested_mem_mib"], alice["requested_gpus"]) == (1.0, 128.0, 1.0)
    assert (alice["wall_seconds"], alice["cpu_seconds"]) == (16.0, 0.0)
    assert alice["mem_peak_mib"] == pytest.approx(3500 / 1024)
    bob = work["condor:fg-frontend#7.0#1796640000"]
    # the last start counts (a job that restarted); CPU time is user + system
    assert (bob["community"], bob["host"], bob["started"], bob["cpu_seconds"], bob["mem_peak_mib"]) == (
        "ml-infn", "fg-gpu2", 1796644500.0, 7200.0, 8192.0)
    dave = work["condor:fg-frontend#8.0#1796651000"]
    assert dave["cpu_seconds"] is None and dave["mem_peak_mib"] is None and dave["host"] == "fg-gpu3"
    allocations = sorted((a["workload_id"], a["device_uuid"], a["started"], a["ended"])
                         for a in by_kind(records, "allocation"))
    assert allocations == [("condor:fg-frontend#3.0#1796648035", MIG, 1796648035.0, 1796648051.0)] + [
        ("condor:fg-frontend#7.0#1796640000", uuid, 1796644500.0, 1796651700.0) for uuid in GPUS]
    # dave's "CUDA0" names no device without the execute point: no allocation from the history
    assert history.latest(ads()) == 1796651800.0


def test_query_asks_for_the_attributes_since_a_time():
    runner = History()
    got = history.query(1796650000.7, runner=runner)
    argv = runner.calls[0]
    assert argv[:4] == ["condor_history", "-json", "-completedsince", "1796650000"]
    assert argv[4] == "-attributes" and set(argv[5].split(",")) == set(history.ATTRIBUTES)
    assert [ad["ClusterId"] for ad in got] == [7, 8]
    assert history.query(1796660000, runner=runner) == []  # nothing completed since: empty output


@pytest.mark.parametrize("runner,message", [
    (History(status=1), "condor_history exited 1"),
    (History(text="ERROR: Failed to connect"), "printed no JSON"),
    (History(text='{"ClusterId": 1}'), "not a list of ads"),
])
def test_query_failures_raise(runner, message):
    with pytest.raises(history.HistoryError, match=message):
        history.query(0, runner=runner)


def make(tmp_path, runner, clock, **extra):
    config = dict(host="fg-frontend", interval=15, dsn="", spool_path=str(tmp_path / "spool.db"),
                  source="nvidia-smi", condor_execute_dir=str(tmp_path / "execute"), proc_root=str(tmp_path / "proc"),
                  cgroup_root=str(tmp_path / "cgroup"), metrics_port=0, condor_history=True,
                  condor_history_interval=60, condor_history_days=1)
    config.update(extra)
    return collector_mod.Collector(config, runner=runner, clock=clock)


class Clock:
    def __init__(self, t):
        self.t = t

    def __call__(self):
        return self.t


def test_collector_reads_the_history_every_interval_from_its_watermark(tmp_path):
    runner, clock = History(), Clock(1796652000.0)
    col = make(tmp_path, runner, clock)
    assert col.read_history() == 3
    # first read: condor_history_days back, less the overlap
    assert runner.calls[0][3] == str(int(1796652000 - 86400 - history.OVERLAP_S))
    assert col.spool.count() == 6  # 3 workloads, 3 allocations
    assert (tmp_path / "spool.db.history-watermark").read_text().strip() == "1796651800.000"
    clock.t += 30
    assert col.read_history() == 0 and len(runner.calls) == 1  # not yet: every 60 s
    clock.t += 30
    # from the watermark less the overlap (5 min): bob's and dave's jobs again (the same rows when shipped)
    assert col.read_history() == 2
    assert runner.calls[1][3] == str(int(1796651800 - history.OVERLAP_S))
    # a restarted collector goes on from the watermark it kept
    again = make(tmp_path, History(), Clock(1796652100.0))
    assert again.watermark == 1796651800.0
    text = col.metrics.get()
    assert "fedgpu_collector_history_jobs_total{host=\"fg-frontend\"} 5" in text
    assert "fedgpu_collector_history_watermark_timestamp_seconds{host=\"fg-frontend\"} 1796651800" in text


def test_collector_counts_history_errors_and_keeps_its_watermark(tmp_path):
    col = make(tmp_path, History(status=2), Clock(1796652000.0))
    assert col.read_history() == 0
    assert col.counters["history_errors"] == 1 and col.watermark is None
    assert "fedgpu_collector_history_errors_total{host=\"fg-frontend\"} 1" in col.metrics.get()


def test_collector_without_history_never_calls_it(tmp_path):
    runner = History()
    col = make(tmp_path, runner, Clock(1796652000.0), condor_history=False)
    assert col.read_history() == 0 and runner.calls == []
    assert "history_jobs_total" not in col.metrics.get()


def count(conn, sql):
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


def test_history_shipped_twice_is_one_row_and_widens_what_the_collector_saw(pg):
    job = "condor:fg-frontend#3.0#1796648035"
    # what the execute point's collector recorded while the job ran: a first and a last sample
    live = [("workload", {"workload_id": job, "kind": "condor", "host": "fg-gpu1", "username": "alice", "uid": 3001,
                          "community": "cms", "flavour": None, "requested_cpus": 1.0, "requested_mem_mib": 128.0,
                          "requested_gpus": 1.0, "started": 1796648035.0, "first_seen": 1796648040.0,
                          "last_seen": 1796648045.0, "cpu_seconds": 0.5, "mem_peak_mib": 2.0}),
            ("allocation", {"workload_id": job, "device_uuid": MIG, "host": "fg-gpu1", "started": 1796648040.0,
                            "ended": 1796648045.0})]
    ship.ship(pg, live)
    records = history.records(ads(), "fg-frontend")
    ship.ship(pg, records)
    ship.ship(pg, records)
    rows = count(pg, "SELECT workload_id, uid, source, extract(epoch FROM ended)::float8, wall_seconds, cpu_seconds, "
                     "mem_peak_mib, extract(epoch FROM first_seen)::float8 FROM workload ORDER BY workload_id")
    assert len(rows) == 3
    assert rows[0] == (job, 3001, "history", 1796648051.0, 16.0, 0.5, 3500 / 1024,
                       1796648035.0)
    alloc = count(pg, "SELECT device_uuid, extract(epoch FROM started)::float8, extract(epoch FROM ended)::float8 "
                      "FROM allocation WHERE workload_id = '%s'" % job)
    assert alloc == [(MIG, 1796648035.0, 1796648051.0)]
    assert count(pg, "SELECT count(*) FROM allocation") == [(3,)]

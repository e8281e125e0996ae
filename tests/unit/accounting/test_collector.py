# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collector end to end on this machine: devices from the nvidia-smi emulator, workloads from
systemd's answers, records through the spool into the throwaway database; the database going away
and coming back; a crash between commit and acknowledgement; the metrics endpoint."""

import json
import os
import subprocess
import sys
import urllib.request

import psycopg2
import pytest

from fedgpu_accounting import collector as collector_mod

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
EMULATOR = os.path.join(ROOT, "tests", "emulator", "nvidia-smi")


class Node:
    """nvidia-smi (the emulator) and systemctl (alice's server holding the first MIG device)."""

    def __init__(self, tmp_path):
        self.state = str(tmp_path / "gpu.json")
        self.env = dict(os.environ, FAKE_NVIDIA_SMI_STATE=self.state)
        self.smi("--emulator-init", "A100-SXM4-80GB")
        self.smi("-i", "0", "-mig", "1")
        self.smi("mig", "-cgi", "1g.10gb,1g.10gb,3g.40gb", "-C")
        self.migs = [line.split("UUID: ")[1].rstrip(")") for line in self.smi("-L").splitlines() if "MIG " in line]
        self.units = []

    def smi(self, *args):
        proc = subprocess.run([sys.executable, EMULATOR] + list(args), env=self.env, capture_output=True, text=True,
                              check=True)
        return proc.stdout

    def hold(self, user, device, invocation="0123456789abcdef0123456789abcdef"):
        unit = "jupyter-%s-singleuser.service" % user
        self.units.append((unit, "Id=%s\nUser=%s\nInvocationID=%s\nEnvironment=CUDA_VISIBLE_DEVICES=%s "
                                 "JUPYTERHUB_USER=%s FEDGPU_FLAVOUR=mig-1g FEDGPU_COMMUNITY=cms\n"
                                 "ControlGroup=/system.slice/%s\nCPUQuotaPerSecUSec=2s\nMemoryMax=4294967296\n"
                                 "ActiveEnterTimestamp=Mon 2026-12-07 09:00:00 UTC\nMainPID=0\nEnvironmentFiles=\n"
                                 % (unit, user, invocation, device, user, unit)))

    def __call__(self, argv):
        if os.path.basename(argv[0]) == "nvidia-smi":
            proc = subprocess.run([sys.executable, EMULATOR] + list(argv[1:]), env=self.env, capture_output=True,
                                  text=True, check=False)
            return proc.returncode, proc.stdout
        if argv[0] == "systemctl" and "list-units" in argv:
            return 0, "".join("%s loaded active running x\n" % unit for unit, _text in self.units)
        if argv[0] == "systemctl" and "show" in argv:
            return 0, "".join(text for unit, text in self.units if unit in argv)
        return 1, ""


@pytest.fixture
def node(tmp_path):
    return Node(tmp_path)


def make(tmp_path, node, dsn="", clock=None, connect=None, **extra):
    config = dict(host="fg-gpu1", interval=15, dsn=dsn, spool_path=str(tmp_path / "spool" / "spool.db"),
                  source="nvidia-smi", condor_execute_dir=str(tmp_path / "execute"), proc_root=str(tmp_path / "proc"),
                  cgroup_root=str(tmp_path / "cgroup"), metrics_port=0)
    config.update(extra)
    kwargs = {"runner": node}
    if clock:
        kwargs["clock"] = clock
    if connect:
        kwargs["connect"] = connect
    return collector_mod.Collector(config, **kwargs)


class Clock:
    def __init__(self, t):
        self.t = t

    def __call__(self):
        return self.t


def count(conn, sql):
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchone()[0]


def test_records_of_one_sample(tmp_path, node):
    node.hold("alice", node.migs[0])
    records = make(tmp_path, node).sample()
    kinds = [k for k, _row in records]
    # 1 GPU + 3 MIG devices described; samples only for the MIG devices (the GPU in MIG mode hands them out)
    assert kinds.count("device") == 4 and kinds.count("gpu_sample") == 3
    samples = {r["device_uuid"]: r for k, r in records if k == "gpu_sample"}
    held = samples[node.migs[0]]
    assert held["workload_id"] == "jupyter:fg-gpu1:0123456789abcdef0123456789abcdef"
    assert held["util_pct"] is None  # a MIG device reports no utilisation: unknown, not 0
    assert samples[node.migs[1]]["workload_id"] is None
    (alloc,) = [r for k, r in records if k == "allocation"]
    assert alloc["device_uuid"] == node.migs[0]
    (work,) = [r for k, r in records if k == "workload"]
    assert (work["username"], work["community"], work["flavour"], work["requested_cpus"], work["requested_mem_mib"]) == \
        ("alice", "cms", "mig-1g", 2.0, 4096.0)
    fractions = sorted(r["gpu_fraction"] for k, r in records if k == "device")
    assert fractions == pytest.approx([1 / 7, 1 / 7, 3 / 7, 1.0])


def test_outage_spools_then_drains_without_duplicates(tmp_path, node, pg, pg_server):
    node.hold("alice", node.migs[0])
    clock = Clock(1_800_000_000.0)
    down = {"yes": True}

    def connect(dsn):
        if down["yes"]:
            raise psycopg2.OperationalError("connection refused (the test's outage)")
        return psycopg2.connect(dsn)
    col = make(tmp_path, node, dsn=pg_server.dsn(), clock=clock, connect=connect, batch_size=7)
    for _sample in range(4):
        col.sample()
        assert col.ship() == 0
        clock.t += 15
    waiting = col.spool.count()
    assert waiting > 0 and col.counters["ship_errors"] == 4 and col.database_down
    down["yes"] = False
    col.sample()
    total = col.spool.count()
    assert col.ship() == total and total > waiting  # everything, in batches of 7
    assert col.spool.count() == 0 and not col.database_down
    assert count(pg, "SELECT count(*) FROM gpu_sample") == 5 * 3
    assert count(pg, "SELECT count(*) FROM gpu_sample WHERE workload_id IS NOT NULL") == 5
    assert count(pg, "SELECT extract(epoch FROM ended - started) FROM allocation") == 60
    assert count(pg, "SELECT sum(seconds) FROM gpu_hourly WHERE workload_id <> ''") == 75


def test_crash_between_commit_and_ack_counts_nothing_twice(tmp_path, node, pg, pg_server):
    node.hold("alice", node.migs[0])
    clock = Clock(1_800_000_000.0)
    col = make(tmp_path, node, dsn=pg_server.dsn(), clock=clock)
    col.sample()
    batch = col.spool.take(1000)
    # The database committed the batch, then the collector died before deleting it from the spool:
    from fedgpu_accounting import ship
    conn = psycopg2.connect(pg_server.dsn())
    ship.ship(conn, [(k, r) for _rid, k, r in batch])
    conn.close()
    before = [count(pg, "SELECT count(*) FROM %s" % t) for t in ("gpu_sample", "allocation", "workload", "gpu_hourly")]
    # ... restarted, it ships the same records again.
    col2 = make(tmp_path, node, dsn=pg_server.dsn(), clock=clock)
    assert col2.spool.count() == len(batch)
    col2.ship()
    after = [count(pg, "SELECT count(*) FROM %s" % t) for t in ("gpu_sample", "allocation", "workload", "gpu_hourly")]
    assert after == before and col2.spool.count() == 0


def test_busy_process_and_metrics_endpoint(tmp_path, node):
    node.hold("alice", node.migs[0])
    # a process of (an unknown) pid 4242 on alice's slice: busy, utilisation still unknown
    dump = json.loads(node.smi("--emulator-dump"))
    gi, ci = [(g["id"], c["id"]) for g in dump["gpus"][0]["gpu_instances"] for c in g["compute_instances"]
              if c["uuid"] == node.migs[0]][0]
    node.smi("--emulator-add-process", "0:%d:%d:4242:python:1024" % (gi, ci))
    col = make(tmp_path, node, metrics_port=_free_port(), metrics_address="127.0.0.1")
    records = col.sample()
    (proc,) = [r for k, r in records if k == "process_sample"]
    assert proc["device_uuid"] == node.migs[0] and proc["pid"] == 4242
    server = col.serve_metrics()
    try:
        text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % col.cfg["metrics_port"], timeout=5).read().decode()
    finally:
        server.shutdown()
    line = [x for x in text.splitlines() if x.startswith("fedgpu_gpu_busy{") and node.migs[0] in x][0]
    assert 'user="alice"' in line and 'community="cms"' in line and line.endswith(" 1")
    assert not [x for x in text.splitlines() if x.startswith("fedgpu_gpu_utilization_percent{") and "MIG-" in x]
    assert 'fedgpu_collector_spool_records{host="fg-gpu1"}' in text
    assert 'fedgpu_collector_up{host="fg-gpu1",backend="nvidia-smi"} 1' in text
    assert 'fedgpu_collector_devices{host="fg-gpu1"} 4' in text


def test_no_gpu_node_still_runs(tmp_path, node):
    os.remove(node.state)  # the emulator now answers like a host without a driver
    col = make(tmp_path, node)
    assert [k for k, _row in col.sample()] == []
    assert col.counters["read_errors"] == 1 and col.backend is None


def test_config_refuses_unknown_settings(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"_comment": "managed", "interval": 5, "intervall": 5}))
    with pytest.raises(SystemExit, match="unknown settings intervall"):
        collector_mod.load_config(str(path))


def _free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

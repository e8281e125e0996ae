# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Spool and shipping: nothing lost, nothing counted twice, roll-ups equal to the raw samples."""

import calendar
import time

import psycopg2
import pytest

from fedgpu_accounting import ship, spool

T0 = float(calendar.timegm((2026, 11, 30, 0, 20, 0)))
MIG = "MIG-11111111-2222-3333-4444-555555555555"
GPU = "GPU-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"


def batch(start, n, interval=15.0, util=None, holder="jupyter:fg-gpu1:inv1", procs=1):
    records = [("device", {"uuid": MIG, "host": "fg-gpu1", "parent_uuid": GPU, "model": "NVIDIA A100-SXM4-80GB",
                           "mig_profile": "1g.10gb", "gpu_fraction": 1 / 7, "first_seen": start,
                           "last_seen": start + (n - 1) * interval}),
               ("workload", {"workload_id": holder, "kind": "jupyter", "host": "fg-gpu1", "username": "alice",
                             "uid": 3001, "community": "cms", "flavour": "mig-small", "requested_cpus": 2.0,
                             "requested_mem_mib": 4096.0, "requested_gpus": 1 / 7, "started": start,
                             "first_seen": start, "last_seen": start + (n - 1) * interval, "cpu_seconds": 10.0 + n,
                             "mem_peak_mib": 100.0})]
    for i in range(n):
        ts = start + i * interval
        records.append(("gpu_sample", {"ts": ts, "host": "fg-gpu1", "device_uuid": MIG, "workload_id": holder,
                                       "util_pct": util, "mem_used_mib": 512.0, "power_w": None,
                                       "processes": procs, "interval_s": interval}))
        records.append(("allocation", {"workload_id": holder, "device_uuid": MIG, "host": "fg-gpu1", "started": ts,
                                       "ended": ts}))
        records.append(("workload_sample", {"ts": ts, "workload_id": holder, "cpu_seconds": 10.0 + i,
                                            "mem_mib": 100.0, "interval_s": interval}))
    return records


def rows(conn, sql):
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


def test_ship_twice_adds_nothing_and_rollup_matches(pg):
    records = batch(T0 + 2280, 20)  # 20 x 15 s: 00:58:00 .. 00:59:45 and 01:00:00 .. 01:02:45
    ship.ship(pg, records)
    first = rows(pg, "SELECT count(*) FROM gpu_sample"), rows(pg, "SELECT * FROM gpu_hourly ORDER BY hour")
    ship.ship(pg, records)
    assert (rows(pg, "SELECT count(*) FROM gpu_sample"), rows(pg, "SELECT * FROM gpu_hourly ORDER BY hour")) == first
    assert first[0] == [(20,)]
    hourly = rows(pg, "SELECT extract(epoch FROM hour)::float8, samples, seconds, busy_seconds, util_known_seconds "
                      "FROM gpu_hourly ORDER BY hour")
    # 8 samples in hour 00:00, 12 in 01:00; busy by process (a MIG device reports no utilisation)
    assert hourly == [(T0 - 1200, 8, 120.0, 120.0, 0.0), (T0 + 2400, 12, 180.0, 180.0, 0.0)]
    alloc = rows(pg, "SELECT extract(epoch FROM started)::float8, extract(epoch FROM ended)::float8 FROM allocation")
    assert alloc == [(T0 + 2280, T0 + 2280 + 19 * 15)]


def test_partitions_across_months_and_widening(pg):
    # 2026-11-30 23:59:30 .. 2026-12-01 00:00:30: one batch, two monthly partitions
    start = float(calendar.timegm((2026, 11, 30, 23, 59, 30)))
    ship.ship(pg, batch(start, 5))
    parts = rows(pg, "SELECT relname FROM pg_class WHERE relname LIKE 'gpu\\_sample\\_2026%' ORDER BY 1")
    assert ("gpu_sample_202611",) in parts and ("gpu_sample_202612",) in parts
    assert rows(pg, "SELECT count(*) FROM gpu_sample_202611") == [(2,)]
    # A later batch for the same workload widens it; an older one does not narrow it.
    ship.ship(pg, batch(start + 75, 2))
    ship.ship(pg, batch(start, 1))
    got = rows(pg, "SELECT extract(epoch FROM first_seen)::float8, extract(epoch FROM last_seen)::float8, cpu_seconds "
                   "FROM workload")
    assert got == [(start, start + 75 + 15, 15.0)]


def test_idle_allocation_is_not_busy(pg):
    ship.ship(pg, batch(T0, 8, util=None, procs=0))
    assert rows(pg, "SELECT seconds, busy_seconds FROM gpu_hourly") == [(120.0, 0.0)]


def test_failed_batch_leaves_nothing(pg):
    records = batch(T0, 3) + [("gpu_sample", {"ts": T0, "host": "x", "device_uuid": "GPU-x", "interval_s": -1})]
    with pytest.raises(psycopg2.Error):
        ship.ship(pg, records)
    assert rows(pg, "SELECT count(*) FROM gpu_sample") == [(0,)]
    assert rows(pg, "SELECT count(*) FROM workload") == [(0,)]


def test_unknown_kind_refused(pg):
    with pytest.raises(ValueError, match="unknown record kind"):
        ship.ship(pg, [("nonsense", {})])


def test_spool_survives_reopen_and_drops_oldest(tmp_path):
    path = str(tmp_path / "spool.db")
    sp = spool.Spool(path, max_bytes=10_000)
    sp.put([("gpu_sample", {"ts": i, "pad": "x" * 80}) for i in range(50)])
    assert sp.count() == 50 and sp.dropped() == 0
    sp.close()
    sp = spool.Spool(path, max_bytes=10_000)
    assert sp.count() == 50
    sp.put([("gpu_sample", {"ts": 100 + i, "pad": "x" * 80}) for i in range(100)])
    assert sp.size_bytes() <= 10_000 and sp.dropped() > 0
    kept = [r[2]["ts"] for r in sp.take(1000)]
    assert kept == sorted(kept) and kept[-1] == 199 and kept[0] == 200 - len(kept)  # the newest stayed, in order
    taken = sp.take(10)
    sp.ack(taken[-1][0])
    assert sp.count() == len(kept) - 10 and sp.take(1)[0][2]["ts"] == kept[10]


def test_expire_drops_old_raw_keeps_rollups(pg):
    old = time.time() - 200 * 86400
    ship.ship(pg, batch(old, 4))
    ship.ship(pg, batch(time.time() - 60, 2))
    before = rows(pg, "SELECT count(*) FROM gpu_hourly")
    with pg:
        cur = pg.cursor()
        cur.execute("SELECT fedgpu_expire(90)")
    assert rows(pg, "SELECT count(*) FROM gpu_sample") == [(2,)]
    assert rows(pg, "SELECT count(*) FROM gpu_hourly") == before


def test_rollup_rebuild_equals_shipped_rollups(pg):
    ship.ship(pg, batch(T0, 30, util=40.0))
    ship.ship(pg, batch(T0 + 7200, 10, util=0.0, holder="condor:ap#1.0#1"))
    shipped = rows(pg, "SELECT * FROM gpu_hourly ORDER BY hour, workload_id")
    with pg:
        pg.cursor().execute("TRUNCATE gpu_hourly")
    assert ship.rollup(pg) == len(shipped)
    assert rows(pg, "SELECT * FROM gpu_hourly ORDER BY hour, workload_id") == shipped
    # 30 samples at 40 %: util known and busy for all 450 s, util x seconds = 18000
    first = [r for r in shipped if r[3] == "jupyter:fg-gpu1:inv1"]
    assert sum(r[5] for r in first) == 450 and sum(r[6] for r in first) == 450 and sum(r[8] for r in first) == 18000
    # a range rebuild touches only its hours
    assert ship.rollup(pg, lo=T0 + 7200, hi=T0 + 7200 + 3600) == 1

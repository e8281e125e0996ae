# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark of GPU accounting's database path, on a throwaway PostgreSQL over TLS (loopback).

1. Ingest: GPU samples per second into the month-partitioned table through the
   collector's whole shipping path (ship.ship: COPY into a temporary table,
   INSERT ... ON CONFLICT DO NOTHING, the roll-up of the touched hours, one
   transaction per batch of --batch records), against row-by-row INSERT ...
   ON CONFLICT DO NOTHING of the same kind of samples in one transaction, in
   the same run. Goal: at least 50,000 samples/s. Prints both rates and the ratio.
2. Report: a report by community with fair share over --report-samples raw
   samples (default 10 million: 116 devices sampled every 15 s for 15 days,
   made in the server with generate_series, then rolled up), read from the
   roll-ups. Goal: under 2 s. Then the same with rightsizing, whose
   percentiles read the workloads' raw samples (a quarter as many), timed apart.
   Both are timed twice: right after the bulk load, before the tables have
   statistics, and after ANALYZE, which autovacuum runs on a live database
   within a minute of such a change (with statistics the planner reads the
   workload samples in primary-key order, workload then time, and sorts
   nothing for the CPU rates; without, it sorts 2.5 million rows). The goal
   applies to the second: a database being written to continuously has them.

Run from the repository root:  python benchmarks/accounting.py [--samples 200000] [--report-samples 10000000]
Needs Debian's PostgreSQL server binaries and psycopg2 (tests/unit/accounting/pgserver.py).
"""

import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "unit", "accounting"))
sys.path.insert(0, os.path.join(ROOT, "roles", "gpu_accounting", "files"))

import pgserver  # noqa: E402  pylint: disable=wrong-import-position
from fedgpu_accounting import report, ship  # noqa: E402  pylint: disable=wrong-import-position

T0 = 1_796_083_200.0  # 2026-12-01 00:00 UTC


def samples(n, devices=56, start=T0, interval=15.0):
    """n GPU samples over `devices` MIG devices (8 A100 x 7), every `interval` s, half of them held."""
    out = []
    for i in range(n):
        dev, step = i % devices, i // devices
        holder = "jupyter:bench:%d" % (dev // 2) if dev % 2 == 0 else None
        out.append(("gpu_sample", {"ts": start + step * interval, "host": "bench-gpu%d" % (dev // 7),
                                   "device_uuid": "MIG-bench-%04d" % dev, "workload_id": holder,
                                   "util_pct": None, "mem_used_mib": 1024.0, "power_w": None,
                                   "processes": 1 if step % 3 else 0, "interval_s": interval}))
    return out


def ingest_copy(conn, records, batch):
    start = time.perf_counter()
    for i in range(0, len(records), batch):
        ship.ship(conn, records[i:i + batch])
    return len(records) / (time.perf_counter() - start)


def ingest_rows(conn, records):
    cols = ship.COLUMNS["gpu_sample"]
    sql = "INSERT INTO gpu_sample (%s) VALUES (to_timestamp(%%s), %s) ON CONFLICT DO NOTHING" % (
        ", ".join(cols), ", ".join(["%s"] * (len(cols) - 1)))
    start = time.perf_counter()
    with conn:
        cur = conn.cursor()
        times = [row["ts"] for _kind, row in records]
        cur.execute("SELECT fedgpu_ensure_partitions(to_timestamp(%s), to_timestamp(%s))", (min(times), max(times)))
        for _kind, row in records:
            cur.execute(sql, [row[c] for c in cols])
    return len(records) / (time.perf_counter() - start)


def make_report_data(conn, n_samples, devices=116, interval=15.0):
    """n_samples raw samples made in the server (generate_series), then rolled up by ship.rollup."""
    steps = n_samples // devices
    with conn:
        cur = conn.cursor()
        cur.execute("SELECT fedgpu_ensure_partitions(to_timestamp(%s), to_timestamp(%s))",
                    (T0, T0 + steps * interval))
        cur.execute("""
            INSERT INTO device (uuid, host, parent_uuid, model, mig_profile, gpu_fraction, first_seen, last_seen)
            SELECT 'MIG-r-' || d, 'node' || (d / 7), 'GPU-r-' || (d / 7), 'NVIDIA A100-SXM4-80GB',
                   CASE WHEN d %% 7 < 4 THEN '1g.10gb' ELSE '3g.40gb' END,
                   CASE WHEN d %% 7 < 4 THEN 1.0 / 7 ELSE 3.0 / 7 END, to_timestamp(%(t0)s), to_timestamp(%(t0)s)
            FROM generate_series(0, %(devices)s - 1) d""", {"t0": T0, "devices": devices})
        # A workload per device per 4 hours, of 40 users in 3 communities.
        cur.execute("""
            INSERT INTO workload (workload_id, kind, host, username, community, flavour, requested_cpus,
                                  requested_mem_mib, requested_gpus, started, first_seen, last_seen)
            SELECT 'w-' || d || '-' || b, CASE WHEN b %% 2 = 0 THEN 'jupyter' ELSE 'condor' END, 'node' || (d / 7),
                   'user' || ((d * 7 + b) %% 40), (ARRAY['cms', 'physics', 'ml-infn'])[1 + (d + b) %% 3], 'mig',
                   4, 16384, 1, to_timestamp(%(t0)s + b * 14400), to_timestamp(%(t0)s + b * 14400),
                   to_timestamp(%(t0)s + b * 14400 + 14399)
            FROM generate_series(0, %(devices)s - 1) d, generate_series(0, %(blocks)s) b""",
                    {"t0": T0, "devices": devices, "blocks": int(steps * interval // 14400)})
        cur.execute("""
            INSERT INTO gpu_sample (ts, host, device_uuid, workload_id, util_pct, mem_used_mib, power_w, processes,
                                    interval_s)
            SELECT to_timestamp(%(t0)s + s * %(iv)s), 'node' || (d / 7), 'MIG-r-' || d,
                   CASE WHEN (s + d) %% 5 <> 0 THEN 'w-' || d || '-' || floor(s * %(iv)s / 14400)::int END,
                   NULL, 2048, NULL, CASE WHEN (s + d) %% 3 = 0 THEN 0 ELSE 1 END, %(iv)s
            FROM generate_series(0, %(steps)s - 1) s, generate_series(0, %(devices)s - 1) d""",
                    {"t0": T0, "iv": interval, "steps": steps, "devices": devices})
        cur.execute("""
            INSERT INTO workload_sample (ts, workload_id, cpu_seconds, mem_mib, interval_s)
            SELECT to_timestamp(%(t0)s + s * 60), 'w-' || d || '-' || floor(s * 60 / 14400)::int,
                   s * 60 * 1.5, 3000 + (s %% 17) * 100, 60
            FROM generate_series(0, %(steps)s / 4 - 1) s, generate_series(0, %(devices)s - 1) d""",
                    {"t0": T0, "steps": steps, "devices": devices})
    ship.rollup(conn)
    return steps * devices


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--samples", type=int, default=200_000, help="samples shipped with COPY (default 200000)")
    parser.add_argument("--row-samples", type=int, default=20_000, help="samples inserted row by row (default 20000)")
    parser.add_argument("--batch", type=int, default=5000, help="records per shipped transaction (default 5000)")
    parser.add_argument("--report-samples", type=int, default=10_000_000)
    args = parser.parse_args()
    reason = pgserver.missing_reason()
    if reason:
        print("SKIPPED: %s" % reason)
        return 0
    import psycopg2  # pylint: disable=import-outside-toplevel
    with pgserver.Server() as srv:
        conn = psycopg2.connect(srv.dsn())
        copy_rate = ingest_copy(conn, samples(args.samples), args.batch)
        row_rate = ingest_rows(conn, samples(args.row_samples, start=T0 + 10_000_000))
        print("ingest over TLS into the partitioned table (%d samples, batches of %d, roll-ups included):"
              % (args.samples, args.batch))
        print("  COPY + INSERT ON CONFLICT:   %10.0f samples/s (goal >= 50000)" % copy_rate)
        print("  row-by-row INSERT:           %10.0f samples/s (%d samples)" % (row_rate, args.row_samples))
        print("  ratio COPY / row-by-row:     %10.1f" % (copy_rate / row_rate))
        with conn:
            conn.cursor().execute("TRUNCATE device, workload, allocation, gpu_sample, process_sample, "
                                  "workload_sample, gpu_hourly")
        start = time.perf_counter()
        made = make_report_data(conn, args.report_samples)
        print("report data: %d raw samples made and rolled up in %.1f s" % (made, time.perf_counter() - start))
        reporting = psycopg2.connect(srv.dsn(user="accounting_reporting"))
        targets = {"cms": 0.36, "physics": 0.24, "ml-infn": 0.4}
        for stats in ("before statistics", "after ANALYZE"):
            if stats == "after ANALYZE":
                conn.autocommit = True
                conn.cursor().execute("ANALYZE")
                conn.autocommit = False
            print("%s:" % stats)
            start = time.perf_counter()
            out = report.run(reporting, T0, T0 + 30 * 86400, by="community", targets=targets)
            took = time.perf_counter() - start
            print("  report over %d samples from the roll-ups (by community, fair share): %.2f s (goal < 2 s), %d groups"
                  % (made, took, len(out["rows"])))
            start = time.perf_counter()
            out = report.run(reporting, T0, T0 + 30 * 86400, by="community", rightsizing=True, targets=targets)
            print("  the same with rightsizing (p50/p95 over %d workload samples, read raw): %.2f s (goal < 2 s), "
                  "%d workloads" % (made // 4, time.perf_counter() - start, len(out["rightsizing"])))
        reporting.close()
        conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

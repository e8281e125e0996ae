# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shipping spooled records into the accounting database, once each.

One transaction per batch: each kind of record is loaded with ``COPY`` into a
temporary table, then moved on with ``INSERT ... SELECT ... ON CONFLICT``:
samples (keyed by device or workload and time) with ``DO NOTHING``, so that a
batch shipped twice adds no row; devices, workloads and allocations are
widened (first seen = least, last seen = greatest), which gives the same rows
however often a batch comes. The hourly roll-up of every (device, hour) the
batch touched is recomputed from the raw samples in the same transaction, so
the reports never see raw and roll-up disagree. The schema is
roles/accounting_db/files/migrations/0001_gpu_accounting.sql.

``conn`` is a DB-API connection with psycopg2's ``cursor.copy_expert`` (Debian's
python3-psycopg2); the collector connects with a multi-host string and
``target_session_attrs=read-write``, so after a failover it reaches the new
primary.
"""

import csv
import io

# Column order of each kind as COPY receives it (the table's own names).
COLUMNS = {
    "device": ("uuid", "host", "parent_uuid", "model", "mig_profile", "gpu_fraction", "first_seen", "last_seen"),
    "workload": ("workload_id", "kind", "host", "username", "uid", "community", "flavour", "requested_cpus",
                 "requested_mem_mib", "requested_gpus", "started", "first_seen", "last_seen", "cpu_seconds",
                 "mem_peak_mib", "ended", "wall_seconds", "source"),
    "allocation": ("workload_id", "device_uuid", "host", "started", "ended"),
    "gpu_sample": ("ts", "host", "device_uuid", "workload_id", "util_pct", "mem_used_mib", "power_w", "processes",
                   "interval_s"),
    "process_sample": ("ts", "host", "device_uuid", "pid", "uid", "username", "workload_id", "used_mem_mib"),
    "workload_sample": ("ts", "workload_id", "cpu_seconds", "mem_mib", "interval_s"),
}
# Timestamps travel as epoch seconds (float) and become timestamptz here.
TIME_COLUMNS = {"ts", "first_seen", "last_seen", "started", "ended"}
# Where a workload record comes from: a collector's sample (default) or HTCondor's history of finished jobs.
SOURCES = ("collector", "history")
# Load order: what the roll-up reads comes first.
ORDER = ("device", "workload", "allocation", "gpu_sample", "process_sample", "workload_sample")

_SAMPLE_INSERT = "INSERT INTO {t} ({cols}) SELECT {sel} FROM tmp_{t} ON CONFLICT DO NOTHING"

# Upserts that widen: a row seen again (in this batch or a shipped one) keeps its widest bounds.
_UPSERT = {
    "device": """
        INSERT INTO device ({cols})
        SELECT DISTINCT ON (uuid) uuid, host, parent_uuid, model, mig_profile, gpu_fraction,
               min(first_seen) OVER w, max(last_seen) OVER w
        FROM (SELECT {sel} FROM tmp_device) d WINDOW w AS (PARTITION BY uuid)
        ORDER BY uuid, last_seen DESC
        ON CONFLICT (uuid) DO UPDATE SET host = excluded.host, parent_uuid = excluded.parent_uuid,
            model = excluded.model, mig_profile = excluded.mig_profile, gpu_fraction = excluded.gpu_fraction,
            first_seen = least(device.first_seen, excluded.first_seen),
            last_seen = greatest(device.last_seen, excluded.last_seen)""",
    "workload": """
        INSERT INTO workload ({cols})
        SELECT DISTINCT ON (workload_id) workload_id, kind, host, username, uid, community, flavour, requested_cpus,
               requested_mem_mib, requested_gpus, started, min(first_seen) OVER w, max(last_seen) OVER w,
               max(cpu_seconds) OVER w, max(mem_peak_mib) OVER w, max(ended) OVER w, max(wall_seconds) OVER w,
               CASE WHEN bool_or(source = 'history') OVER w THEN 'history' ELSE 'collector' END
        FROM (SELECT {sel} FROM tmp_workload) x WINDOW w AS (PARTITION BY workload_id)
        ORDER BY workload_id, last_seen DESC
        ON CONFLICT (workload_id) DO UPDATE SET
            username = coalesce(excluded.username, workload.username), uid = coalesce(excluded.uid, workload.uid),
            community = coalesce(excluded.community, workload.community),
            flavour = coalesce(excluded.flavour, workload.flavour),
            requested_cpus = coalesce(excluded.requested_cpus, workload.requested_cpus),
            requested_mem_mib = coalesce(excluded.requested_mem_mib, workload.requested_mem_mib),
            requested_gpus = coalesce(excluded.requested_gpus, workload.requested_gpus),
            started = coalesce(least(workload.started, excluded.started), workload.started, excluded.started),
            first_seen = least(workload.first_seen, excluded.first_seen),
            last_seen = greatest(workload.last_seen, excluded.last_seen),
            cpu_seconds = greatest(workload.cpu_seconds, excluded.cpu_seconds),
            mem_peak_mib = greatest(workload.mem_peak_mib, excluded.mem_peak_mib),
            ended = greatest(workload.ended, excluded.ended),
            wall_seconds = greatest(workload.wall_seconds, excluded.wall_seconds),
            -- once HTCondor's history has told of a job, its record says so
            source = CASE WHEN excluded.source = 'history' THEN 'history' ELSE workload.source END""",
    "allocation": """
        INSERT INTO allocation ({cols})
        SELECT workload_id, device_uuid, min(host), min(started), max(ended)
        FROM (SELECT {sel} FROM tmp_allocation) a GROUP BY workload_id, device_uuid
        ON CONFLICT (workload_id, device_uuid) DO UPDATE SET
            started = least(allocation.started, excluded.started),
            ended = greatest(allocation.ended, excluded.ended)""",
}

# The hours of the devices this batch touched (tmp_touched), recomputed from the raw samples.
# busy: utilisation above 0 where the device reports it, else a process on it.
_TOUCHED_BY_BATCH = """
    CREATE TEMP TABLE tmp_touched ON COMMIT DROP AS
        SELECT DISTINCT device_uuid, date_trunc('hour', to_timestamp(ts)) AS hour FROM tmp_gpu_sample"""
_TOUCHED_IN_RANGE = """
    CREATE TEMP TABLE tmp_touched ON COMMIT DROP AS
        SELECT DISTINCT device_uuid, date_trunc('hour', ts) AS hour FROM gpu_sample
        WHERE ts >= coalesce(%(lo)s, '-infinity'::timestamptz) AND ts < coalesce(%(hi)s, 'infinity'::timestamptz)"""
_ROLLUP = """
    DELETE FROM gpu_hourly h USING tmp_touched t WHERE h.device_uuid = t.device_uuid AND h.hour = t.hour;
    INSERT INTO gpu_hourly (hour, host, device_uuid, workload_id, samples, seconds, busy_seconds,
                            util_known_seconds, util_pct_seconds, mem_max_mib)
    SELECT t.hour, min(s.host), s.device_uuid, coalesce(s.workload_id, ''), count(*), sum(s.interval_s),
           coalesce(sum(s.interval_s) FILTER (WHERE coalesce(s.util_pct > 0, s.processes > 0)), 0),
           coalesce(sum(s.interval_s) FILTER (WHERE s.util_pct IS NOT NULL), 0),
           coalesce(sum(s.util_pct * s.interval_s) FILTER (WHERE s.util_pct IS NOT NULL), 0),
           max(s.mem_used_mib)
    FROM tmp_touched t
    JOIN gpu_sample s ON s.device_uuid = t.device_uuid AND s.ts >= t.hour AND s.ts < t.hour + interval '1 hour'
    GROUP BY t.hour, s.device_uuid, coalesce(s.workload_id, '')
"""


def _csv(rows, columns):
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for row in rows:
        # An absent value is NULL (the unquoted empty field of COPY's csv format).
        writer.writerow(["" if row.get(c) is None else row[c] for c in columns])
    buf.seek(0)
    return buf


def _select(kind):
    """The temporary table's columns, timestamps converted from epoch seconds."""
    return ", ".join("to_timestamp(%s) AS %s" % (c, c) if c in TIME_COLUMNS else c for c in COLUMNS[kind])


def _temp_ddl(kind):
    """A temporary table shaped like the real one (its column types read from it), timestamps as epoch seconds."""
    cols = ", ".join("extract(epoch FROM %s)::float8 AS %s" % (c, c) if c in TIME_COLUMNS else c for c in COLUMNS[kind])
    return "CREATE TEMP TABLE tmp_%s ON COMMIT DROP AS SELECT %s FROM %s WITH NO DATA" % (kind, cols, kind)


def ship(conn, records, retention_days=None):
    """Write ``records`` ([(kind, dict), ...]) in one transaction; returns {kind: rows inserted or updated}."""
    by_kind = {}
    for kind, row in records:
        if kind not in COLUMNS:
            raise ValueError("unknown record kind %r" % kind)
        by_kind.setdefault(kind, []).append(row)
    counts = {}
    with conn:  # commit, or roll back on any error
        cur = conn.cursor()
        cur.execute("SET LOCAL TimeZone = 'UTC'")
        times = [r["ts"] for k in ("gpu_sample", "process_sample", "workload_sample") for r in by_kind.get(k, [])]
        if times:
            cur.execute("SELECT fedgpu_ensure_partitions(to_timestamp(%s), to_timestamp(%s))", (min(times), max(times)))
        for kind in ORDER:
            rows = by_kind.get(kind)
            if not rows:
                continue
            cur.execute(_temp_ddl(kind))
            cur.copy_expert("COPY tmp_%s (%s) FROM STDIN WITH (FORMAT csv)" % (kind, ", ".join(COLUMNS[kind])),
                            _csv(rows, COLUMNS[kind]))
            sql = _UPSERT.get(kind, _SAMPLE_INSERT)
            cur.execute(sql.format(t=kind, cols=", ".join(COLUMNS[kind]), sel=_select(kind)))
            counts[kind] = cur.rowcount
        if by_kind.get("gpu_sample"):
            cur.execute(_TOUCHED_BY_BATCH)
            cur.execute(_ROLLUP)
        if retention_days:
            cur.execute("SELECT fedgpu_expire(%s)", (int(retention_days),))
    return counts


def rollup(conn, lo=None, hi=None):
    """Recompute the roll-ups of every device hour with raw samples in [lo, hi) (epoch seconds; None: open).

    Shipping keeps them current by itself; this is for an operator after restoring raw samples, and
    for the benchmark. Hours whose raw samples have expired are left as they are.
    """
    with conn:
        cur = conn.cursor()
        cur.execute("SET LOCAL TimeZone = 'UTC'")
        cur.execute(_TOUCHED_IN_RANGE.replace("%(lo)s", "to_timestamp(%(lo)s)" if lo is not None else "NULL")
                    .replace("%(hi)s", "to_timestamp(%(hi)s)" if hi is not None else "NULL"), {"lo": lo, "hi": hi})
        cur.execute(_ROLLUP)
        return cur.rowcount

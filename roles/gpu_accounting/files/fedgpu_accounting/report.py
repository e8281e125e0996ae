# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""GPU accounting reports: who held the GPUs, how much they used them, what they should ask for.

Reads the accounting database (schema:
roles/accounting_db/files/migrations/0001_gpu_accounting.sql) through the
read-only reporting role: the hourly roll-up ``gpu_hourly`` joined with
``device`` and ``workload``, and, for rightsizing, the per-workload
``workload_sample`` rows aggregated in the database. The raw ``gpu_sample``
table is never read, so a report over months of samples takes about as long
as the number of (device, hour, holder) rows it covers.

Connection
----------
``--dsn`` (or ``--dsn-file``, a file holding it, better for a password) is a
libpq connection string. On the platform it names every database host and
carries ``target_session_attrs=prefer-standby``: the report reads from a
standby when one is up, from the primary otherwise, and never loads the
primary's writers when it need not. Each report runs in one read-only,
repeatable-read transaction (one snapshot: the roll-up and the samples agree).

Period
------
``--from`` / ``--to`` (ISO 8601; without a zone: UTC; default: the last 7
days). The roll-up is hourly: an hour counts when it starts in
[from rounded down to the hour, to). Workload samples count when their time
is in [from, to).

Figures (all GPU figures are normalised to whole GPUs)
-------------------------------------------------------
gpu_fraction
    The share of a physical GPU a device is: 1 for a whole GPU, the MIG
    profile's compute slices over the GPU's (7 on an A100/H100), e.g. a
    1g.10gb slice is 1/7, a 3g.40gb slice 3/7 of an A100.
allocated_gpu_hours
    sum(seconds * gpu_fraction) / 3600 over the roll-up rows held by a
    workload (workload_id != ''): the time a device was seen held, in GPU-hours.
busy_gpu_hours
    sum(busy_seconds * gpu_fraction) / 3600 over the same rows; a sample is
    busy when the device's utilisation was above 0, or, on devices that do
    not report utilisation (MIG devices), when a process ran on it.
idle_gpu_hours
    allocated_gpu_hours - busy_gpu_hours: held but doing nothing.
idle_fraction
    1 - busy / allocated; empty (null) when nothing was allocated.
free_gpu_hours
    sum(seconds * gpu_fraction) / 3600 over rows held by nobody (only when
    grouped by device or flavour, and in the total).
gpus
    The distinct devices the group held in the period, each counted as its
    gpu_fraction (MIG slices normalised to whole GPUs: seven 1g.10gb slices
    make 1.0); ``devices`` is their plain number.
sessions / jobs
    Distinct workloads of kind jupyter (JupyterHub sessions) / condor
    (HTCondor jobs) that held a device in the period.

Grouping (``--by``): user (the workload's username), community, device (its
UUID; MIG devices have their own), flavour (the workload's flavour; where it
has none, the device's MIG profile, else its model), kind (jupyter, condor,
other), workload (each JupyterHub session or HTCondor job). Rows held by
nobody belong to no user, community, kind or workload.

Rightsizing (``--rightsizing``), per workload that asked for at most one GPU
(requested_gpus <= 1, or not recorded) and has samples in the period:
    cpu_p50 / cpu_p95: median and 95th percentile of the CPU rate, (cpu_seconds
    difference) / (time difference) between each workload_sample and the
    previous one of the same workload in the period (pairs with a missing or
    decreasing counter are skipped), in CPUs;
    mem_p50_mib / mem_p95_mib: the same of mem_mib;
    percentiles interpolate linearly between the sorted values (PostgreSQL's
    percentile_cont);
    suggested_cpus = p95 * 1.25 rounded up to a multiple of 0.5 (at least 0.5);
    suggested_mem_mib = p95 * 1.25 rounded up to a multiple of 256 MiB (at least 256);
    cpu_reduction / mem_reduction_mib = requested - suggested when positive, else 0
    (empty when the request or the usage is not known).

Fair share (``--fairshare TARGETS.json``): the targets are the communities'
absolute fractions of the platform, as the collection's ``fairshare_targets``
filter gives them: its list ``[{"name", "parent", "path", "target", ...}]``,
or a plain mapping ``{"community": target_fraction}``. For each community:
    allocated_gpu_hours: its own and, when the targets give the hierarchy
    (``path``), its sub-communities' allocated GPU-hours;
    share = that / all allocated GPU-hours of the report;
    target; difference = share - target (positive: above its target).
A community in use but not in the targets has an empty target.

Output (``--format``): table (aligned text), csv (one section per report
part, separated by an empty line, each with its header row), json (one
object). ``--plots DIR`` also writes usage.png (allocated GPU-hours per hour
per community, stacked), idle.png (idle GPU-hours per user) and heatmap.png
(busy fraction per device per hour: busy_seconds / seconds seen). Progress
lines go to stderr when it is a terminal or with ``--progress``.

A researcher's own report: ``--user NAME`` restricts every figure to NAME's
workloads (what the platform's per-user report wrappers pass).

Cost: everything but rightsizing reads the roll-up only (a month of 116
devices, 10 million raw samples, is ~80,000 roll-up rows: well under a
second). Rightsizing reads the period's workload samples once, in the
database (one ordered pass over the primary key, no rows sent back but one
per workload): 2.5 million samples in about 1.5 s here once the partition
has statistics (autovacuum's ANALYZE); a partition bulk-loaded and read
before that is sorted instead, about 1 s more (benchmarks/accounting.py).

API (for playbooks and tests): fetch() reads, summarise(), rightsizing()
(over workload_usage() rows or fetch()'s "usage"), fairshare(), usage_series(),
idle_by_user() and busy_heatmap() compute (pure functions over plain dicts),
build() / run() assemble one report dict, format_table/csv/json() write it,
plots() draws the PNGs, main() is the command line.

Standard library and psycopg2; matplotlib (Agg) only when plots are asked for.
"""

import argparse
import csv
import datetime
import io
import json
import math
import os
import sys
import time

BY = ("user", "community", "device", "flavour", "kind", "workload")
FORMATS = ("table", "csv", "json")
CHUNK = 20000

CPU_STEP = 0.5
MEM_STEP_MIB = 256.0
HEADROOM = 1.25

GROUP_FIELDS = ("allocated_gpu_hours", "busy_gpu_hours", "idle_gpu_hours", "idle_fraction", "free_gpu_hours",
                "gpus", "devices", "sessions", "jobs")
RIGHTSIZING_FIELDS = ("workload_id", "username", "community", "kind", "flavour", "requested_gpus",
                      "requested_cpus", "cpu_p50", "cpu_p95", "suggested_cpus", "cpu_reduction",
                      "requested_mem_mib", "mem_p50_mib", "mem_p95_mib", "suggested_mem_mib", "mem_reduction_mib",
                      "cpu_rates", "mem_samples")
FAIRSHARE_FIELDS = ("community", "parent", "allocated_gpu_hours", "share", "target", "difference")

# The hourly roll-up with what the figures need of the device and the holder.
_HOURLY_SQL = """
    SELECT extract(epoch FROM h.hour)::float8 AS hour, h.host, h.device_uuid, h.workload_id,
           h.seconds, h.busy_seconds, coalesce(d.gpu_fraction, 1.0) AS gpu_fraction, d.model, d.mig_profile,
           w.username, w.community, w.flavour, w.kind
    FROM gpu_hourly h
    LEFT JOIN device d ON d.uuid = h.device_uuid
    LEFT JOIN workload w ON w.workload_id = h.workload_id AND h.workload_id <> ''
    WHERE h.hour >= to_timestamp(%(start)s) AND h.hour < to_timestamp(%(end)s) {user}
"""
HOURLY_COLUMNS = ("hour", "host", "device_uuid", "workload_id", "seconds", "busy_seconds", "gpu_fraction", "model",
                  "mig_profile", "username", "community", "flavour", "kind")

# Per workload: the CPU rate between consecutive samples and the memory, as percentiles (the same
# definitions as workload_usage() below, computed where the samples are: one ordered pass, one sort per figure).
_USAGE_SQL = """
    WITH s AS (
        SELECT ws.workload_id, ws.ts, ws.cpu_seconds AS cpu, ws.mem_mib::float8 AS mem,
               lag(ws.cpu_seconds) OVER w AS prev_cpu, lag(ws.ts) OVER w AS prev_ts
        FROM workload_sample ws {join}
        WHERE ws.ts >= to_timestamp(%(start)s) AND ws.ts < to_timestamp(%(end)s) {user}
        WINDOW w AS (PARTITION BY ws.workload_id ORDER BY ws.ts ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
    ), u AS (
        SELECT workload_id, count(*) FILTER (WHERE cpu >= prev_cpu AND ts > prev_ts) AS cpu_rates,
               percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (ORDER BY (cpu - prev_cpu) / date_part('epoch', ts - prev_ts))
                   FILTER (WHERE cpu >= prev_cpu AND ts > prev_ts) AS cpu_pct,
               count(mem) AS mem_samples,
               percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (ORDER BY mem) AS mem_pct
        FROM s GROUP BY workload_id
    )
    SELECT u.workload_id, w.username, w.community, w.kind, w.flavour, w.requested_gpus, w.requested_cpus,
           w.requested_mem_mib, u.cpu_rates, u.cpu_pct[1], u.cpu_pct[2], u.mem_samples, u.mem_pct[1], u.mem_pct[2]
    FROM u LEFT JOIN workload w ON w.workload_id = u.workload_id
    ORDER BY u.workload_id
"""
USAGE_COLUMNS = ("workload_id", "username", "community", "kind", "flavour", "requested_gpus", "requested_cpus",
                 "requested_mem_mib", "cpu_rates", "cpu_p50", "cpu_p95", "mem_samples", "mem_p50_mib", "mem_p95_mib")


# ----------------------------------------------------------------------------------------------- time


def to_epoch(value):
    """Epoch seconds from a number, an aware or naive (UTC) datetime, or an ISO 8601 string (naive: UTC)."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        value = datetime.datetime.fromisoformat(text)
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return value.timestamp()
    if isinstance(value, datetime.date):
        return datetime.datetime(value.year, value.month, value.day, tzinfo=datetime.timezone.utc).timestamp()
    raise ValueError("not a time: %r" % (value,))


def iso(epoch):
    """UTC ISO 8601 with a Z, to the second."""
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def hour_floor(epoch):
    return math.floor(epoch / 3600.0) * 3600.0


# ----------------------------------------------------------------------------------------------- fetching


def fetch(conn, start, end, user=None, rightsizing=True, progress=None):
    """What the reports need for [start, end) (times: see to_epoch), restricted to ``user``'s workloads if given.

    Returns {"start", "end" (epoch seconds; start rounded down to the hour), "user", "hourly": [row dicts with
    HOURLY_COLUMNS: gpu_hourly joined with device and workload], "usage": [per-workload CPU and memory
    percentiles from workload_sample (USAGE_COLUMNS), empty unless ``rightsizing``]}. ``progress`` is called
    with a message per fetched chunk. Everything is read in one read-only, repeatable-read transaction when the
    connection is idle and not in autocommit (it is rolled back at the end: nothing is written).
    """
    say = progress or (lambda message: None)
    start = hour_floor(to_epoch(start))
    end = to_epoch(end)
    params = {"start": start, "end": end, "user": user}
    own_tx = not conn.autocommit and conn.get_transaction_status() == 0  # TRANSACTION_STATUS_IDLE
    try:
        if own_tx:
            conn.cursor().execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        hourly = []
        sql = _HOURLY_SQL.format(user="AND w.username = %(user)s" if user is not None else "")
        for chunk in _chunks(conn, sql, params):
            hourly.extend(dict(zip(HOURLY_COLUMNS, r)) for r in chunk)
            say("fetched %d hourly rows" % len(hourly))
        usage = []
        if rightsizing:
            sql = _USAGE_SQL.format(join="JOIN workload wk ON wk.workload_id = ws.workload_id" if user is not None else "",
                                    user="AND wk.username = %(user)s" if user is not None else "")
            for chunk in _chunks(conn, sql, params):
                usage.extend(dict(zip(USAGE_COLUMNS, r)) for r in chunk)
            say("fetched CPU and memory use of %d workloads" % len(usage))
    finally:
        if own_tx:
            conn.rollback()
    return {"start": start, "end": end, "user": user, "hourly": hourly, "usage": usage}


def _chunks(conn, sql, params):
    """The rows of ``sql`` in chunks: a server-side cursor inside a transaction, else a plain one."""
    named = not conn.autocommit
    cur = conn.cursor(name="fedgpu_report_%d" % id(sql)) if named else conn.cursor()
    if named:
        cur.itersize = CHUNK
    try:
        cur.execute(sql, params)
        while True:
            rows = cur.fetchmany(CHUNK)
            if not rows:
                break
            yield rows
    finally:
        cur.close()


# ----------------------------------------------------------------------------------------------- figures


def _key(row, by):
    """The group of a roll-up row (None: the row belongs to no group of this kind)."""
    held = bool(row.get("workload_id"))
    if by == "device":
        return row["device_uuid"]
    if by == "flavour":
        return (row.get("flavour") if held else None) or row.get("mig_profile") or row.get("model") or "unknown"
    if not held:
        return None
    if by == "user":
        return row.get("username")
    if by == "community":
        return row.get("community")
    if by == "kind":
        return row.get("kind")
    if by == "workload":
        return row.get("workload_id")
    raise ValueError("cannot group by %r (one of %s)" % (by, ", ".join(BY)))


class _Acc:
    """Running sums of one group."""

    def __init__(self):
        self.alloc = 0.0
        self.busy = 0.0
        self.free = 0.0
        self.devices = {}
        self.sessions = set()
        self.jobs = set()

    def add(self, row):
        fraction = float(row["gpu_fraction"])
        wid = row.get("workload_id")
        if not wid:
            self.free += float(row["seconds"]) * fraction
            return
        self.alloc += float(row["seconds"]) * fraction
        self.busy += float(row["busy_seconds"]) * fraction
        self.devices[row["device_uuid"]] = fraction
        if row.get("kind") == "jupyter":
            self.sessions.add(wid)
        elif row.get("kind") == "condor":
            self.jobs.add(wid)

    def figures(self):
        alloc, busy = self.alloc / 3600.0, self.busy / 3600.0
        return {
            "allocated_gpu_hours": alloc,
            "busy_gpu_hours": busy,
            "idle_gpu_hours": alloc - busy,
            "idle_fraction": (1.0 - busy / alloc) if alloc > 0 else None,
            "free_gpu_hours": self.free / 3600.0,
            "gpus": sum(self.devices.values(), 0.0),
            "devices": len(self.devices),
            "sessions": len(self.sessions),
            "jobs": len(self.jobs),
        }


def summarise(hourly, by="community"):
    """([group dicts, sorted by key], total dict): the figures of each group (see the module docstring).

    Each group is {by: key, **GROUP_FIELDS}; the total covers every row (the free ones too) and has by: None.
    """
    if by not in BY:
        raise ValueError("cannot group by %r (one of %s)" % (by, ", ".join(BY)))
    groups = {}
    total = _Acc()
    for row in hourly:
        total.add(row)
        key = _key(row, by)
        if key is None and not row.get("workload_id"):
            continue  # held by nobody: no user, community or kind
        groups.setdefault(key, _Acc()).add(row)
    out = []
    for key in sorted(groups, key=lambda k: (k is None, k or "")):
        item = {by: key}
        item.update(groups[key].figures())
        out.append(item)
    tot = {by: None}
    tot.update(total.figures())
    return out, tot


def percentile(values, p):
    """The p-quantile (0..1) with linear interpolation between the sorted values (PostgreSQL's percentile_cont)."""
    ordered = sorted(values)
    if not ordered:
        return None
    pos = p * (len(ordered) - 1)
    lo = int(math.floor(pos))
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def workload_usage(samples, workloads=None):
    """Per-workload CPU and memory percentiles from workload_sample rows, as fetch() gets them from the database.

    ``samples``: dicts with workload_id, ts (epoch seconds), cpu_seconds (cumulative), mem_mib. ``workloads``:
    {workload_id: dict with username, community, kind, flavour, requested_gpus, requested_cpus,
    requested_mem_mib}. The CPU rate is taken between each sample and the previous one of the same workload;
    a pair with a missing or decreasing counter, or no time between them, gives none.
    """
    workloads = workloads or {}
    per = {}
    for s in samples:
        per.setdefault(s["workload_id"], []).append(s)
    out = []
    for wid in sorted(per):
        rows = sorted(per[wid], key=lambda s: to_epoch(s["ts"]))
        rates, mems = [], []
        prev = None
        for s in rows:
            if s.get("mem_mib") is not None:
                mems.append(float(s["mem_mib"]))
            if prev is not None and prev.get("cpu_seconds") is not None and s.get("cpu_seconds") is not None:
                dt = to_epoch(s["ts"]) - to_epoch(prev["ts"])
                dcpu = float(s["cpu_seconds"]) - float(prev["cpu_seconds"])
                if dt > 0 and dcpu >= 0:
                    rates.append(dcpu / dt)
            prev = s
        w = workloads.get(wid, {})
        item = dict((c, w.get(c)) for c in USAGE_COLUMNS)
        item.update(workload_id=wid, cpu_rates=len(rates), cpu_p50=percentile(rates, 0.5),
                    cpu_p95=percentile(rates, 0.95), mem_samples=len(mems), mem_p50_mib=percentile(mems, 0.5),
                    mem_p95_mib=percentile(mems, 0.95))
        out.append(item)
    return out


def round_up(value, step):
    """``value`` rounded up to a multiple of ``step`` (at least one step); a hair of float noise is ignored."""
    if value is None:
        return None
    steps = math.ceil(value / step - 1e-9)
    return max(steps, 1) * step


def rightsizing(usage):
    """Per single-GPU workload (requested_gpus <= 1 or unknown): requests against use and the suggested requests."""
    out = []
    for u in usage:
        gpus = u.get("requested_gpus")
        if gpus is not None and float(gpus) > 1:
            continue
        item = dict((c, u.get(c)) for c in RIGHTSIZING_FIELDS)
        item["suggested_cpus"] = round_up(_mul(u.get("cpu_p95"), HEADROOM), CPU_STEP)
        item["suggested_mem_mib"] = round_up(_mul(u.get("mem_p95_mib"), HEADROOM), MEM_STEP_MIB)
        item["cpu_reduction"] = _reduction(u.get("requested_cpus"), item["suggested_cpus"])
        item["mem_reduction_mib"] = _reduction(u.get("requested_mem_mib"), item["suggested_mem_mib"])
        item["cpu_rates"] = int(u.get("cpu_rates") or 0)
        item["mem_samples"] = int(u.get("mem_samples") or 0)
        out.append(item)
    out.sort(key=lambda i: (i.get("username") or "", i["workload_id"]))
    return out


def _mul(value, factor):
    return None if value is None else float(value) * factor


def _reduction(requested, suggested):
    if requested is None or suggested is None:
        return None
    return max(float(requested) - suggested, 0.0)


def load_targets(data):
    """Fair-share targets from the fairshare_targets filter's list, a {name: target} mapping or {name: {target}}.

    Returns {name: {"target": float, "parent": str, "path": [names from the top]}}.
    """
    if isinstance(data, dict) and isinstance(data.get("targets"), list):
        data = data["targets"]
    out = {}
    if isinstance(data, dict):
        for name, value in data.items():
            if isinstance(value, dict):
                out[str(name)] = {"target": float(value.get("target") or 0.0), "parent": value.get("parent") or "",
                                  "path": list(value.get("path") or [name])}
            else:
                out[str(name)] = {"target": float(value), "parent": "", "path": [str(name)]}
    elif isinstance(data, list):
        for item in data:
            if not isinstance(item, dict) or "name" not in item:
                raise ValueError("fair-share targets: every entry needs a name, got %r" % (item,))
            out[str(item["name"])] = {"target": float(item.get("target") or 0.0), "parent": item.get("parent") or "",
                                      "path": [str(p) for p in (item.get("path") or [item["name"]])]}
    else:
        raise ValueError("fair-share targets: expected a list or a mapping, got %r" % (data,))
    for name, value in out.items():
        if not 0.0 <= value["target"] <= 1.0:
            raise ValueError("fair-share target of %r must be between 0 and 1, got %r" % (name, value["target"]))
    return out


def fairshare(hourly, targets):
    """Each community's share of the allocated GPU-hours against its target (see the module docstring)."""
    targets = load_targets(targets) if not _loaded(targets) else targets
    own = {}
    for row in hourly:
        if row.get("workload_id"):
            community = row.get("community")
            own[community] = own.get(community, 0.0) + float(row["seconds"]) * float(row["gpu_fraction"]) / 3600.0
    total = sum(own.values())
    rolled = dict((name, 0.0) for name in targets)
    for community, hours in own.items():
        if community in targets:
            for name in targets[community]["path"]:
                if name in rolled:
                    rolled[name] += hours
        else:
            rolled[community] = rolled.get(community, 0.0) + hours
    out = []
    for name in sorted(rolled, key=lambda n: (n is None, targets[n]["path"] if n in targets else [n or ""])):
        share = rolled[name] / total if total > 0 else None
        target = targets[name]["target"] if name in targets else None
        out.append({"community": name, "parent": targets[name]["parent"] if name in targets else None,
                    "allocated_gpu_hours": rolled[name], "share": share, "target": target,
                    "difference": None if share is None or target is None else share - target})
    return out


def _loaded(targets):
    return isinstance(targets, dict) and all(isinstance(v, dict) and "path" in v and "target" in v
                                             for v in targets.values())


# ----------------------------------------------------------------------------------------------- plot data


def usage_series(hourly):
    """(hours [epoch], {community: [allocated GPU-hours in each hour]}): every hour from the first to the last."""
    per = {}
    for row in hourly:
        if row.get("workload_id"):
            key = row.get("community") or "(none)"
            cell = per.setdefault(key, {})
            cell[row["hour"]] = cell.get(row["hour"], 0.0) + float(row["seconds"]) * float(row["gpu_fraction"]) / 3600.0
    seen = [h for cells in per.values() for h in cells]
    if not seen:
        return [], {}
    hours = [min(seen) + 3600.0 * i for i in range(int(round((max(seen) - min(seen)) / 3600.0)) + 1)]
    return hours, dict((k, [per[k].get(h, 0.0) for h in hours]) for k in sorted(per))


def idle_by_user(hourly):
    """[(user, idle GPU-hours)], most idle first."""
    groups = summarise(hourly, "user")[0]
    return sorted(((g["user"] or "(none)", g["idle_gpu_hours"]) for g in groups), key=lambda x: (-x[1], x[0]))


def busy_heatmap(hourly):
    """(devices, hours, matrix[device][hour]): busy_seconds / seconds of each device-hour (None: not seen)."""
    cells = {}
    for row in hourly:
        cell = cells.setdefault((row["device_uuid"], row["hour"]), [0.0, 0.0])
        cell[0] += float(row["busy_seconds"])
        cell[1] += float(row["seconds"])
    if not cells:
        return [], [], []
    devices = sorted(set(key[0] for key in cells))
    lo, hi = min(key[1] for key in cells), max(key[1] for key in cells)
    hours = [lo + 3600.0 * i for i in range(int(round((hi - lo) / 3600.0)) + 1)]
    matrix = [[(cells[(d, h)][0] / cells[(d, h)][1]) if (d, h) in cells and cells[(d, h)][1] > 0 else None
               for h in hours] for d in devices]
    return devices, hours, matrix


def plots(hourly, directory, progress=None):
    """Write usage.png, idle.png and heatmap.png into ``directory``; returns their paths."""
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
    say = progress or (lambda message: None)
    os.makedirs(directory, exist_ok=True)
    paths = []

    def when(epochs):
        return [datetime.datetime.fromtimestamp(h, datetime.timezone.utc) for h in epochs]

    def save(fig, name):
        path = os.path.join(directory, name)
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(path)
        say("wrote %s" % path)

    hours, series = usage_series(hourly)
    fig, ax = plt.subplots(figsize=(10, 5))
    if hours:
        import matplotlib.dates as mdates  # pylint: disable=import-outside-toplevel
        names = list(series)
        # Each value holds for its hour: the steps end one hour after the last (a single hour is a bar, not a line).
        edges = hours + [hours[-1] + 3600]
        ax.stackplot(when(edges), [series[n] + series[n][-1:] for n in names], labels=names, step="post")
        ax.set_xlim(when([edges[0], edges[-1]]))
        locator = mdates.AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        ax.legend(loc="upper left", fontsize="small")
        ax.set_xlabel("UTC")
    else:
        ax.text(0.5, 0.5, "no allocations", ha="center", va="center", transform=ax.transAxes)
    ax.set_title("GPU-hours allocated per hour, by community")
    ax.set_ylabel("GPU-hours (GPUs held)")
    save(fig, "usage.png")

    idle = idle_by_user(hourly)
    fig, ax = plt.subplots(figsize=(10, max(3, 0.3 * len(idle) + 1.5)))
    if idle:
        ax.barh([item[0] for item in idle][::-1], [item[1] for item in idle][::-1], color="tab:orange")
    else:
        ax.text(0.5, 0.5, "no allocations", ha="center", va="center", transform=ax.transAxes)
    ax.set_title("Idle allocations: GPU-hours held but not busy, by user")
    ax.set_xlabel("idle GPU-hours")
    fig.tight_layout()
    save(fig, "idle.png")

    devices, hours, matrix = busy_heatmap(hourly)
    fig, ax = plt.subplots(figsize=(12, max(3, 0.3 * len(devices) + 1.5)))
    if devices:
        data = [[float("nan") if v is None else v for v in row] for row in matrix]
        img = ax.imshow(data, aspect="auto", interpolation="nearest", vmin=0.0, vmax=1.0, cmap="viridis")
        fig.colorbar(img, ax=ax, label="busy fraction")
        ax.set_yticks(range(len(devices)))
        ax.set_yticklabels(devices, fontsize="x-small")
        step = max(1, len(hours) // 12)
        ax.set_xticks(range(0, len(hours), step))
        ax.set_xticklabels([iso(h)[:13].replace("T", " ") for h in hours[::step]], rotation=45, ha="right",
                           fontsize="x-small")
    else:
        ax.text(0.5, 0.5, "no samples", ha="center", va="center", transform=ax.transAxes)
    ax.set_title("Busy fraction per device and hour (UTC)")
    fig.tight_layout()
    save(fig, "heatmap.png")
    return paths


# ----------------------------------------------------------------------------------------------- output


def run(conn, start, end, by="community", user=None, rightsizing=False, targets=None, progress=None):
    """fetch() then build(): the report over [start, end) as one JSON-able dict (see build)."""
    return build(fetch(conn, start, end, user=user, rightsizing=rightsizing, progress=progress), by, rightsizing,
                 targets)


def build(data, by="community", with_rightsizing=False, targets=None):
    """The whole report as one JSON-able dict from fetch()'s result.

    {"from", "to" (ISO, UTC), "by", "user", "rows": [summarise() groups], "total": {...},
    "rightsizing": [...] (with_rightsizing), "fairshare": [...] (targets given: any shape load_targets() reads)}.
    """
    groups, total = summarise(data["hourly"], by)
    report = {"from": iso(data["start"]), "to": iso(data["end"]), "by": by, "user": data.get("user"),
              "rows": groups, "total": total}
    if with_rightsizing:
        report["rightsizing"] = rightsizing(data["usage"])
    if targets is not None:
        report["fairshare"] = fairshare(data["hourly"], targets)
    return report


def _sections(report):
    """[(title, columns, rows)] of a report."""
    by = report["by"]
    total = dict(report["total"])
    total[by] = "TOTAL"
    out = [("GPU usage by %s, %s to %s" % (by, report["from"], report["to"]) +
            (" (user %s)" % report["user"] if report.get("user") else ""),
            (by,) + GROUP_FIELDS, report["rows"] + [total])]
    if "rightsizing" in report:
        out.append(("Rightsizing (single-GPU workloads)", RIGHTSIZING_FIELDS, report["rightsizing"]))
    if "fairshare" in report:
        out.append(("Fair share of allocated GPU-hours", FAIRSHARE_FIELDS, report["fairshare"]))
    return out


def _cell(value):
    if value is None:
        return "-"
    if isinstance(value, float):
        return "%.3f" % value
    return str(value)


def format_table(report):
    lines = []
    for title, columns, rows in _sections(report):
        cells = [list(columns)] + [[_cell(r.get(c)) for c in columns] for r in rows]
        widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
        lines.append(title)
        for n, row in enumerate(cells):
            lines.append("  ".join(v.rjust(w) if i else v.ljust(w) for i, (v, w) in enumerate(zip(row, widths))).rstrip())
            if n == 0:
                lines.append("  ".join("-" * w for w in widths))
        lines.append("")
    return "\n".join(lines)


def format_csv(report):
    """One section per part, separated by an empty line; each starts with its header row; null is empty."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for n, (_title, columns, rows) in enumerate(_sections(report)):
        if n:
            buf.write("\n")
        writer.writerow(columns)
        for r in rows:
            writer.writerow(["" if r.get(c) is None else repr(r[c]) if isinstance(r[c], float) else r[c]
                             for c in columns])
    return buf.getvalue()


def parse_csv(text):
    """format_csv()'s sections back: [[row dicts of strings]]."""
    return [list(csv.DictReader(io.StringIO(part))) for part in text.strip("\n").split("\n\n") if part.strip()]


def format_json(report):
    return json.dumps(report, indent=2, sort_keys=False) + "\n"


# ----------------------------------------------------------------------------------------------- CLI


class Progress:
    """Progress lines on stderr, when it is a terminal or when asked for."""

    def __init__(self, enabled=None, stream=None):
        self.stream = stream or sys.stderr
        self.enabled = enabled if enabled is not None else _isatty(self.stream)
        self.t0 = time.monotonic()

    def __call__(self, message):
        if self.enabled:
            self.stream.write("fedgpu-report: [%6.1fs] %s\n" % (time.monotonic() - self.t0, message))
            self.stream.flush()


def _isatty(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def parser():
    p = argparse.ArgumentParser(
        prog="fedgpu-report",
        description="GPU accounting report from the accounting database (read-only reporting role). "
                    "The DSN normally lists every database host with target_session_attrs=prefer-standby, "
                    "so the report reads from a standby when one is up.",
        epilog="Definitions of the figures: python3 -c 'import fedgpu_accounting.report as r; help(r)'.")
    dsn = p.add_mutually_exclusive_group(required=True)
    dsn.add_argument("--dsn", help="libpq connection string (e.g. 'host=db1,db2 dbname=accounting "
                                   "user=accounting_reporting target_session_attrs=prefer-standby')")
    dsn.add_argument("--dsn-file", help="a file holding the connection string")
    p.add_argument("--from", dest="start", help="start, ISO 8601 (UTC without a zone; default: 7 days before --to)")
    p.add_argument("--to", dest="end", help="end, ISO 8601 (default: now)")
    p.add_argument("--by", choices=BY, default="community", help="grouping (default: community)")
    p.add_argument("--user", help="only this user's workloads")
    p.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
    p.add_argument("--rightsizing", action="store_true", help="add CPU and memory rightsizing per workload")
    p.add_argument("--fairshare", metavar="TARGETS.json", help="add fair share against these targets")
    p.add_argument("--plots", metavar="DIR", help="write usage.png, idle.png and heatmap.png here")
    p.add_argument("--progress", action="store_true", help="progress lines on stderr even when not a terminal")
    return p


def main(argv=None, stdout=None, stderr=None, connect=None):
    """fedgpu-report; returns the exit status (0 ok, 1 failed, 2 bad arguments)."""
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    args = parser().parse_args(argv)
    progress = Progress(True if args.progress else None, stderr)
    try:
        end = to_epoch(args.end) if args.end else time.time()
        start = to_epoch(args.start) if args.start else end - 7 * 86400
    except ValueError as e:
        stderr.write("fedgpu-report: bad time: %s\n" % e)
        return 2
    if start >= end:
        stderr.write("fedgpu-report: --from must be before --to\n")
        return 2
    targets = None
    try:
        if args.fairshare:
            with open(args.fairshare, encoding="utf-8") as f:
                targets = load_targets(json.load(f))
        if args.dsn_file:
            with open(args.dsn_file, encoding="utf-8") as f:
                dsn = f.read().strip()
        else:
            dsn = args.dsn
    except (OSError, ValueError) as e:
        stderr.write("fedgpu-report: %s\n" % e)
        return 2
    if connect is None:
        import psycopg2  # pylint: disable=import-outside-toplevel
        connect = psycopg2.connect
        errors = (psycopg2.Error,)
    else:
        errors = (Exception,)
    try:
        progress("connecting")
        conn = connect(dsn)
        try:
            data = fetch(conn, start, end, user=args.user, rightsizing=args.rightsizing, progress=progress)
        finally:
            conn.close()
    except errors as e:  # pylint: disable=broad-except
        stderr.write("fedgpu-report: database: %s\n" % str(e).strip())
        return 1
    report = build(data, args.by, args.rightsizing, targets)
    if args.plots:
        plots(data["hourly"], args.plots, progress)
    progress("formatting")
    stdout.write({"table": format_table, "csv": format_csv, "json": format_json}[args.format](report))
    return 0


if __name__ == "__main__":
    sys.exit(main())

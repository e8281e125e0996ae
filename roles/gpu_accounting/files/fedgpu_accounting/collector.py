# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""fedgpu-collector: the GPU accounting service of a node that runs user work.

Every ``interval`` seconds it reads each GPU and MIG device (devices.py: NVML
or nvidia-smi), the workloads that hold devices (workloads.py: JupyterHub's
units and HTCondor's jobs), the processes on each device and who they belong
to, and each workload's cgroup figures; it writes them as records to the
durable spool (spool.py) and ships the spool to the accounting database in
batches (ship.py). While the database cannot be reached the spool grows; it
drains when the database is back. A Prometheus text endpoint shows the
current state of every device (its holder's user and community as labels)
and the collector's own counters.

Configuration: a JSON file (``--config``, default /etc/fedgpu/collector.json,
written by the gpu_accounting role) with the keys of DEFAULTS.
"""

import argparse
import json
import logging
import os
import signal
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from fedgpu_accounting import devices as devices_mod
from fedgpu_accounting import history as history_mod
from fedgpu_accounting import ship as ship_mod
from fedgpu_accounting import spool as spool_mod
from fedgpu_accounting import workloads as workloads_mod

LOG = logging.getLogger("fedgpu.collector")

DEFAULTS = {
    "host": None,                    # the node's name in the records (default: the short hostname)
    "interval": 15.0,                # seconds between samples
    "dsn": "",                       # libpq connection string (multi-host, TLS, target_session_attrs=read-write)
    "spool_path": "/var/spool/fedgpu-collector/spool.db",
    "spool_max_bytes": 256 * 1024 * 1024,
    "batch_size": 5000,              # records per shipped transaction
    "retention_days": 90,            # raw samples older than this are expired (once a day)
    "source": "auto",                # auto | nvml | nvidia-smi
    "nvidia_smi": "nvidia-smi",
    "condor_execute_dir": "/var/lib/condor/execute",
    "cgroup_root": "/sys/fs/cgroup",
    "proc_root": "/proc",
    "metrics_address": "127.0.0.1",
    "metrics_port": 9477,            # 0: no endpoint
    "condor_history": False,         # read HTCondor's finished jobs (on an access point)
    "condor_history_interval": 60.0,  # seconds between reads of the history
    "condor_history_command": "condor_history",
    "condor_history_days": 30,       # how far back the first read goes (no watermark yet)
}


class Metrics:
    """What the endpoint shows: the devices' lines (replaced after each sample) and the collector's
    own figures (replaced together after each sample and each shipment, so that one scrape is
    consistent: spool empty and N samples taken up to T means the database has those N samples)."""

    def __init__(self, host):
        self.lock = threading.Lock()
        self.host = host
        self.devices = ""
        self.own = {}

    def set_devices(self, text):
        with self.lock:
            self.devices = text

    def set_own(self, **figures):
        with self.lock:
            self.own = dict(figures)

    def get(self):
        with self.lock:
            devices, own = self.devices, dict(self.own)
        lines = []
        for name, kind, help_text in OWN_METRICS:
            if name not in own:
                continue
            lines.append("# HELP fedgpu_collector_%s %s" % (name, help_text))
            lines.append("# TYPE fedgpu_collector_%s %s" % (name, kind))
            labels = {"host": self.host}
            if name == "up":
                labels["backend"] = own.get("backend") or "none"
            lines.append("fedgpu_collector_%s%s %s" % (name, _labels(**labels), _number(own[name])))
        return devices + "\n".join(lines) + "\n"


OWN_METRICS = (
    ("up", "gauge", "1 while the collector runs (label backend: nvml, nvidia-smi, or none on a node without GPUs)."),
    ("devices", "gauge", "GPUs and MIG devices read in the last sample."),
    ("started_timestamp_seconds", "gauge", "When this collector started."),
    ("samples_total", "counter", "Samples taken since the start (one record per device each)."),
    ("last_sample_timestamp_seconds", "gauge", "Time of the last sample."),
    ("read_errors_total", "counter", "Samples in which the devices could not be read."),
    ("shipped_records_total", "counter", "Records the database committed."),
    ("ship_errors_total", "counter", "Failed shipments (the records stay in the spool)."),
    ("last_ship_timestamp_seconds", "gauge", "Time of the last committed shipment."),
    ("spool_records", "gauge", "Records waiting in the spool."),
    ("spool_bytes", "gauge", "Size of the records waiting in the spool."),
    ("spool_dropped_records_total", "counter", "Records dropped, oldest first, because the spool was full."),
    ("history_jobs_total", "counter", "Finished HTCondor jobs read from the history and spooled (re-reads included)."),
    ("history_errors_total", "counter", "Reads of HTCondor's history that failed."),
    ("history_watermark_timestamp_seconds", "gauge", "Completion time of the latest finished job spooled."),
)


def _number(value):
    return "%d" % value if isinstance(value, bool) or isinstance(value, int) else "%.17g" % float(value)


def _label(value):
    return str(value if value is not None else "").replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**kv):
    return "{" + ",".join('%s="%s"' % (k, _label(v)) for k, v in kv.items()) + "}"


class Collector:
    def __init__(self, config, runner=None, pynvml_module=None, connect=None, clock=time.time):
        self.cfg = dict(DEFAULTS, **config)
        self.host = self.cfg["host"] or socket.gethostname().split(".")[0]
        self.interval = float(self.cfg["interval"])
        self.spool = spool_mod.Spool(self.cfg["spool_path"], self.cfg["spool_max_bytes"])
        self.runner = runner
        self.pynvml = pynvml_module
        self.connect = connect or _psycopg2_connect
        self.clock = clock
        self.conn = None
        self.metrics = Metrics(self.host)
        self.counters = {"samples": 0, "shipped": 0, "ship_errors": 0, "read_errors": 0, "history_jobs": 0,
                         "history_errors": 0}
        self.started = self.clock()
        self.last_sample = 0.0
        self.last_ship = 0.0
        self.last_expire = 0.0
        self.idle_since = {}        # device uuid -> time its holder was first seen idle
        self.database_down = False
        self.backend = None
        self.read_error = None
        self.devices_read = 0
        self.last_history = None
        self.history_error = None
        self.watermark_path = (self.cfg["spool_path"] + ".history-watermark") if self.cfg["condor_history"] else None
        self.watermark = self._read_watermark()

    # ------------------------------------------------------------- sampling
    def sample(self):
        """Read everything once and spool it; returns the records."""
        now = self.clock()
        try:
            found = devices_mod.read(self.cfg["source"], nvidia_smi=self.cfg["nvidia_smi"],
                                     pynvml_module=self.pynvml, runner=self.runner)
        except devices_mod.DeviceReadError as exc:
            # A node without GPUs (a CPU worker) still accounts its workloads' CPU and memory.
            self.counters["read_errors"] += 1
            if str(exc) != self.read_error:
                # No nvidia-smi at all is a node without GPUs, not a fault.
                level = logging.INFO if ": not found (" in str(exc) else logging.ERROR
                LOG.log(level, "cannot read the GPUs (%s): accounting workloads without devices", exc)
            self.read_error = str(exc)
            found = {"backend": None, "devices": [], "processes": []}
        else:
            if self.read_error is not None:
                LOG.info("the GPUs can be read again (%s)", found["backend"])
            self.read_error = None
        self.backend = found["backend"]
        devices = found["devices"]
        self.devices_read = len(devices)
        held = workloads_mod.allocations(self.host, devices, runner=self.runner,
                                         execute_dir=self.cfg["condor_execute_dir"], now=now,
                                         proc_root=self.cfg["proc_root"], cgroup_root=self.cfg["cgroup_root"])
        holder = {}
        for w in held:
            for uuid in w.get("devices") or []:
                holder[uuid] = w
        records = []
        by_id = {w["workload_id"]: w for w in held}
        procs_on = {}
        for proc in found["processes"]:
            who = workloads_mod.attribute(proc["pid"], held, self.host, proc_root=self.cfg["proc_root"]) or {}
            procs_on.setdefault(proc["device_uuid"], []).append((proc, who))
            wid = who.get("workload_id")
            if wid and wid not in by_id:
                # A process outside any known workload: an "other" workload of its uid.
                by_id[wid] = {"workload_id": wid, "kind": who.get("kind") or "other", "host": self.host,
                              "username": who.get("username"), "uid": who.get("uid"), "devices": []}
            records.append(("process_sample", {"ts": now, "host": self.host, "device_uuid": proc["device_uuid"],
                                               "pid": proc["pid"], "uid": who.get("uid"),
                                               "username": who.get("username"), "workload_id": wid,
                                               "used_mem_mib": proc.get("used_mem_mib")}))
        for dev in devices:
            records.append(("device", {"uuid": dev["uuid"], "host": self.host, "parent_uuid": dev.get("parent_uuid"),
                                       "model": dev["model"], "mig_profile": dev.get("mig_profile"),
                                       "gpu_fraction": dev["gpu_fraction"], "first_seen": now, "last_seen": now}))
            if dev.get("mig_enabled"):
                continue  # its MIG devices are what is handed out and sampled
            w = holder.get(dev["uuid"])
            records.append(("gpu_sample", {"ts": now, "host": self.host, "device_uuid": dev["uuid"],
                                           "workload_id": w["workload_id"] if w else None,
                                           "util_pct": dev.get("util_pct"), "mem_used_mib": dev.get("mem_used_mib"),
                                           "power_w": dev.get("power_w"),
                                           "processes": len(procs_on.get(dev["uuid"], [])),
                                           "interval_s": self.interval}))
            if w:
                records.append(("allocation", {"workload_id": w["workload_id"], "device_uuid": dev["uuid"],
                                               "host": self.host, "started": now, "ended": now}))
        for wid, w in by_id.items():
            usage = workloads_mod.cgroup_usage(w["cgroup"], root=self.cfg["cgroup_root"]) if w.get("cgroup") else None
            records.append(("workload", {
                "workload_id": wid, "kind": w.get("kind") or "other", "host": self.host,
                "username": w.get("username"), "uid": w.get("uid"), "community": w.get("community"),
                "flavour": w.get("flavour"), "requested_cpus": w.get("requested_cpus"),
                "requested_mem_mib": w.get("requested_mem_mib"), "requested_gpus": w.get("requested_gpus"),
                "started": w.get("started"), "first_seen": now, "last_seen": now,
                "cpu_seconds": usage["cpu_seconds"] if usage else None,
                "mem_peak_mib": (usage.get("mem_peak_mib") or usage.get("mem_mib")) if usage else None}))
            if usage:
                records.append(("workload_sample", {"ts": now, "workload_id": wid,
                                                    "cpu_seconds": usage["cpu_seconds"],
                                                    "mem_mib": usage.get("mem_mib"), "interval_s": self.interval}))
        self.spool.put(records)
        self.counters["samples"] += 1
        self.last_sample = now
        self._update_metrics(now, devices, holder, procs_on)
        self._update_own()
        return records

    # ------------------------------------------------------------- HTCondor's history
    def _read_watermark(self):
        if not self.watermark_path:
            return None
        try:
            with open(self.watermark_path, encoding="utf-8") as f:
                return float(f.read().strip())
        except (OSError, ValueError):
            return None

    def _write_watermark(self, value):
        tmp = self.watermark_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("%.3f\n" % value)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.watermark_path)

    def read_history(self):
        """Spool the jobs the access point's history has finished since the watermark; returns how many.

        Every condor_history_interval seconds. The watermark (the latest completion spooled) is kept
        beside the spool and moves only after the records are in the spool; each read starts a little
        before it, and what is read twice ships as the same rows.
        """
        if not self.cfg["condor_history"]:
            return 0
        now = self.clock()
        if self.last_history is not None and now - self.last_history < float(
                self.cfg["condor_history_interval"]):
            return 0
        self.last_history = now
        since = (self.watermark if self.watermark is not None
                 else now - float(self.cfg["condor_history_days"]) * 86400) - history_mod.OVERLAP_S
        try:
            ads = history_mod.query(since, runner=self.runner, command=self.cfg["condor_history_command"])
        except history_mod.HistoryError as exc:
            self.counters["history_errors"] += 1
            if str(exc) != self.history_error:
                LOG.error("cannot read HTCondor's history: %s", exc)
            self.history_error = str(exc)
            self._update_own()
            return 0
        self.history_error = None
        records = history_mod.records(ads, self.host)
        jobs = sum(1 for kind, dummy in records if kind == "workload")
        if records:
            self.spool.put(records)
        latest = history_mod.latest(ads)
        if latest is not None and (self.watermark is None or latest > self.watermark):
            self.watermark = latest
            self._write_watermark(latest)
        self.counters["history_jobs"] += jobs
        self._update_own()
        return jobs

    def _update_own(self):
        figures = {}
        if self.cfg["condor_history"]:
            figures = {"history_jobs_total": self.counters["history_jobs"],
                       "history_errors_total": self.counters["history_errors"],
                       "history_watermark_timestamp_seconds": self.watermark or 0}
        self.metrics.set_own(
            **figures, up=1, backend=self.backend, devices=self.devices_read, started_timestamp_seconds=self.started,
            samples_total=self.counters["samples"], last_sample_timestamp_seconds=self.last_sample,
            read_errors_total=self.counters["read_errors"], shipped_records_total=self.counters["shipped"],
            ship_errors_total=self.counters["ship_errors"], last_ship_timestamp_seconds=self.last_ship,
            spool_records=self.spool.count(), spool_bytes=self.spool.size_bytes(),
            spool_dropped_records_total=self.spool.dropped())

    # ------------------------------------------------------------- shipping
    def ship(self):
        """Ship the spool in batches until it is empty or the database fails; returns records shipped."""
        if not self.cfg["dsn"]:
            return 0
        shipped = 0
        while True:
            batch = self.spool.take(self.cfg["batch_size"])
            if not batch:
                break
            try:
                if self.conn is None or self.conn.closed:
                    self.conn = self.connect(self.cfg["dsn"])
                expire = self.cfg["retention_days"] if self.clock() - self.last_expire > 86400 else None
                ship_mod.ship(self.conn, [(kind, row) for _rid, kind, row in batch], retention_days=expire)
                if expire:
                    self.last_expire = self.clock()
            except Exception as exc:  # pylint: disable=broad-except  # any database error: keep the spool, retry later
                self.counters["ship_errors"] += 1
                if not self.database_down:
                    LOG.error("cannot ship to the accounting database (%s): spooling until it is back",
                              str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
                self.database_down = True
                self._close()
                break
            self.spool.ack(batch[-1][0])
            shipped += len(batch)
            self.counters["shipped"] += len(batch)
            self.last_ship = self.clock()
        if shipped and self.database_down:
            LOG.warning("the accounting database is back: shipped %d spooled records", shipped)
            self.database_down = False
        self._update_own()
        return shipped

    def _close(self):
        try:
            if self.conn is not None:
                self.conn.close()
        except Exception:  # pylint: disable=broad-except
            pass
        self.conn = None

    # ------------------------------------------------------------- metrics
    def _update_metrics(self, now, devices, holder, procs_on):
        lines = [
            "# HELP fedgpu_gpu_utilization_percent Utilisation of a GPU where it reports one (not MIG devices).",
            "# TYPE fedgpu_gpu_utilization_percent gauge",
        ]
        util, mem, alloc, idle, busy = [], [], [], [], []
        for dev in devices:
            if dev.get("mig_enabled"):
                continue
            w = holder.get(dev["uuid"])
            labels = _labels(host=self.host, device=dev["uuid"], model=dev["model"], mig_profile=dev.get("mig_profile"),
                             user=w.get("username") if w else "", community=w.get("community") if w else "",
                             kind=w.get("kind") if w else "")
            is_busy = (dev["util_pct"] > 0) if dev.get("util_pct") is not None else bool(procs_on.get(dev["uuid"]))
            if dev.get("util_pct") is not None:
                util.append("fedgpu_gpu_utilization_percent%s %g" % (labels, dev["util_pct"]))
            if dev.get("mem_used_mib") is not None:
                mem.append("fedgpu_gpu_memory_used_mib%s %g" % (labels, dev["mem_used_mib"]))
            alloc.append("fedgpu_gpu_allocated%s %d" % (labels, 1 if w else 0))
            busy.append("fedgpu_gpu_busy%s %d" % (labels, 1 if is_busy else 0))
            if w and not is_busy:
                since = self.idle_since.setdefault(dev["uuid"], now)
            else:
                self.idle_since.pop(dev["uuid"], None)
                since = now
            idle.append("fedgpu_gpu_allocated_idle_seconds%s %g" % (labels, now - since))
        lines += util
        lines += ["# HELP fedgpu_gpu_memory_used_mib Memory in use on a GPU or MIG device.",
                  "# TYPE fedgpu_gpu_memory_used_mib gauge"] + mem
        lines += ["# HELP fedgpu_gpu_allocated 1 while a workload holds the device.",
                  "# TYPE fedgpu_gpu_allocated gauge"] + alloc
        lines += ["# HELP fedgpu_gpu_busy 1 while the device is busy (utilisation > 0, or a process where unknown).",
                  "# TYPE fedgpu_gpu_busy gauge"] + busy
        lines += ["# HELP fedgpu_gpu_allocated_idle_seconds How long the device has been held and idle.",
                  "# TYPE fedgpu_gpu_allocated_idle_seconds gauge"] + idle
        self.metrics.set_devices("\n".join(lines) + "\n")

    # ------------------------------------------------------------- service
    def serve_metrics(self):
        if not int(self.cfg["metrics_port"]):
            return None
        metrics = self.metrics

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802  (http.server's name)
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404)
                    return
                body = metrics.get().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # quiet: Prometheus scrapes every 15 s
                return

        server = ThreadingHTTPServer((self.cfg["metrics_address"], int(self.cfg["metrics_port"])), Handler)
        threading.Thread(target=server.serve_forever, daemon=True, name="metrics").start()
        return server

    def run(self, stop):
        self.serve_metrics()
        LOG.info("collecting every %g s on %s; spool %s (%d records waiting)", self.interval, self.host,
                 self.cfg["spool_path"], self.spool.count())
        next_at = self.clock()
        while not stop.is_set():
            self.sample()
            self.read_history()
            self.ship()
            next_at += self.interval
            delay = next_at - self.clock()
            if delay < 0:  # late (a slow database): skip ahead rather than sample in a burst
                next_at = self.clock()
                delay = 0
            stop.wait(delay)
        self.ship()
        self._close()


def _psycopg2_connect(dsn):
    import psycopg2  # pylint: disable=import-outside-toplevel  # Debian's python3-psycopg2 on the nodes
    return psycopg2.connect(dsn)


def load_config(path):
    with open(path, encoding="utf-8") as f:
        config = json.load(f)
    config = {k: v for k, v in config.items() if not k.startswith("_")}  # "_comment": who wrote it
    unknown = sorted(set(config) - set(DEFAULTS))
    if unknown:
        raise SystemExit("%s: unknown settings %s" % (path, ", ".join(unknown)))
    return config


def main(argv=None):
    parser = argparse.ArgumentParser(prog="fedgpu-collector", description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--config", default="/etc/fedgpu/collector.json")
    parser.add_argument("--once", action="store_true", help="sample and ship once, print the records as JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    collector = Collector(load_config(args.config))
    if args.once:
        records = collector.sample()
        collector.ship()
        print(json.dumps([{"kind": k, **r} for k, r in records], indent=1, sort_keys=True))
        return 0
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    collector.run(stop)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""HTCondor's finished jobs, from an access point's history, as accounting records.

The collectors on the execute points see a job while it runs (its slot's
devices, its cgroup); the access point's history has the whole job once it
has left the queue: owner, accounting group, requests, the GPUs it was
assigned, wall and CPU time, peak memory, start and completion. Each
finished job becomes one ``workload`` record (``condor:<GlobalJobId>``, the
collectors' id for the same job, ``source`` history) and one ``allocation``
per assigned GPU or MIG device, from its start to its completion. Shipped
like every record (ship.py), they widen what the collectors recorded and are
idempotent: reading the same history twice adds nothing, so the collector
reads from a little before its last watermark.

``condor_history -json -completedsince <epoch> -attributes ...`` prints a
JSON list of ads (an empty output when no job completed).
"""

import json
import logging
import re

from . import workloads as workloads_mod

LOG = logging.getLogger("fedgpu_accounting.history")

ATTRIBUTES = ("GlobalJobId", "ClusterId", "ProcId", "Owner", "AccountingGroup", "AcctGroup", "RequestCpus",
              "RequestMemory", "RequestGPUs", "AssignedGPUs", "RemoteWallClockTime", "RemoteUserCpu",
              "RemoteSysCpu", "ResidentSetSize", "JobStartDate", "JobCurrentStartDate", "CompletionDate",
              "EnteredCurrentStatus", "LastRemoteHost", "JobStatus")
# Only full device UUIDs name a device without the execute point's device list.
FULL_UUID = re.compile(r"^(GPU|MIG)-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
# How far before the watermark each read starts (jobs whose completion reached the history late).
OVERLAP_S = 300.0


class HistoryError(Exception):
    """condor_history failed or printed something that is not its JSON."""


def query(since, runner=None, command="condor_history"):
    """The ads of the jobs completed at or after ``since`` (epoch seconds), as dicts."""
    runner = runner or workloads_mod.run_command
    argv = [command, "-json", "-completedsince", str(int(since)), "-attributes", ",".join(ATTRIBUTES)]
    status, out = runner(argv)
    if status != 0:
        raise HistoryError("%s exited %d" % (command, status))
    out = (out or "").strip()
    if not out:
        return []
    try:
        ads = json.loads(out)
    except ValueError as exc:
        raise HistoryError("%s printed no JSON: %s" % (command, exc)) from exc
    if not isinstance(ads, list) or not all(isinstance(ad, dict) for ad in ads):
        raise HistoryError("%s printed JSON that is not a list of ads" % command)
    return ads


def records(ads, access_point):
    """Workload and allocation records ([(kind, row)]) of the finished jobs among ``ads``.

    A job without a GlobalJobId or a completion date (removed before it ran) is skipped. Its host is the
    execute point of LastRemoteHost (``slot1_1@fg-gpu1`` -> ``fg-gpu1``), else the access point.
    """
    out = []
    for ad in ads:
        gid = workloads_mod.ad_get(ad, "GlobalJobId")
        ended = workloads_mod.to_number(workloads_mod.ad_get(ad, "CompletionDate"))
        if not isinstance(gid, str) or not gid or not ended:
            continue
        remote = workloads_mod.ad_get(ad, "LastRemoteHost")
        host = remote.rpartition("@")[2] if isinstance(remote, str) and remote else access_point
        assigned = workloads_mod.split_device_names(workloads_mod.ad_get(ad, "AssignedGPUs"))
        full = [name for name in assigned if FULL_UUID.match(name)]
        if len(full) < len(assigned):
            LOG.info("condor:%s: device names %s are not UUIDs: its allocations come from the execute point's "
                     "collector only", gid, [n for n in assigned if n not in full])
        job = {"job_ad": ad, "machine_ad": {}, "assigned_gpus": ",".join(full), "uid": None, "cgroup": None,
               "starter_pid": None}
        work = workloads_mod.condor_workload(job, host, [{"uuid": name} for name in full], now=ended)
        started = work["started"] if work["started"] is not None else ended
        cpu = [workloads_mod.to_number(workloads_mod.ad_get(ad, name)) for name in ("RemoteUserCpu", "RemoteSysCpu")]
        rss_kib = workloads_mod.to_number(workloads_mod.ad_get(ad, "ResidentSetSize"))
        out.append(("workload", {
            "workload_id": work["workload_id"], "kind": "condor", "host": host, "username": work["username"],
            "uid": workloads_mod.uid_of(work["username"]), "community": work["community"], "flavour": None,
            "requested_cpus": work["requested_cpus"], "requested_mem_mib": work["requested_mem_mib"],
            "requested_gpus": work["requested_gpus"], "started": started, "first_seen": started,
            "last_seen": ended, "ended": ended,
            "cpu_seconds": sum(c for c in cpu if c is not None) if any(c is not None for c in cpu) else None,
            "mem_peak_mib": rss_kib / 1024.0 if rss_kib is not None else None,
            "wall_seconds": workloads_mod.to_number(workloads_mod.ad_get(ad, "RemoteWallClockTime")),
            "source": "history"}))
        for uuid in work["devices"]:
            out.append(("allocation", {"workload_id": work["workload_id"], "device_uuid": uuid, "host": host,
                                       "started": started, "ended": ended}))
    return out


def latest(ads):
    """The latest completion date among ``ads`` (epoch seconds), or None."""
    dates = [workloads_mod.to_number(workloads_mod.ad_get(ad, "CompletionDate")) for ad in ads]
    dates = [d for d in dates if d]
    return max(dates) if dates else None

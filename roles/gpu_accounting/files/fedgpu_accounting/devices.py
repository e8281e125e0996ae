# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read GPUs, MIG devices and their compute processes (stdlib only, Python 3.11+).

``read()`` returns::

    {"backend": "nvml" | "nvidia-smi",
     "devices": [Device, ...],      # each GPU, followed by its MIG devices
     "processes": [Process, ...]}   # in device order, then by pid

    Device = {"uuid": "GPU-..." | "MIG-...",
              "parent_uuid": None | "GPU-...",   # the physical GPU of a MIG device
              "model": "NVIDIA A100-SXM4-80GB",  # product name of the (parent) GPU
              "mig_profile": None | "3g.40gb",   # "1c.3g.40gb" for a smaller CI
              "gpu_fraction": 1.0 | 3/7,         # compute slices / slices of the GPU
              "mig_enabled": bool,               # whole GPU in MIG mode
              "util_pct": float | None,          # None = unknown (MIG), never 0
              "mem_used_mib": float | None, "mem_total_mib": float | None,
              "power_w": float | None}
    Process = {"device_uuid": "GPU-..." | "MIG-...", "pid": int, "used_mem_mib": float | None}

Backends and the documented behaviour each relies on
----------------------------------------------------
NVML through ``pynvml`` (package ``nvidia-ml-py``; NVML API Reference Guide,
docs.nvidia.com/deploy/nvml-api):

* ``nvmlInit``/``nvmlShutdown``; ``nvmlDeviceGetCount``,
  ``nvmlDeviceGetHandleByIndex``; errors are ``pynvml.NVMLError`` with
  ``.value`` (``NVML_ERROR_NOT_SUPPORTED`` = 3, ``NVML_ERROR_NOT_FOUND`` = 6,
  ``NVML_ERROR_DRIVER_NOT_LOADED`` = 9, ...);
* ``nvmlDeviceGetUUID``/``nvmlDeviceGetName``: ``str`` in recent nvidia-ml-py
  (its ``convertStrBytes`` wrapper), ``bytes`` in old releases: both accepted;
  the name of a MIG device handle is "<GPU name> MIG <profile>";
* ``nvmlDeviceGetMigMode`` -> [current, pending] (``NVML_DEVICE_MIG_ENABLE`` =
  1); NOT_SUPPORTED on GPUs without MIG;
* ``nvmlDeviceGetMaxMigDeviceCount`` is the number of possible MIG devices,
  not of existing ones: each index is tried with
  ``nvmlDeviceGetMigDeviceHandleByIndex`` and NOT_FOUND means "none there"
  (nvml.h comments, quoted in NVIDIA/go-nvml#60);
* ``nvmlDeviceGetGpuInstanceId``/``nvmlDeviceGetComputeInstanceId`` on a MIG
  handle (kept internally to match processes);
* ``nvmlDeviceGetUtilizationRates``: "On MIG-enabled GPUs, querying device
  utilization rates is not currently supported" -> NOT_SUPPORTED, reported
  as None (unknown), for the GPU in MIG mode and its MIG devices;
* ``nvmlDeviceGetMemoryInfo``: ``.used``/``.total`` in bytes, also on MIG
  handles; ``nvmlDeviceGetPowerUsage``: milliwatts (NOT_SUPPORTED -> None);
* ``nvmlDeviceGetComputeRunningProcesses``: ``.pid``, ``.usedGpuMemory`` in
  bytes, None (nvidia-ml-py maps ``NVML_VALUE_NOT_AVAILABLE``) when unknown.
  "In MIG mode, if device handle is provided, the API returns aggregate
  information, only if the caller has appropriate privileges. Per-instance
  information can be queried by using specific MIG device handles": so it is
  asked per MIG device handle, which attributes each process to its MIG device.

``nvidia-smi`` (nvidia-smi(1) man page, ``--help-query-gpu``,
``--help-query-compute-apps``; NVIDIA Multi-Instance GPU User Guide):

* ``--query-gpu=index,uuid,mig.mode.current,utilization.gpu,memory.used,
  memory.total,power.draw,name --format=csv,noheader,nounits``: one line per
  GPU, ", "-separated; "[N/A]" / "[Not Supported]" (also without brackets)
  for values the device cannot give: utilization.gpu of a GPU in MIG mode
  (the summary's "GPU-Util N/A", ``-q``'s "Utilization / Gpu : N/A" on MIG
  GPUs), power.draw on boards without a sensor; mig.mode.current is
  "Enabled"/"Disabled" ("[N/A]" on GPUs without MIG);
* ``-L``: ``GPU 0: <name> (UUID: GPU-...)`` and, per MIG device,
  ``  MIG 3g.40gb     Device  0: (UUID: MIG-...)``;
* the default summary (only when a GPU is in MIG mode): the "MIG devices"
  table (GPU, GI ID, CI ID, MIG Dev, "used MiB / total MiB"; the MIG Dev is
  the ``Device N`` of ``-L``) and the "Processes" table (GPU, GI ID, CI ID,
  PID, Type, Process name, "NNNMiB"), as in the MIG User Guide and real
  outputs of drivers 510-570 posted in nvitop PR #8, go-nvml #57, sonar #247;
* ``--query-compute-apps=gpu_uuid,pid,used_memory --format=csv,noheader,
  nounits`` (header name ``used_gpu_memory``): the processes of GPUs without
  MIG; nothing is printed when there are none. For a process on a MIG device
  the CSV has no GI/CI field, so processes of GPUs in MIG mode are taken from
  the summary's table (a CSV row naming a MIG UUID is still honoured);
* exit code 9 and "NVIDIA-SMI has failed because it couldn't communicate
  with the NVIDIA driver..." without driver, "No devices were found" (6).

gpu_fraction: compute slices of the profile ("3g" -> 3, "1c.3g" -> 1) over
the compute slices of the GPU: 7 on A100/H100/H200 (and other MIG GPUs), 4 on
A30 (MIG User Guide, "Supported MIG Profiles").
"""

import re
import subprocess

from fedgpu_accounting import mig  # the collection's plugins/module_utils/mig.py, installed beside this file

__all__ = ["DeviceReadError", "read", "gpu_slices", "profile_slices", "gpu_fraction"]

MIB = 1024.0 * 1024.0
NOT_SUPPORTED = 3
NO_PERMISSION = 4
NOT_FOUND = 6
SMI_TIMEOUT = 10


class DeviceReadError(Exception):
    """No device could be read: no driver, no GPU, no tool; the message is the tool's."""


# ------------------------------------------------------------ fractions ---
def gpu_slices(model):
    """Compute slices of a whole GPU (its largest profile's), from the collection's MIG tables (mig.py:
    7 on A100/H100/H200, 4 on A30; model_slices there counts memory slices); 7 for a model they lack."""
    key = mig.resolve_model(model)
    return max(p.compute for p in mig.model_profiles(key)) if key else 7


def _float(value):
    return None if value is None else float(value)


def profile_slices(profile):
    """Compute slices of a MIG profile name ("3g.40gb" -> 3, "1c.3g.40gb" -> 1), None if not one."""
    match = re.match(r"^(?:MIG\s+)?(?:(\d+)c\.)?(\d+)g\.", str(profile or "").strip())
    if not match:
        return None
    return int(match.group(1) or match.group(2))


def gpu_fraction(model, profile):
    """Share of the whole GPU that a MIG device of this profile has (1.0 for a whole GPU)."""
    if not profile:
        return 1.0
    slices = profile_slices(profile)
    if slices is None:
        return 1.0
    return min(1.0, float(slices) / gpu_slices(model))


def _device(uuid, parent, model, profile, mig_enabled, util, used, total, power):
    return {
        "uuid": uuid, "parent_uuid": parent, "model": model, "mig_profile": profile,
        "gpu_fraction": gpu_fraction(model, profile), "mig_enabled": bool(mig_enabled),
        "util_pct": None if util is None else float(util),
        "mem_used_mib": None if used is None else float(used),
        "mem_total_mib": None if total is None else float(total),
        "power_w": None if power is None else float(power),
    }


def _sorted_processes(devices, processes):
    order = dict((dev["uuid"], num) for num, dev in enumerate(devices))
    return sorted(processes, key=lambda p: (order.get(p["device_uuid"], len(order)), p["pid"]))


# ----------------------------------------------------------------- NVML ---
def _text(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _nvml_value(nvml, call, *args):
    """call(*args), or None (unknown) where NVML answers NOT_SUPPORTED or NO_PERMISSION."""
    try:
        return call(*args)
    except nvml.NVMLError as exc:
        unknown = (getattr(nvml, "NVML_ERROR_NOT_SUPPORTED", NOT_SUPPORTED), getattr(nvml, "NVML_ERROR_NO_PERMISSION", NO_PERMISSION))
        if getattr(exc, "value", None) in unknown:
            return None
        raise


def _nvml_processes(nvml, handle, device_uuid):
    procs = _nvml_value(nvml, nvml.nvmlDeviceGetComputeRunningProcesses, handle) or []
    result = []
    for proc in procs:
        used = getattr(proc, "usedGpuMemory", None)
        if used is not None and used >= 2 ** 63:   # NVML_VALUE_NOT_AVAILABLE not mapped by an old binding
            used = None
        result.append({"device_uuid": device_uuid, "pid": int(proc.pid),
                       "used_mem_mib": None if used is None else used / MIB})
    return result


def _nvml_memory(nvml, handle):
    info = _nvml_value(nvml, nvml.nvmlDeviceGetMemoryInfo, handle)
    if info is None:
        return None, None
    return info.used / MIB, info.total / MIB


def _nvml_power(nvml, handle):
    milliwatts = _nvml_value(nvml, nvml.nvmlDeviceGetPowerUsage, handle)
    return None if milliwatts is None else milliwatts / 1000.0


def _nvml_util(nvml, handle):
    rates = _nvml_value(nvml, nvml.nvmlDeviceGetUtilizationRates, handle)
    return None if rates is None else rates.gpu


def _read_nvml_devices(nvml):
    devices, processes = [], []
    count = nvml.nvmlDeviceGetCount()
    if not count:
        raise DeviceReadError("NVML: No devices were found")
    enable = getattr(nvml, "NVML_DEVICE_MIG_ENABLE", 1)
    for index in range(count):
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        uuid = _text(nvml.nvmlDeviceGetUUID(handle))
        name = _text(nvml.nvmlDeviceGetName(handle))
        mode = _nvml_value(nvml, nvml.nvmlDeviceGetMigMode, handle)
        mig = bool(mode) and mode[0] == enable
        used, total = _nvml_memory(nvml, handle)
        devices.append(_device(uuid, None, name, None, mig, _nvml_util(nvml, handle), used, total,
                               _nvml_power(nvml, handle)))
        if not mig:
            processes.extend(_nvml_processes(nvml, handle, uuid))
            continue
        for mig_index in range(nvml.nvmlDeviceGetMaxMigDeviceCount(handle)):
            try:
                mig_handle = nvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, mig_index)
            except nvml.NVMLError as exc:
                if getattr(exc, "value", None) == getattr(nvml, "NVML_ERROR_NOT_FOUND", NOT_FOUND):
                    continue
                raise
            mig_uuid = _text(nvml.nvmlDeviceGetUUID(mig_handle))
            mig_name = _text(nvml.nvmlDeviceGetName(mig_handle))
            match = re.search(r"\bMIG\s+(\S+)\s*$", mig_name)
            profile = match.group(1) if match else None
            if profile is None:
                attrs = _nvml_value(nvml, nvml.nvmlDeviceGetAttributes, mig_handle)
                if attrs is not None:
                    profile = "%dg.%dgb" % (attrs.computeInstanceSliceCount, round(attrs.memorySizeMB / 1024.0))
            used, total = _nvml_memory(nvml, mig_handle)
            devices.append(_device(mig_uuid, uuid, name, profile, False, _nvml_util(nvml, mig_handle),
                                   used, total, _nvml_power(nvml, mig_handle)))
            processes.extend(_nvml_processes(nvml, mig_handle, mig_uuid))
    return devices, processes


def _read_nvml(nvml):
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as exc:
        raise DeviceReadError("NVML: %s" % exc)
    try:
        try:
            devices, processes = _read_nvml_devices(nvml)
        except nvml.NVMLError as exc:
            raise DeviceReadError("NVML: %s" % exc)
    finally:
        try:
            nvml.nvmlShutdown()
        except nvml.NVMLError:
            pass
    return {"backend": "nvml", "devices": devices, "processes": _sorted_processes(devices, processes)}


def _import_pynvml():
    try:
        import pynvml  # nvidia-ml-py, optional
    except Exception as exc:  # ImportError, or a broken install
        raise DeviceReadError("pynvml not importable: %s" % exc)
    return pynvml


# ----------------------------------------------------------- nvidia-smi ---
GPU_FIELDS = "index,uuid,mig.mode.current,utilization.gpu,memory.used,memory.total,power.draw,name"


def default_runner(argv):
    """Run argv; (exit code, stdout and stderr); DeviceReadError if it cannot run or hangs."""
    try:
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              timeout=SMI_TIMEOUT, check=False)
    except FileNotFoundError as exc:
        raise DeviceReadError("%s: not found (%s)" % (argv[0], exc))
    except PermissionError as exc:
        raise DeviceReadError("%s: %s" % (argv[0], exc))
    except subprocess.TimeoutExpired:
        raise DeviceReadError("%s: no answer within %d s" % (" ".join(argv), SMI_TIMEOUT))
    return proc.returncode, proc.stdout.decode("utf-8", "replace")


def _smi(runner, nvidia_smi, *args):
    argv = [nvidia_smi] + list(args)
    rc, text = runner(argv)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if rc != 0:
        raise DeviceReadError(text.strip() or "%s exited with %d" % (" ".join(argv), rc))
    return text


def _number(text):
    """A CSV value: float, or None for "[N/A]", "[Not Supported]", "N/A", "" and the like."""
    value = text.strip()
    if value.endswith(" MiB") or value.endswith(" W") or value.endswith(" %"):
        value = value.rsplit(" ", 1)[0]
    try:
        return float(value)
    except ValueError:
        return None


def _parse_gpus(text):
    gpus = []
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split(",", 7)]
        if len(parts) != 8 or not parts[0].isdigit():
            raise DeviceReadError("nvidia-smi: unexpected --query-gpu line: %r" % line)
        gpus.append({"index": int(parts[0]), "uuid": parts[1], "mig": parts[2] == "Enabled",
                     "util": _number(parts[3]), "used": _number(parts[4]), "total": _number(parts[5]),
                     "power": _number(parts[6]), "name": parts[7]})
    if not gpus:
        raise DeviceReadError("No devices were found")
    return gpus


def _read_smi(nvidia_smi, runner):
    runner = runner or default_runner
    gpus = _parse_gpus(_smi(runner, nvidia_smi, "--query-gpu=" + GPU_FIELDS, "--format=csv,noheader,nounits"))
    any_mig = any(g["mig"] for g in gpus)
    listing, table_devs, table_procs = {}, {}, []
    if any_mig:
        # -L and the summary's tables, read by the parsers the collection's MIG modules use.
        listing = {g["index"]: [(d["device"], d["profile"], d["uuid"]) for d in g["mig_devices"]]
                   for g in mig.parse_list_gpus(_smi(runner, nvidia_smi, "-L"))}
        summary = mig.parse_smi(_smi(runner, nvidia_smi))
        table_devs = {(d["gpu"], d["mig_device"]): (d["gi_id"], d["ci_id"], _float(d["memory_used_mib"]),
                                                    _float(d["memory_total_mib"])) for d in summary["mig_devices"]}
        table_procs = [(p["gpu"], p["gi_id"], p["ci_id"], p["pid"], _number(p["used_memory"].replace("MiB", "")))
                       for p in summary["processes"]]
    devices, processes = [], []
    by_gi_ci = {}
    mig_uuids = set()
    for gpu in gpus:
        devices.append(_device(gpu["uuid"], None, gpu["name"], None, gpu["mig"], gpu["util"], gpu["used"],
                               gpu["total"], gpu["power"]))
        if not gpu["mig"]:
            continue
        for dev, profile, mig_uuid in sorted(listing.get(gpu["index"], [])):
            gi, ci, used, total = table_devs.get((gpu["index"], dev), (None, None, None, None))
            devices.append(_device(mig_uuid, gpu["uuid"], gpu["name"], profile, False, None, used, total, None))
            mig_uuids.add(mig_uuid)
            if gi is not None:
                by_gi_ci[(gpu["index"], gi, ci)] = mig_uuid
    seen = set()
    for gpu_index, gi, ci, pid, mem in table_procs:
        mig_uuid = by_gi_ci.get((gpu_index, gi, ci))
        if mig_uuid is not None and (mig_uuid, pid) not in seen:
            seen.add((mig_uuid, pid))
            processes.append({"device_uuid": mig_uuid, "pid": pid, "used_mem_mib": mem})
    mig_gpus = set(g["uuid"] for g in gpus if g["mig"])
    plain = set(g["uuid"] for g in gpus if not g["mig"])
    apps = _smi(runner, nvidia_smi, "--query-compute-apps=gpu_uuid,pid,used_memory", "--format=csv,noheader,nounits")
    for line in apps.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 3 or not parts[1].isdigit():
            continue
        uuid, pid = parts[0], int(parts[1])
        if uuid in mig_gpus or (uuid not in plain and uuid not in mig_uuids) or (uuid, pid) in seen:
            continue  # MIG mode: the summary's table tells the MIG device
        seen.add((uuid, pid))
        processes.append({"device_uuid": uuid, "pid": pid, "used_mem_mib": _number(parts[2])})
    return {"backend": "nvidia-smi", "devices": devices, "processes": _sorted_processes(devices, processes)}


# ----------------------------------------------------------------- API ---
def read(source="auto", nvidia_smi="nvidia-smi", pynvml_module=None, runner=None):
    """Devices and processes now, from NVML or nvidia-smi (see the module docstring).

    source: "auto" (NVML when importable and nvmlInit works, else nvidia-smi),
    "nvml" or "nvidia-smi". pynvml_module: a module object to use instead of
    ``import pynvml`` (tests). runner: callable(argv) -> (rc, stdout) instead
    of running nvidia-smi (default: subprocess, 10 s timeout).
    Raises DeviceReadError when nothing can be read (no driver, no GPU).
    """
    if source not in ("auto", "nvml", "nvidia-smi"):
        raise ValueError("source must be auto, nvml or nvidia-smi, not %r" % (source,))
    if source == "nvidia-smi":
        return _read_smi(nvidia_smi, runner)
    if source == "nvml":
        return _read_nvml(pynvml_module if pynvml_module is not None else _import_pynvml())
    try:
        return _read_nvml(pynvml_module if pynvml_module is not None else _import_pynvml())
    except DeviceReadError:
        return _read_smi(nvidia_smi, runner)

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A stand-in for the ``pynvml`` module (package nvidia-ml-py), for tests without a GPU.

``module(config)`` returns an object used like the module: ``NVMLError``
(an exception with ``.value``, whose class for a known value is a subclass,
e.g. ``NVMLError_NotSupported``, as nvidia-ml-py builds them), the
``NVML_ERROR_*`` codes, ``NVML_DEVICE_MIG_ENABLE`` and the functions listed
below, each behaving as the NVML API Reference Guide documents:

* every call but nvmlInit raises UNINITIALIZED before nvmlInit; nvmlInit
  raises DRIVER_NOT_LOADED (9) without driver (``"driver_loaded": False``);
  calls are counted (nvmlInit twice needs nvmlShutdown twice);
* nvmlDeviceGetHandleByIndex: INVALID_ARGUMENT past nvmlDeviceGetCount;
* nvmlDeviceGetUUID / nvmlDeviceGetName: ``str`` as recent nvidia-ml-py
  returns (``"str_returns": False`` gives ``bytes`` as releases before its
  convertStrBytes wrapper); a MIG device is named "<GPU name> MIG <profile>";
* nvmlDeviceGetMigMode: [current, pending]; NOT_SUPPORTED on a GPU without
  MIG (``"mig_mode": None``) and on a MIG device handle;
* nvmlDeviceGetMaxMigDeviceCount: possible MIG devices (0 when MIG is off);
  nvmlDeviceGetMigDeviceHandleByIndex: INVALID_ARGUMENT for an index past it,
  NOT_FOUND where no MIG device exists at the index;
* nvmlDeviceGetGpuInstanceId / nvmlDeviceGetComputeInstanceId: on MIG
  handles only (INVALID_ARGUMENT otherwise); nvmlDeviceIsMigDeviceHandle;
  nvmlDeviceGetDeviceHandleFromMigDeviceHandle; nvmlDeviceGetAttributes
  (MIG handles: slice counts, memorySizeMB);
* nvmlDeviceGetUtilizationRates: ``.gpu``/``.memory`` percent; NOT_SUPPORTED
  on MIG device handles and on a GPU in MIG mode ("On MIG-enabled GPUs,
  querying device utilization rates is not currently supported"), or when
  the configured value is None;
* nvmlDeviceGetMemoryInfo: ``.total``/``.free``/``.used`` in bytes;
* nvmlDeviceGetPowerUsage: milliwatts; NOT_SUPPORTED on MIG handles or when
  None;
* nvmlDeviceGetComputeRunningProcesses: objects with ``pid``,
  ``usedGpuMemory`` (bytes, None when unknown as nvidia-ml-py maps
  NVML_VALUE_NOT_AVAILABLE), ``gpuInstanceId``/``computeInstanceId``; on a
  MIG handle the processes of that MIG device; on a GPU in MIG mode the
  aggregate, only when privileged (``"privileged": False`` -> NO_PERMISSION).

Configuration (the format ``nvidia-smi --emulator-dump-nvml`` prints)::

    {"driver_loaded": True, "str_returns": True, "privileged": True,
     "gpus": [{"uuid": "GPU-...", "name": "NVIDIA A100-SXM4-80GB",
               "mig_mode": [current, pending] | None,
               "utilization_gpu": int | None, "memory_used": bytes, "memory_total": bytes,
               "power_mw": int | None, "max_mig_devices": 7,
               "processes": [{"pid": 1, "used_memory": bytes | None,
                              "gpu_instance_id": .., "compute_instance_id": ..}],
               "mig_devices": [{"index": 0, "uuid": "MIG-...", "name": "NVIDIA A100-SXM4-80GB MIG 3g.40gb",
                                "gpu_instance_id": 1, "compute_instance_id": 0,
                                "compute_slices": 3, "gpu_instance_slices": 4,
                                "memory_used": bytes, "memory_total": bytes,
                                "processes": [...]}]}]}
"""

import types

NVML_SUCCESS = 0
NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_INVALID_ARGUMENT = 2
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_NOT_FOUND = 6
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_UNKNOWN = 999
NVML_DEVICE_MIG_DISABLE = 0
NVML_DEVICE_MIG_ENABLE = 1

_MESSAGES = {
    NVML_ERROR_UNINITIALIZED: "Uninitialized",
    NVML_ERROR_INVALID_ARGUMENT: "Invalid Argument",
    NVML_ERROR_NOT_SUPPORTED: "Not Supported",
    NVML_ERROR_NO_PERMISSION: "Insufficient Permissions",
    NVML_ERROR_NOT_FOUND: "Not Found",
    NVML_ERROR_DRIVER_NOT_LOADED: "Driver Not Loaded",
    NVML_ERROR_LIBRARY_NOT_FOUND: "NVML Shared Library Not Found",
    NVML_ERROR_UNKNOWN: "Unknown Error",
}


class NVMLError(Exception):
    """pynvml's error: ``.value`` is the nvmlReturn_t; NVMLError(3) is an NVMLError_NotSupported."""

    _by_value = {}

    def __new__(cls, value):
        target = NVMLError._by_value.get(value, cls) if cls is NVMLError else cls
        obj = Exception.__new__(target)
        obj.value = value
        return obj

    def __init__(self, value):
        Exception.__init__(self, value)
        self.value = value

    def __str__(self):
        return _MESSAGES.get(self.value, "NVML Error with code %d" % self.value)

    def __eq__(self, other):
        return isinstance(other, NVMLError) and self.value == other.value

    def __hash__(self):
        return hash(self.value)


for _value, _name in ((NVML_ERROR_UNINITIALIZED, "Uninitialized"), (NVML_ERROR_INVALID_ARGUMENT, "InvalidArgument"),
                      (NVML_ERROR_NOT_SUPPORTED, "NotSupported"), (NVML_ERROR_NO_PERMISSION, "NoPermission"),
                      (NVML_ERROR_NOT_FOUND, "NotFound"), (NVML_ERROR_DRIVER_NOT_LOADED, "DriverNotLoaded"),
                      (NVML_ERROR_LIBRARY_NOT_FOUND, "LibraryNotFound"), (NVML_ERROR_UNKNOWN, "Unknown")):
    NVMLError._by_value[_value] = type("NVMLError_" + _name, (NVMLError,), {})
    globals()["NVMLError_" + _name] = NVMLError._by_value[_value]


class _Handle(object):
    def __init__(self, gpu, mig=None):
        self.gpu = gpu
        self.mig = mig

    def __repr__(self):
        return "<fake nvmlDevice_t %s>" % (self.mig or self.gpu)["uuid"]


class FakeNVML(object):
    """The module-like object; ``calls`` records (function, args) for assertions."""

    NVMLError = NVMLError

    def __init__(self, config):
        self.config = config
        self.initialized = 0
        self.calls = []
        for name, value in globals().items():
            if name.startswith("NVML_") or name.startswith("NVMLError_"):
                setattr(self, name, value)

    # ---------------------------------------------------------- helpers ---
    def _call(self, name, *args):
        self.calls.append((name,) + args)
        if not self.initialized:
            raise NVMLError(NVML_ERROR_UNINITIALIZED)

    def _text(self, value):
        return value if self.config.get("str_returns", True) else value.encode()

    @staticmethod
    def _mig_on(gpu):
        mode = gpu.get("mig_mode")
        return bool(mode) and mode[0] == NVML_DEVICE_MIG_ENABLE

    @staticmethod
    def _proc(entry):
        return types.SimpleNamespace(pid=entry["pid"], usedGpuMemory=entry.get("used_memory"),
                                     gpuInstanceId=entry.get("gpu_instance_id", 0xFFFFFFFF),
                                     computeInstanceId=entry.get("compute_instance_id", 0xFFFFFFFF))

    # -------------------------------------------------------- functions ---
    def nvmlInit(self):
        self.calls.append(("nvmlInit",))
        if not self.config.get("driver_loaded", True):
            raise NVMLError(NVML_ERROR_DRIVER_NOT_LOADED)
        self.initialized += 1

    def nvmlShutdown(self):
        self._call("nvmlShutdown")
        self.initialized -= 1

    def nvmlDeviceGetCount(self):
        self._call("nvmlDeviceGetCount")
        return len(self.config.get("gpus", []))

    def nvmlDeviceGetHandleByIndex(self, index):
        self._call("nvmlDeviceGetHandleByIndex", index)
        gpus = self.config.get("gpus", [])
        if not 0 <= index < len(gpus):
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        return _Handle(gpus[index])

    def nvmlDeviceGetUUID(self, handle):
        self._call("nvmlDeviceGetUUID", handle)
        return self._text((handle.mig or handle.gpu)["uuid"])

    def nvmlDeviceGetName(self, handle):
        self._call("nvmlDeviceGetName", handle)
        return self._text((handle.mig or handle.gpu)["name"])

    def nvmlDeviceGetMigMode(self, handle):
        self._call("nvmlDeviceGetMigMode", handle)
        if handle.mig is not None or handle.gpu.get("mig_mode") is None:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        return list(handle.gpu["mig_mode"])

    def nvmlDeviceGetMaxMigDeviceCount(self, handle):
        self._call("nvmlDeviceGetMaxMigDeviceCount", handle)
        if handle.mig is not None or not self._mig_on(handle.gpu):
            return 0
        return handle.gpu.get("max_mig_devices", 7)

    def nvmlDeviceGetMigDeviceHandleByIndex(self, handle, index):
        self._call("nvmlDeviceGetMigDeviceHandleByIndex", handle, index)
        if handle.mig is not None or not 0 <= index < self.nvmlDeviceGetMaxMigDeviceCount(handle):
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        for mig in handle.gpu.get("mig_devices", []):
            if mig["index"] == index:
                return _Handle(handle.gpu, mig)
        raise NVMLError(NVML_ERROR_NOT_FOUND)

    def nvmlDeviceIsMigDeviceHandle(self, handle):
        self._call("nvmlDeviceIsMigDeviceHandle", handle)
        return handle.mig is not None

    def nvmlDeviceGetDeviceHandleFromMigDeviceHandle(self, handle):
        self._call("nvmlDeviceGetDeviceHandleFromMigDeviceHandle", handle)
        if handle.mig is None:
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        return _Handle(handle.gpu)

    def nvmlDeviceGetGpuInstanceId(self, handle):
        self._call("nvmlDeviceGetGpuInstanceId", handle)
        if handle.mig is None:
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        return handle.mig["gpu_instance_id"]

    def nvmlDeviceGetComputeInstanceId(self, handle):
        self._call("nvmlDeviceGetComputeInstanceId", handle)
        if handle.mig is None:
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        return handle.mig["compute_instance_id"]

    def nvmlDeviceGetAttributes(self, handle):
        self._call("nvmlDeviceGetAttributes", handle)
        if handle.mig is None:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        mig = handle.mig
        return types.SimpleNamespace(multiprocessorCount=14 * mig.get("compute_slices", 1),
                                     gpuInstanceSliceCount=mig.get("gpu_instance_slices", 1),
                                     computeInstanceSliceCount=mig.get("compute_slices", 1),
                                     memorySizeMB=mig["memory_total"] // (1024 * 1024))

    def nvmlDeviceGetUtilizationRates(self, handle):
        self._call("nvmlDeviceGetUtilizationRates", handle)
        util = handle.gpu.get("utilization_gpu")
        if handle.mig is not None or self._mig_on(handle.gpu) or util is None:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        return types.SimpleNamespace(gpu=util, memory=handle.gpu.get("utilization_memory", 0))

    def nvmlDeviceGetMemoryInfo(self, handle, version=None):
        self._call("nvmlDeviceGetMemoryInfo", handle)
        src = handle.mig or handle.gpu
        return types.SimpleNamespace(total=src["memory_total"], used=src["memory_used"],
                                     free=src["memory_total"] - src["memory_used"])

    def nvmlDeviceGetPowerUsage(self, handle):
        self._call("nvmlDeviceGetPowerUsage", handle)
        if handle.mig is not None or handle.gpu.get("power_mw") is None:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        return handle.gpu["power_mw"]

    def nvmlDeviceGetComputeRunningProcesses(self, handle):
        self._call("nvmlDeviceGetComputeRunningProcesses", handle)
        if handle.mig is not None:
            return [self._proc(p) for p in handle.mig.get("processes", [])]
        if self._mig_on(handle.gpu) and not self.config.get("privileged", True):
            raise NVMLError(NVML_ERROR_NO_PERMISSION)
        return [self._proc(p) for p in handle.gpu.get("processes", [])]


def module(config):
    """A fake pynvml module for this configuration."""
    return FakeNVML(config)

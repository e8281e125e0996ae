# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run ``nvidia-smi`` from a module and read the whole GPU/MIG state once.

Shared by ``nvidia_gpu_info`` and ``nvidia_mig``: one argument spec, one way
to run commands and one place that turns command failures into fail_json.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.fedgpu.platform.plugins.module_utils import mig as miglib

NVIDIA_SMI_ARGS = dict(
    nvidia_smi_path=dict(type="path", default="nvidia-smi"),
)

QUERY_FIELDS = ["index", "uuid", "name", "memory.total", "pci.bus_id", "mig.mode.current", "mig.mode.pending"]

# nvidia-smi exit code 6 ("not found") with these messages means "empty list"
_EMPTY = ("No GPU instances found", "No compute instances found", "No MIG-enabled devices found")


class NvidiaSmi(object):
    def __init__(self, module):
        self.module = module
        self.path = module.params["nvidia_smi_path"]
        self.commands = []

    def run(self, args, allow_empty=False, check=True):
        cmd = [self.path] + list(args)
        self.commands.append(" ".join(cmd))
        try:
            rc, out, err = self.module.run_command(cmd)
        except OSError as exc:  # pragma: no cover - run_command reports most errors itself
            self.module.fail_json(msg="cannot run %s: %s" % (self.path, exc), cmd=cmd)
        text = (out or "") + (err or "")
        if rc != 0 and allow_empty and any(marker in text for marker in _EMPTY):
            return ""
        if rc != 0 and check:
            if rc == 9 or "couldn't communicate with the NVIDIA driver" in text:
                self.module.fail_json(msg="nvidia-smi cannot talk to the NVIDIA driver (is it installed and loaded?)",
                                      cmd=cmd, rc=rc, stdout=out, stderr=err)
            self.module.fail_json(msg="%s failed (rc=%d): %s" % (" ".join(cmd), rc, text.strip()), cmd=cmd, rc=rc, stdout=out, stderr=err)
        return out or ""

    def state(self):
        """Everything the modules need, as a list of GPU dicts."""
        rows = miglib.parse_query_csv(
            self.run(["--query-gpu=" + ",".join(QUERY_FIELDS), "--format=csv,noheader,nounits"]), QUERY_FIELDS)
        gpus = []
        for row in rows:
            try:
                memory = int(float(row["memory.total"]))
            except ValueError:
                memory = None
            gpus.append({
                "index": int(row["index"]),
                "uuid": row["uuid"],
                "name": row["name"],
                "model": miglib.resolve_model(row["name"], memory),
                "memory_total_mib": memory,
                "pci_bus_id": row["pci.bus_id"],
                "mig_mode": {"current": row["mig.mode.current"], "pending": row["mig.mode.pending"]},
                "gpu_instances": [],
                "processes": [],
            })
        if not any(g["mig_mode"]["current"] == "Enabled" for g in gpus):
            return gpus
        by_index = dict((g["index"], g) for g in gpus)
        for gpu in gpus:
            if gpu["mig_mode"]["current"] == "Enabled" and gpu["model"] is None:
                gpu["model"] = self._model_from_gpu(gpu)
        gis = miglib.parse_lgi(self.run(["mig", "-lgi"], allow_empty=True))
        if not gis:
            return gpus  # no GPU instance: no MIG device, no process on one
        cis = miglib.parse_lci(self.run(["mig", "-lci"], allow_empty=True))
        listed = dict((g["index"], g) for g in miglib.parse_list_gpus(self.run(["-L"])))
        summary = miglib.parse_smi(self.run([]))
        for gi in gis:
            gpu = by_index.get(gi["gpu"])
            if gpu is None:
                continue
            gpu["gpu_instances"].append({
                "gi_id": gi["gi_id"],
                "profile": gi["profile"],
                "profile_id": gi["profile_id"],
                "placement": gi["start"],
                "size": gi["size"],
                "compute_instances": [],
                "in_use": False,
                "pids": [],
            })
        uuid_of = {}
        for dev in summary["mig_devices"]:
            listing = listed.get(dev["gpu"])
            if listing:
                for mig_dev in listing["mig_devices"]:
                    if mig_dev["device"] == dev["mig_device"]:
                        uuid_of[(dev["gpu"], dev["gi_id"], dev["ci_id"])] = mig_dev["uuid"]
        for ci in cis:
            gpu = by_index.get(ci["gpu"])
            if gpu is None:
                continue
            for gi in gpu["gpu_instances"]:
                if gi["gi_id"] == ci["gi_id"]:
                    gi["compute_instances"].append({
                        "ci_id": ci["ci_id"],
                        "profile": ci["profile"],
                        "profile_id": ci["profile_id"],
                        "mig_device_uuid": uuid_of.get((ci["gpu"], ci["gi_id"], ci["ci_id"])),
                    })
        for proc in summary["processes"]:
            gpu = by_index.get(proc["gpu"])
            if gpu is None:
                continue
            gpu["processes"].append(proc)
            for gi in gpu["gpu_instances"]:
                if gi["gi_id"] == proc["gi_id"]:
                    gi["in_use"] = True
                    gi["pids"].append(proc["pid"])
        for gpu in gpus:
            gpu["gpu_instances"].sort(key=lambda g: g["placement"])
        return gpus

    def _model_from_gpu(self, gpu):
        """Unknown product: read its profile table from -lgip/-lgipp."""
        index = str(gpu["index"])
        lgip = miglib.parse_lgip(self.run(["mig", "-lgip", "-i", index], allow_empty=True))
        lgipp = miglib.parse_lgipp(self.run(["mig", "-lgipp", "-i", index], allow_empty=True))
        slices, profiles = miglib.profiles_from_lgip(lgip, lgipp, gpu["index"])
        if not profiles:
            return None
        return miglib.register_model("GPU%s:%s" % (index, gpu["name"]), slices, profiles)


def current_for_plan(gpu):
    """GPU instances of a gathered GPU in the shape mig.plan_gpu expects."""
    return [
        {"gi_id": gi["gi_id"], "profile_id": gi["profile_id"], "start": gi["placement"],
         "ci_count": len(gi["compute_instances"])}
        for gi in gpu["gpu_instances"]
    ]


def busy_map(gpu):
    return dict((gi["gi_id"], gi["pids"]) for gi in gpu["gpu_instances"] if gi["in_use"])


def _profile_memory_mb(profile):
    """Memory of a MIG profile in MiB, from its name (``3g.40gb`` -> 40960)."""
    match = re.match(r"^\d+g\.(\d+)gb", str(profile or ""))
    return int(match.group(1)) * 1024 if match else None


def schedulable_devices(gpus):
    """The devices a scheduler hands out, from :meth:`NvidiaSmi.state`'s GPUs.

    One entry per MIG device of a GPU with MIG enabled, one per whole GPU
    otherwise (a GPU with MIG enabled and no instance gives nothing). Keys:
    ``id`` (the UUID CUDA_VISIBLE_DEVICES takes), ``model`` (the product
    name, as condor_gpu_discovery's DeviceName), ``memory_mb``, and for MIG
    devices ``mig_profile`` and ``parent`` (the GPU's UUID). This is the
    shape of htcondor_gpus and jupyterhub_gpus.
    """
    devices = []
    for gpu in gpus:
        name = str(gpu.get("name") or gpu.get("model") or "").replace("NVIDIA ", "", 1)
        if gpu["mig_mode"]["current"] != "Enabled":
            device = {"id": gpu["uuid"], "model": name}
            if gpu.get("memory_total_mib"):
                device["memory_mb"] = int(gpu["memory_total_mib"])
            devices.append(device)
            continue
        for gi in gpu["gpu_instances"]:
            for ci in gi["compute_instances"]:
                device = {"id": ci["mig_device_uuid"], "model": name, "mig_profile": gi["profile"],
                          "parent": gpu["uuid"]}
                memory = _profile_memory_mb(gi["profile"])
                if memory:
                    device["memory_mb"] = memory
                devices.append(device)
    return devices

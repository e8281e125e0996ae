# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""fedgpu_accounting.devices against the nvidia-smi emulator and a fake pynvml built from the same state."""

import json
import os
import subprocess
import sys
import time

import pytest

import fake_pynvml
from fedgpu_accounting import devices

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
EMULATOR = os.path.join(ROOT, "tests", "emulator", "nvidia-smi")


class Emu(object):
    """The emulator on a state file; ``runner`` is what devices.read() takes. The clock is time.time()."""

    def __init__(self, state):
        self.state = state

    def env(self):
        return dict(os.environ, FAKE_NVIDIA_SMI_STATE=self.state, FAKE_NVIDIA_SMI_NOW=repr(time.time()))

    def __call__(self, *args, **kwargs):
        proc = subprocess.run([sys.executable, EMULATOR] + [str(a) for a in args], env=self.env(),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
        if kwargs.get("check", True) and proc.returncode != 0:
            raise AssertionError("emulator %s failed rc=%d: %s" % (args, proc.returncode, proc.stdout))
        return proc

    def runner(self, argv):
        proc = self(*argv[1:], check=False)
        return proc.returncode, proc.stdout

    def smi(self):
        return devices.read(source="nvidia-smi", runner=self.runner)

    def nvml_config(self, **extra):
        config = json.loads(self("--emulator-dump-nvml").stdout)
        config.update(extra)
        return config

    def nvml(self, **extra):
        fake = fake_pynvml.module(self.nvml_config(**extra))
        result = devices.read(source="nvml", pynvml_module=fake)
        assert fake.initialized == 0, "nvmlShutdown after nvmlInit"
        return result


@pytest.fixture
def emu(tmp_path):
    return Emu(str(tmp_path / "state.json"))


def by_uuid(result):
    return dict((d["uuid"], d) for d in result["devices"])


def uuids(emu):
    data = json.loads(emu("--emulator-dump").stdout)
    return [g["uuid"] for g in data["gpus"]], dict(
        ((g["index"], gi["id"], ci["id"]), ci["uuid"]) for g in data["gpus"] for gi in g["gpu_instances"]
        for ci in gi["compute_instances"])


def mig_setup(emu):
    """GPU 0: A100-80GB with 3g.40gb (GI 2) + 1g.10gb (GI 13); GPU 1: A30 without MIG."""
    emu("--emulator-init", "A100-80GB,A30")
    emu("-i", "0", "-mig", "1")
    emu("mig", "-i", "0", "-cgi", "3g.40gb:0,1g.10gb:6", "-C")
    emu("--emulator-add-process", "0:2:0:4242:python:10240")
    emu("--emulator-add-process", "0:2:0:4243:python3:512")
    emu("--emulator-add-process", "0:13:0:777:trainer:3000")
    emu("--emulator-add-process", "1:-:-:999:jupyter:2048")
    emu("--emulator-set-utilization", "1=35")


# ----------------------------------------------------- nvidia-smi backend ---
def test_whole_gpus_without_mig(emu):
    emu("--emulator-init", "A100-80GB,H100")
    emu("--emulator-set-utilization", "0=75,1=0")
    emu("--emulator-set-power", "1=88.5")
    emu("--emulator-add-process", "0:-:-:1234:python:2048")
    emu("--emulator-add-process", "0:N/A:N/A:1300")
    gpus = uuids(emu)[0]
    result = emu.smi()
    assert result["backend"] == "nvidia-smi"
    assert result["devices"] == [
        {"uuid": gpus[0], "parent_uuid": None, "model": "NVIDIA A100-SXM4-80GB", "mig_profile": None,
         "gpu_fraction": 1.0, "mig_enabled": False, "util_pct": 75.0, "mem_used_mib": 2048.0 + 253,
         "mem_total_mib": 81920.0, "power_w": 60.0 + 340 * 0.75},
        {"uuid": gpus[1], "parent_uuid": None, "model": "NVIDIA H100 80GB HBM3", "mig_profile": None,
         "gpu_fraction": 1.0, "mig_enabled": False, "util_pct": 0.0, "mem_used_mib": 0.0,
         "mem_total_mib": 81559.0, "power_w": 88.5},
    ]
    assert result["processes"] == [{"device_uuid": gpus[0], "pid": 1234, "used_mem_mib": 2048.0},
                                   {"device_uuid": gpus[0], "pid": 1300, "used_mem_mib": 253.0}]
    emu("--emulator-remove-process", "1234")
    assert [p["pid"] for p in emu.smi()["processes"]] == [1300]


def test_mig_devices_and_their_processes(emu):
    mig_setup(emu)
    gpus, migs = uuids(emu)
    result = emu.smi()
    devs = by_uuid(result)
    assert [d["uuid"] for d in result["devices"]] == [gpus[0], migs[(0, 2, 0)], migs[(0, 13, 0)], gpus[1]]
    parent = devs[gpus[0]]
    assert parent["mig_enabled"] is True and parent["util_pct"] is None and parent["gpu_fraction"] == 1.0
    assert parent["mem_used_mib"] == 11 + 10240 + 512 + 11 + 3000 and parent["power_w"] == 60.0
    three = devs[migs[(0, 2, 0)]]
    assert three == {"uuid": migs[(0, 2, 0)], "parent_uuid": gpus[0], "model": "NVIDIA A100-SXM4-80GB",
                     "mig_profile": "3g.40gb", "gpu_fraction": 3.0 / 7, "mig_enabled": False, "util_pct": None,
                     "mem_used_mib": 11.0 + 10240 + 512, "mem_total_mib": 40448.0, "power_w": None}
    one = devs[migs[(0, 13, 0)]]
    assert (one["mig_profile"], one["gpu_fraction"], one["util_pct"], one["mem_used_mib"], one["mem_total_mib"]) == \
        ("1g.10gb", 1.0 / 7, None, 3011.0, 9984.0)
    a30 = devs[gpus[1]]
    assert (a30["model"], a30["util_pct"], a30["mig_enabled"], a30["mem_used_mib"]) == ("NVIDIA A30", 35.0, False, 2048.0)
    assert result["processes"] == [
        {"device_uuid": migs[(0, 2, 0)], "pid": 4242, "used_mem_mib": 10240.0},
        {"device_uuid": migs[(0, 2, 0)], "pid": 4243, "used_mem_mib": 512.0},
        {"device_uuid": migs[(0, 13, 0)], "pid": 777, "used_mem_mib": 3000.0},
        {"device_uuid": gpus[1], "pid": 999, "used_mem_mib": 2048.0},
    ]


def test_mig_mode_without_instances_and_a_smaller_compute_instance(emu):
    emu("--emulator-init", "A100-40GB")
    emu("-i", "0", "-mig", "1")
    result = emu.smi()
    assert len(result["devices"]) == 1 and result["devices"][0]["mig_enabled"] and result["processes"] == []
    emu("mig", "-i", "0", "-cgi", "9:4")
    emu("mig", "-i", "0", "-gi", "1", "-cci", "0")
    mig = emu.smi()["devices"][1]
    assert (mig["mig_profile"], mig["gpu_fraction"]) == ("1c.3g.20gb", 1.0 / 7)
    assert emu.nvml()["devices"] == emu.smi()["devices"]


def test_utilization_script_over_time(emu, monkeypatch):
    clock = [1800000000.0]
    monkeypatch.setattr(time, "time", lambda: clock[0])
    emu("--emulator-init", "A100-80GB,A100-80GB")
    emu("--emulator-set-utilization", "0=5,1=50")
    emu("--emulator-utilization-script", "0:0=80,120=0")

    def utils():
        return [d["util_pct"] for d in emu.smi()["devices"]]

    assert utils() == [80.0, 50.0]
    clock[0] += 119.5
    assert utils() == [80.0, 50.0]
    clock[0] += 1
    assert utils() == [0.0, 50.0]
    clock[0] += 3600
    assert utils() == [0.0, 50.0]
    emu("--emulator-utilization-script", "1:10=90")       # before its first point: the set value
    assert utils() == [0.0, 50.0]
    clock[0] += 10
    assert utils() == [0.0, 90.0]
    assert [d["util_pct"] for d in emu.nvml()["devices"]] == [0.0, 90.0]
    emu("--emulator-set-utilization", "1=20")            # drops the script
    clock[0] += 100
    assert utils() == [0.0, 20.0]


def test_no_driver(emu, tmp_path):
    with pytest.raises(devices.DeviceReadError) as err:
        emu.smi()                                   # no state file: the host has no driver
    assert "couldn't communicate with the NVIDIA driver" in str(err.value)
    with pytest.raises(devices.DeviceReadError) as err:
        devices.read(source="nvidia-smi", nvidia_smi=str(tmp_path / "missing" / "nvidia-smi"))
    assert "not found" in str(err.value)
    fake = fake_pynvml.module({"driver_loaded": False, "gpus": []})
    with pytest.raises(devices.DeviceReadError) as err:
        devices.read(source="nvml", pynvml_module=fake)
    assert "Driver Not Loaded" in str(err.value)
    with pytest.raises(devices.DeviceReadError):
        devices.read(source="auto", pynvml_module=fake, runner=emu.runner)
    with pytest.raises(devices.DeviceReadError):
        devices.read(source="nvml", pynvml_module=fake_pynvml.module({"gpus": []}))


def test_default_runner_runs_the_tool(emu, tmp_path, monkeypatch):
    """The real subprocess path: an executable named nvidia-smi, state from the environment."""
    tool = tmp_path / "nvidia-smi"
    tool.write_text("#!%s\nimport runpy, sys\nsys.argv[0] = %r\nrunpy.run_path(%r, run_name='__main__')\n"
                    % (sys.executable, EMULATOR, EMULATOR))
    tool.chmod(0o755)
    emu("--emulator-init", "A30")
    monkeypatch.setenv("FAKE_NVIDIA_SMI_STATE", emu.state)
    result = devices.read(source="auto", nvidia_smi=str(tool), pynvml_module=fake_pynvml.module({"driver_loaded": False}))
    assert result["backend"] == "nvidia-smi" and result["devices"][0]["model"] == "NVIDIA A30"


# ----------------------------------------------------------- NVML backend ---
@pytest.mark.parametrize("str_returns", [True, False])
def test_nvml_gives_what_nvidia_smi_gives(emu, str_returns):
    mig_setup(emu)
    smi = emu.smi()
    nvml = emu.nvml(str_returns=str_returns)
    assert nvml["backend"] == "nvml"
    assert nvml["devices"] == smi["devices"]
    assert nvml["processes"] == smi["processes"]
    emu("--emulator-init", "H200,A100-40GB")
    emu("--emulator-set-utilization", "0=64")
    emu("--emulator-set-power", "1=NS")
    emu("--emulator-add-process", "0:-:-:31337:python:70000")
    smi, nvml = emu.smi(), emu.nvml(str_returns=str_returns)
    assert (nvml["devices"], nvml["processes"]) == (smi["devices"], smi["processes"])
    assert smi["devices"][1]["power_w"] is None and smi["devices"][0]["power_w"] == 60.0 + 640 * 0.64


def test_nvml_documented_behaviour(emu):
    mig_setup(emu)
    fake = fake_pynvml.module(emu.nvml_config(privileged=False))
    result = devices.read(source="auto", pynvml_module=fake, runner=emu.runner)
    assert result["backend"] == "nvml"
    # MIG: utilization NOT_SUPPORTED -> None (unknown), processes asked per MIG device handle
    assert [d["util_pct"] for d in result["devices"]] == [None, None, None, 35.0]
    parent = result["devices"][0]["uuid"]
    on_parent = [c for c in fake.calls if c[0] == "nvmlDeviceGetComputeRunningProcesses" and c[1].mig is None
                 and c[1].gpu["uuid"] == parent]
    assert on_parent == []          # unprivileged, the parent's aggregate would be NO_PERMISSION
    assert len(result["processes"]) == 4
    err = fake_pynvml.NVMLError(fake_pynvml.NVML_ERROR_NOT_SUPPORTED)
    assert isinstance(err, fake_pynvml.NVMLError_NotSupported) and err.value == 3 and str(err) == "Not Supported"


def test_nvml_units_and_unknown_memory():
    config = {"gpus": [{"uuid": "GPU-a", "name": "NVIDIA H100 80GB HBM3", "mig_mode": None, "utilization_gpu": 12,
                        "memory_used": 3 * 1024 ** 3, "memory_total": 80 * 1024 ** 3, "power_mw": 123456,
                        "processes": [{"pid": 5, "used_memory": None}, {"pid": 6, "used_memory": 512 * 1024 ** 2}],
                        "mig_devices": []}]}
    result = devices.read(source="nvml", pynvml_module=fake_pynvml.module(config))
    dev = result["devices"][0]
    assert (dev["mig_enabled"], dev["util_pct"], dev["mem_used_mib"], dev["mem_total_mib"], dev["power_w"]) == \
        (False, 12.0, 3072.0, 81920.0, 123.456)
    assert result["processes"] == [{"device_uuid": "GPU-a", "pid": 5, "used_mem_mib": None},
                                   {"device_uuid": "GPU-a", "pid": 6, "used_mem_mib": 512.0}]


def test_source_argument():
    with pytest.raises(ValueError):
        devices.read(source="dcgm")


# ------------------------------------------------------------- emulator ---
def test_emulator_query_formats(emu):
    mig_setup(emu)
    emu("--emulator-set-power", "1=NS")
    out = emu("--query-gpu=index,utilization.gpu,memory.used,power.draw", "--format=csv").stdout.splitlines()
    assert out == ["index, utilization.gpu [%], memory.used [MiB], power.draw [W]",
                   "0, [N/A], 13774 MiB, 60.00 W", "1, 35 %, 2048 MiB, [Not Supported]"]
    out = emu("--query-gpu=utilization.gpu,power.draw", "--format=csv,noheader,nounits", "-i", "1").stdout
    assert out == "35, [Not Supported]\n"
    gpus = uuids(emu)[0]
    out = emu("--query-compute-apps=gpu_uuid,pid,used_memory", "--format=csv").stdout.splitlines()
    assert out[0] == "gpu_uuid, pid, used_gpu_memory [MiB]"
    assert out[1:] == ["%s, 4242, 10240 MiB" % gpus[0], "%s, 4243, 512 MiB" % gpus[0], "%s, 777, 3000 MiB" % gpus[0],
                       "%s, 999, 2048 MiB" % gpus[1]]
    emu("--emulator-clear-processes")
    assert emu("--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits").stdout == ""


def test_emulator_tables_read_by_the_collection_parser(emu):
    """The summary stays what plugins/module_utils/mig.py parses, with processes on whole GPUs too."""
    from ansible_collections.fedgpu.platform.plugins.module_utils import mig
    mig_setup(emu)
    parsed = mig.parse_smi(emu().stdout)
    assert sorted((d["gpu"], d["gi_id"], d["ci_id"]) for d in parsed["mig_devices"]) == [(0, 2, 0), (0, 13, 0)]
    assert [(p["gpu"], p["gi_id"], p["ci_id"], p["pid"], p["used_memory"]) for p in parsed["processes"]] == [
        (0, 2, 0, 4242, "10240MiB"), (0, 2, 0, 4243, "512MiB"), (0, 13, 0, 777, "3000MiB"), (1, None, None, 999, "2048MiB")]


def test_emulator_process_options_are_checked(emu):
    mig_setup(emu)
    assert emu("--emulator-add-process", "0:-:-:5", check=False).returncode == 2        # GPU 0 is in MIG mode
    assert emu("--emulator-add-process", "1:1:0:5", check=False).returncode == 6        # GPU 1 has no MIG device
    assert emu("--emulator-add-process", "1:-:-:x", check=False).returncode == 2
    assert emu("--emulator-remove-process", "123456", check=False).returncode == 6
    assert emu("--emulator-set-utilization", "1=101", check=False).returncode == 2
    assert emu("--emulator-utilization-script", "1", check=False).returncode == 2
    emu("--emulator-remove-process", "4242")
    assert [p["pid"] for p in emu.smi()["processes"]] == [4243, 777, 999]


# ------------------------------------------------------------ fractions ---
def test_gpu_fraction_agrees_with_module_utils_mig():
    from ansible_collections.fedgpu.platform.plugins.module_utils import mig
    names = {"A100-40GB": "NVIDIA A100-SXM4-40GB", "A100-80GB": "NVIDIA A100-SXM4-80GB",
             "H100-80GB": "NVIDIA H100 80GB HBM3", "H200-141GB": "NVIDIA H200", "A30-24GB": "NVIDIA A30"}
    for key, name in names.items():
        assert mig.resolve_model(name) == key
        profiles = mig.model_profiles(key)
        whole = max(p.compute for p in profiles)
        assert devices.gpu_slices(name) == whole
        for prof in profiles:
            assert devices.profile_slices(prof.name) == prof.compute, (key, prof.name)
            assert devices.gpu_fraction(name, prof.name) == float(prof.compute) / whole
    assert devices.gpu_fraction("NVIDIA A100-SXM4-80GB", "3g.40gb") == 3.0 / 7
    assert devices.gpu_fraction("NVIDIA A30", "2g.12gb") == 0.5
    assert devices.gpu_fraction("NVIDIA A100-SXM4-80GB", None) == 1.0

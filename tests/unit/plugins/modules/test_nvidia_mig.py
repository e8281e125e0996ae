# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""nvidia_mig and nvidia_gpu_info end to end against the nvidia-smi emulator."""


def layouts(*entries):
    return {"layouts": list(entries)}


def entry(gpu, *profiles, **kwargs):
    items = []
    for prof in profiles:
        if ":" in prof:
            name, start = prof.split(":")
            items.append({"profile": name, "placement": int(start)})
        else:
            items.append({"profile": prof})
    result = {"gpu": gpu, "instances": items}
    result.update(kwargs)
    return result


def test_check_mode_then_apply_then_idempotent(emulator):
    args = layouts(entry(0, "3g.40gb", "3g.40gb"), entry(1, "4g.40gb", "2g.20gb", "1g.10gb"))
    before = emulator.data()
    checked = emulator.run_module("nvidia_mig", args, check_mode=True, diff=True)
    assert checked["changed"] is True
    assert emulator.data() == before, "check mode changed the GPU"
    assert checked["diff"]["after"]["gpu0"]["instances"] == ["3g.40gb@0:4", "3g.40gb@4:4"]
    assert checked["diff"]["before"]["gpu0"] == {"mig": "Disabled", "instances": []}

    applied = emulator.run_module("nvidia_mig", args, diff=True)
    assert applied["changed"] is True, applied
    assert emulator.layout(0) == [(9, 0), (9, 4)]
    assert emulator.layout(1) == [(5, 0), (14, 4), (19, 6)]
    assert applied["diff"]["after"] == checked["diff"]["after"], "check mode predicted another result"
    # every GI got its compute instance (a MIG device)
    assert all(gi["compute_instances"] for g in emulator.data()["gpus"] for gi in g["gpu_instances"])

    again = emulator.run_module("nvidia_mig", args, check_mode=True)
    assert again["changed"] is False and again["commands"] == []
    again = emulator.run_module("nvidia_mig", args)
    assert again["changed"] is False and again["commands"] == []


def test_changes_only_the_difference_and_busy_instance_survives(emulator):
    emulator.run_module("nvidia_mig", layouts(entry(0, "3g.40gb", "1g.10gb", "1g.10gb", "1g.10gb", "1g.10gb")))
    gpu = emulator.data()["gpus"][0]
    three = [gi for gi in gpu["gpu_instances"] if gi["profile_id"] == 9][0]
    emulator("--emulator-add-process", "0:%d:0:4242:train.py" % three["id"])
    uuid_before = three["compute_instances"][0]["uuid"]

    result = emulator.run_module("nvidia_mig", layouts(entry(0, "3g.40gb", "2g.20gb", "2g.20gb")))
    assert result["changed"] is True, result
    report = result["gpus"][0]
    assert report["kept"] == ["3g.40gb@%d:4" % three["start"]]
    assert len(report["destroyed"]) == 4 and len(report["created"]) == 2
    gpu = emulator.data()["gpus"][0]
    survivor = [gi for gi in gpu["gpu_instances"] if gi["profile_id"] == 9][0]
    assert survivor["compute_instances"][0]["uuid"] == uuid_before, "busy instance was recreated"
    assert sorted(gi["profile_id"] for gi in gpu["gpu_instances"]) == [9, 14, 14]


def test_refuses_to_destroy_busy_instance_before_any_change(emulator):
    emulator.run_module("nvidia_mig", layouts(entry(0, "3g.40gb", "3g.40gb"), entry(1, "7g.80gb")))
    gi_id = emulator.data()["gpus"][0]["gpu_instances"][0]["id"]
    emulator("--emulator-add-process", "0:%d:0:777" % gi_id)
    before = emulator.data()
    # GPU 1 is listed first and would change, but GPU 0 makes the task fail before any change
    result = emulator.run_module("nvidia_mig", layouts(entry(1, "1g.10gb"), entry(0, "7g.80gb")))
    assert result.get("failed") is True
    assert "refusing to destroy" in result["msg"] and "777" in result["msg"] and "force" in result["msg"]
    assert result["option"] == "layouts[1]"
    assert emulator.data() == before

    # force makes the module try; the driver (emulated) still refuses while a process holds the device
    forced = emulator.run_module("nvidia_mig", dict(layouts(entry(0, "7g.80gb")), force=True))
    assert forced.get("failed") is True
    assert "In use by another client" in forced["msg"]
    assert emulator.layout(0) == [(9, 0), (9, 4)]


def test_force_destroys_when_processes_are_gone_from_the_driver_view(emulator):
    emulator.run_module("nvidia_mig", layouts(entry(0, "3g.40gb", "3g.40gb")))
    result = emulator.run_module("nvidia_mig", dict(layouts(entry(0, "7g.80gb")), force=True))
    assert result["changed"] is True
    assert emulator.layout(0) == [(0, 0)]


def test_pending_mig_mode_reported_then_reset(emulator):
    emulator("--emulator-init", "A100-80GB", "--emulator-reset-unsupported")
    result = emulator.run_module("nvidia_mig", layouts(entry(0, "7g.80gb")))
    assert result["changed"] is True
    assert result["reboot_required"] is True and result["pending_reset"] == [0]
    assert "pending" in result["msg"] and "reboot" in result["msg"]
    assert result["gpus"][0]["pending_reset"] is True
    gpu = emulator.data()["gpus"][0]
    assert (gpu["mig_current"], gpu["mig_pending"]) == ("Disabled", "Enabled")
    assert gpu["gpu_instances"] == []

    again = emulator.run_module("nvidia_mig", layouts(entry(0, "7g.80gb")))
    assert again["changed"] is False and again["reboot_required"] is True, "pending GPU must not report a change twice"

    # allow_reset: reset is not supported on this (VM) GPU -> clear failure
    failed = emulator.run_module("nvidia_mig", dict(layouts(entry(0, "7g.80gb")), allow_reset=True))
    assert failed.get("failed") is True and "not supported" in failed["msg"]

    emulator("--emulator-reboot")
    done = emulator.run_module("nvidia_mig", layouts(entry(0, "7g.80gb")))
    assert done["changed"] is True and done["reboot_required"] is False
    assert emulator.layout(0) == [(0, 0)]


def test_allow_reset_applies_pending_mode(emulator):
    data = emulator.data()
    emulator("--emulator-add-process", "0:0:0:1", check=False)  # no MIG device yet: rejected by the emulator
    assert emulator.data() == data
    # make GPU 0 pending by hand (as after a -mig 1 that could not reset)
    data["gpus"][0]["mig_pending"] = "Enabled"
    import json
    with open(emulator.state, "w") as handle:
        json.dump(data, handle)
    result = emulator.run_module("nvidia_mig", dict(layouts(entry(0, "3g.40gb:4")), allow_reset=True))
    assert result["changed"] is True and result["reboot_required"] is False, result
    assert any(cmd.endswith("-i 0 -r") for cmd in result["commands"])
    assert emulator.layout(0) == [(9, 4)]


def test_bad_input_fails_before_any_change(emulator):
    emulator.run_module("nvidia_mig", layouts(entry(0, "3g.40gb")))
    before = emulator.data()
    cases = [
        (layouts(entry(0, "5g.50gb")), "layouts[0].instances[0]", "unknown MIG profile"),
        (layouts(entry(1, "4g.40gb", "4g.40gb")), "layouts[0].instances", "does not fit"),
        (layouts(entry(1, "3g.40gb:2")), "layouts[0].instances[0]", "not valid for profile 3g.40gb"),
        (layouts(entry(0, "1g.10gb"), entry(1, "3g.40gb", "3g.40gb", "1g.10gb")), "layouts[1].instances", "does not fit"),
        (layouts(entry(7, "1g.10gb")), "layouts[0].gpu", "no GPU with index 7"),
        (layouts(entry(2, "3g.40gb")), "layouts[0].instances[0]", "unknown MIG profile '3g.40gb' for A30-24GB"),
        (layouts(entry(0, "1g.10gb"), entry(0, "1g.10gb")), "layouts[1]", "more than once"),
        (layouts(entry(0, "1g.10gb", mig_enabled=False)), "layouts[0].instances", "must be empty"),
    ]
    for args, option, text in cases:
        result = emulator.run_module("nvidia_mig", args)
        assert result.get("failed") is True, (args, result)
        assert result.get("option") == option, (option, result)
        assert text in result["msg"], (text, result["msg"])
        assert emulator.data() == before, "state changed on bad input %s" % args


def test_disable_mig(emulator):
    emulator.run_module("nvidia_mig", layouts(entry(2, "2g.12gb", "2g.12gb")))
    assert emulator.layout(2) == [(5, 0), (5, 2)]
    result = emulator.run_module("nvidia_mig", layouts({"gpu": 2, "mig_enabled": False}))
    assert result["changed"] is True
    gpu = emulator.data()["gpus"][2]
    assert gpu["mig_current"] == "Disabled" and gpu["gpu_instances"] == []
    assert emulator.run_module("nvidia_mig", layouts({"gpu": 2, "mig_enabled": False}))["changed"] is False


def test_missing_compute_instance_is_recreated(emulator):
    emulator.run_module("nvidia_mig", layouts(entry(0, "3g.40gb:4")))
    emulator("mig", "-i", "0", "-gi", "1", "-dci")
    result = emulator.run_module("nvidia_mig", layouts(entry(0, "3g.40gb:4")))
    assert result["changed"] is True and result["gpus"][0]["created_compute_instances"] == [1]
    assert emulator.data()["gpus"][0]["gpu_instances"][0]["compute_instances"][0]["profile_id"] == 2


def test_gpu_info_reports_everything(emulator):
    emulator.run_module("nvidia_mig", layouts(entry(0, "3g.40gb:0", "1g.10gb:4"), entry(2, "4g.24gb")))
    gi = [g for g in emulator.data()["gpus"][0]["gpu_instances"] if g["profile_id"] == 9][0]
    emulator("--emulator-add-process", "0:%d:0:555:jupyter" % gi["id"])
    emulator("-i", "1", "-mig", "1")
    info = emulator.run_module("nvidia_gpu_info", {}, check_mode=True)
    assert info["changed"] is False
    gpus = info["gpus"]
    assert [g["model"] for g in gpus] == ["A100-80GB", "A100-80GB", "A30-24GB"]
    assert gpus[0]["memory_total_mib"] == 81920 and gpus[0]["uuid"].startswith("GPU-")
    assert gpus[0]["mig_mode"] == {"current": "Enabled", "pending": "Enabled"}
    assert [(g["profile"], g["placement"], g["in_use"], g["pids"]) for g in gpus[0]["gpu_instances"]] == [
        ("3g.40gb", 0, True, [555]), ("1g.10gb", 4, False, [])]
    uuids = [ci["mig_device_uuid"] for g in gpus[0]["gpu_instances"] for ci in g["compute_instances"]]
    assert all(u and u.startswith("MIG-") for u in uuids) and len(set(uuids)) == 2
    assert gpus[1]["gpu_instances"] == [] and gpus[1]["mig_mode"]["current"] == "Enabled"
    assert len(info["mig_devices"]) == 3
    assert [d["in_use"] for d in info["mig_devices"] if d["gpu"] == 0] == [True, False]
    # What schedulers hand out, in htcondor_gpus' shape: GPU 0's two MIG
    # devices, nothing of GPU 1 (MIG on, no instance), GPU 2's 4g.24gb.
    devices = info["devices"]
    uuids2 = [ci["mig_device_uuid"] for g in gpus[2]["gpu_instances"] for ci in g["compute_instances"]]
    assert [d["id"] for d in devices] == uuids + uuids2
    assert [(d["mig_profile"], d["memory_mb"]) for d in devices] == [("3g.40gb", 40960), ("1g.10gb", 10240), ("4g.24gb", 24576)]
    assert [d["parent"] for d in devices] == [gpus[0]["uuid"], gpus[0]["uuid"], gpus[2]["uuid"]]
    assert all(set(d) == {"id", "model", "memory_mb", "mig_profile", "parent"} for d in devices)
    assert not devices[0]["model"].startswith("NVIDIA ") and "A100" in devices[0]["model"]


def test_gpu_info_without_driver(tmp_path):
    from conftest import Emulator
    emu = Emulator(str(tmp_path / "missing.json"))
    result = emu.run_module("nvidia_gpu_info", {}, in_process=False)
    assert result.get("failed") is True and "driver" in result["msg"]


def test_modules_run_standalone(emulator):
    """The modules as Ansible runs them: python -m with a JSON args file."""
    args = layouts(entry(0, "3g.40gb:0", "3g.40gb:4"))
    first = emulator.run_module("nvidia_mig", args, in_process=False)
    assert first["changed"] is True and emulator.layout(0) == [(9, 0), (9, 4)]
    assert emulator.run_module("nvidia_mig", args, in_process=False)["changed"] is False
    info = emulator.run_module("nvidia_gpu_info", {}, in_process=False)
    assert [g["placement"] for g in info["gpus"][0]["gpu_instances"]] == [0, 4]
    # GPUs with MIG off are handed out whole.
    whole = [d for d in info["devices"] if d["id"].startswith("GPU-")]
    assert [d["id"] for d in whole] == [g["uuid"] for g in info["gpus"][1:]]
    assert all("mig_profile" not in d and d["memory_mb"] > 0 for d in whole)

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The nvidia-smi emulator reproduces the documented behaviour, and its tables agree with ours."""

import os

import pytest

from ansible_collections.fedgpu.platform.plugins.module_utils import mig


@pytest.mark.parametrize("hw,model", [("A100-SXM4-40GB", "A100-40GB"), ("A100-SXM4-80GB", "A100-80GB"),
                                      ("H100-80GB", "H100-80GB"), ("H200", "H200-141GB"), ("A30", "A30-24GB")])
def test_emulator_tables_match_module_utils(emulator, hw, model):
    """Two transcriptions of the guide (hardware stand-in vs. collection) must agree."""
    emulator("--emulator-init", hw)
    emulator("-i", "0", "-mig", "1")
    lgip = mig.parse_lgip(emulator("mig", "-lgip").stdout)
    lgipp = mig.parse_lgipp(emulator("mig", "-lgipp").stdout)
    slices, profiles = mig.profiles_from_lgip(lgip, lgipp, 0)
    assert slices == mig.model_slices(model)
    ours = [(p.name, p.id, p.size, p.starts, p.max_count) for p in mig.model_profiles(model)]
    theirs = [(p.name, p.id, p.size, p.starts, p.max_count) for p in profiles]
    assert theirs == ours
    name = mig.parse_list_gpus(emulator("-L").stdout)[0]["name"]
    assert mig.resolve_model(name) == model


def test_no_driver_state(tmp_path):
    from conftest import Emulator
    proc = Emulator(str(tmp_path / "none.json"))("-L", check=False)
    assert proc.returncode == 9 and "couldn't communicate with the NVIDIA driver" in proc.stdout


def test_mig_disabled_listing(emulator):
    proc = emulator("mig", "-lgi", check=False)
    assert proc.returncode == 6 and proc.stdout.strip() == "No MIG-enabled devices found."


def test_enable_list_create_destroy(emulator):
    out = emulator("-i", "0", "-mig", "1").stdout
    assert out == "Enabled MIG Mode for GPU 00000000:07:00.0\nAll done.\n"
    proc = emulator("mig", "-lgi", check=False)
    assert proc.returncode == 6 and proc.stdout == "No GPU instances found: Not Found\n"
    out = emulator("mig", "-i", "0", "-cgi", "9,3g.40gb", "-C").stdout.splitlines()
    assert out[0] == "Successfully created GPU instance ID  1 on GPU  0 using profile MIG 3g.40gb (ID  9)"
    assert out[1] == "Successfully created compute instance ID  0 on GPU  0 GPU instance ID  1 using profile MIG 3g.40gb (ID  2)"
    gis = mig.parse_lgi(emulator("mig", "-lgi").stdout)
    assert sorted((g["gi_id"], g["start"], g["size"]) for g in gis) == [(1, 4, 4), (2, 0, 4)]
    assert len(mig.parse_lci(emulator("mig", "-lci").stdout)) == 2
    # no room left
    proc = emulator("mig", "-i", "0", "-cgi", "19", check=False)
    assert proc.returncode != 0
    assert proc.stdout.splitlines() == ["Unable to create a GPU instance on GPU  0 using profile 19: Insufficient Resources",
                                        "Failed to create GPU instances: Insufficient Resources"]
    # a GI with compute instances cannot be destroyed
    proc = emulator("mig", "-i", "0", "-gi", "1", "-dgi", check=False)
    assert proc.returncode != 0 and "Unable to destroy GPU instance ID  1 from GPU  0: In use by another client" in proc.stdout
    assert emulator("mig", "-i", "0", "-gi", "1", "-dci").stdout == \
        "Successfully destroyed compute instance ID  0 from GPU  0 GPU instance ID  1\n"
    assert emulator("mig", "-i", "0", "-gi", "1", "-dgi").stdout == "Successfully destroyed GPU instance ID  1 from GPU  0\n"
    assert [g["gi_id"] for g in mig.parse_lgi(emulator("mig", "-lgi").stdout)] == [2]


def test_placement_specifier(emulator):
    emulator("-i", "0", "-mig", "1")
    emulator("mig", "-i", "0", "-cgi", "14:2,19:6", "-C")
    gis = mig.parse_lgi(emulator("mig", "-lgi").stdout)
    assert sorted((g["profile_id"], g["start"]) for g in gis) == [(14, 2), (19, 6)]
    bad = emulator("mig", "-i", "0", "-cgi", "9:2", check=False)
    assert bad.returncode == 2 and "Invalid Argument" in bad.stdout
    taken = emulator("mig", "-i", "0", "-cgi", "14:2", check=False)
    assert "Insufficient Resources" in taken.stdout


def test_busy_compute_instance_cannot_be_destroyed(emulator):
    emulator("-i", "0", "-mig", "1")
    emulator("mig", "-i", "0", "-cgi", "19:0", "-C")
    emulator("--emulator-add-process", "0:7:0:4242:python")
    procs = mig.parse_smi(emulator().stdout)["processes"]
    assert [(p["gpu"], p["gi_id"], p["ci_id"], p["pid"]) for p in procs] == [(0, 7, 0, 4242)]
    proc = emulator("mig", "-i", "0", "-gi", "7", "-dci", check=False)
    assert proc.returncode != 0 and "In use by another client" in proc.stdout
    emulator("--emulator-clear-processes")
    emulator("mig", "-i", "0", "-gi", "7", "-dci")


def test_pending_mode_until_reboot(emulator):
    emulator("--emulator-init", "A100-40GB", "--emulator-reset-unsupported")
    out = emulator("-i", "0", "-mig", "1").stdout.splitlines()
    assert out[0] == "Warning: MIG mode is in pending enable state for GPU 00000000:07:00.0:Not Supported"
    assert out[-1] == "All done."
    q = mig.parse_query_q(emulator("-q").stdout)[0]
    assert (q["mig_mode_current"], q["mig_mode_pending"]) == ("Disabled", "Enabled")
    reset = emulator("-i", "0", "-r", check=False)
    assert reset.returncode == 3 and "is not supported" in reset.stdout
    emulator("--emulator-reboot")
    q = mig.parse_query_q(emulator("-q").stdout)[0]
    assert (q["mig_mode_current"], q["mig_mode_pending"]) == ("Enabled", "Enabled")


def test_query_gpu_csv(emulator):
    out = emulator("--query-gpu=index,name,memory.total,mig.mode.current", "--format=csv").stdout.splitlines()
    assert out[0] == "index, name, memory.total [MiB], mig.mode.current"
    assert out[1] == "0, NVIDIA A100-SXM4-80GB, 81920 MiB, Disabled"
    out = emulator("--query-gpu=index,memory.total", "--format=csv,noheader,nounits", "-i", "2").stdout
    assert out == "2, 24576\n"
    bad = emulator("--query-gpu=bogus", "--format=csv", check=False)
    assert bad.returncode == 2


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the emulator as another user")
def test_any_user_queries_only_root_changes(tmp_path_factory):
    """As with the real tool, a job's user can list the devices; changing MIG needs root."""
    import shutil
    import subprocess
    import sys
    import tempfile
    from conftest import EMULATOR, Emulator
    # A directory that user nobody can reach (pytest's tmp_path is root-only).
    work = tempfile.mkdtemp(prefix="fedgpu-emu-", dir="/tmp")
    try:
        os.chmod(work, 0o755)
        state = os.path.join(work, "state.json")
        root = Emulator(state)
        root("--emulator-init", "A100-80GB")
        root("-i", "0", "-mig", "1")
        root("mig", "-cgi", "1g.10gb,1g.10gb", "-C")
        os.chmod(state, 0o644)
        assert os.path.exists(state + ".lock")

        # The emulator and an interpreter that user nobody can run (a venv's
        # may sit under root's home), as on a GPU worker: /usr/bin/nvidia-smi.
        tool = os.path.join(work, "nvidia-smi")
        shutil.copy(EMULATOR, tool)
        os.chmod(tool, 0o755)
        python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable

        def as_nobody(*args):
            return subprocess.run([python, tool] + list(args), env=root.env, cwd=work,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                                  preexec_fn=lambda: (os.setgid(65534), os.setuid(65534)), check=False)

        listing = as_nobody("-L")
        assert listing.returncode == 0, listing.stdout
        assert listing.stdout.count("MIG 1g.10gb") == 2
        refused = as_nobody("mig", "-cgi", "1g.10gb", "-C")
        assert refused.returncode == 4 and "Insufficient Permissions" in refused.stdout
        assert mig.parse_lgi(root("mig", "-lgi").stdout).__len__() == 2
    finally:
        shutil.rmtree(work)

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parsers against the outputs documented in NVIDIA's MIG User Guide (fixtures/nvidia_smi)."""

import os

import pytest

from ansible_collections.fedgpu.platform.plugins.module_utils import mig

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "nvidia_smi")


def fixture(name):
    with open(os.path.join(FIXTURES, name)) as handle:
        return handle.read()


def test_lgip_h100():
    rows = mig.parse_lgip(fixture("lgip_h100_80gb.txt"))
    assert [(r["name"], r["id"], r["free"], r["total"]) for r in rows] == [
        ("1g.10gb", 19, 7, 7), ("1g.10gb+me", 20, 1, 1), ("1g.20gb", 15, 4, 4), ("2g.20gb", 14, 3, 3),
        ("3g.40gb", 9, 2, 2), ("4g.40gb", 5, 1, 1), ("7g.80gb", 0, 1, 1),
    ]
    assert rows[-1]["memory_gib"] == 79.25


def test_lgip_matches_h100_table():
    """Names, IDs and max counts printed by a real H100 agree with our table."""
    rows = mig.parse_lgip(fixture("lgip_h100_80gb.txt"))
    table = dict((p.id, p) for p in mig.model_profiles("H100-80GB"))
    for row in rows:
        assert table[row["id"]].name == row["name"]
        assert table[row["id"]].max_count == row["total"]


def test_lgip_a30_full_gpu_free_zero():
    rows = mig.parse_lgip(fixture("lgip_a30.txt"))
    assert [(r["name"], r["id"], r["free"], r["total"]) for r in rows] == [
        ("1g.6gb", 14, 0, 4), ("1g.6gb+me", 21, 0, 1), ("2g.12gb", 5, 0, 2), ("4g.24gb", 0, 0, 1),
    ]


@pytest.mark.parametrize("name,model", [("lgipp_a100_40gb.txt", "A100-40GB"), ("lgipp_a30.txt", "A30-24GB")])
def test_lgipp_matches_tables(name, model):
    rows = mig.parse_lgipp(fixture(name))
    assert rows, "no placement line parsed"
    table = dict((p.id, p) for p in mig.model_profiles(model))
    for row in rows:
        assert tuple(row["starts"]) == table[row["id"]].starts
        assert row["size"] == table[row["id"]].size


def test_lgipp_singular_placement_line():
    rows = mig.parse_lgipp(fixture("lgipp_a100_40gb.txt"))
    assert rows[-1] == {"gpu": 0, "id": 0, "starts": [0], "size": 8}
    assert rows[5] == {"gpu": 0, "id": 5, "starts": [0], "size": 4}


def test_lgi_examples():
    assert [(g["profile"], g["profile_id"], g["gi_id"], g["start"], g["size"]) for g in mig.parse_lgi(fixture("lgi_3211.txt"))] == [
        ("1g.5gb", 19, 7, 0, 1), ("1g.5gb", 19, 8, 1, 1), ("2g.10gb", 14, 4, 2, 2), ("3g.20gb", 9, 2, 4, 4),
    ]
    assert len(mig.parse_lgi(fixture("lgi_211111.txt"))) == 6
    assert [g["gi_id"] for g in mig.parse_lgi(fixture("lgi_a30.txt"))] == [3, 4, 5, 6]
    assert mig.parse_lgi(fixture("lgi_empty.txt")) == []


def test_lgi_example_layout_is_valid():
    gis = mig.parse_lgi(fixture("lgi_3211.txt"))
    fixed = [(mig.get_profile("A100-40GB", g["profile_id"]), g["start"]) for g in gis]
    assert mig.assign_placements("A100-40GB", fixed, []) == []


def test_lci_without_placement_column():
    rows = mig.parse_lci(fixture("lci_three_ci.txt"))
    assert [(r["gpu"], r["gi_id"], r["profile"], r["profile_id"], r["ci_id"]) for r in rows] == [
        (0, 1, "1c.3g.20gb", 0, 0), (0, 1, "1c.3g.20gb", 0, 1), (0, 1, "1c.3g.20gb", 0, 2),
    ]
    assert "start" not in rows[0]


def test_lci_with_placement_column_of_older_drivers():
    text = "|   0      1       MIG 3g.20gb          2         0          0:3     |\n"
    assert mig.parse_lci(text) == [{"gpu": 0, "gi_id": 1, "profile": "3g.20gb", "profile_id": 2, "ci_id": 0, "start": 0, "size": 3}]


def test_list_gpus_with_mig_devices():
    gpus = mig.parse_list_gpus(fixture("list_gpus_mig.txt"))
    assert len(gpus) == 1
    assert gpus[0]["name"] == "A100-SXM4-40GB"
    assert gpus[0]["uuid"] == "GPU-e86cb44c-6756-fd30-cd4a-1e6da3caf9b0"
    assert [d["uuid"] for d in gpus[0]["mig_devices"]] == [
        "MIG-c7384736-a75d-5afc-978f-d2f1294409fd", "MIG-a28ad590-3fda-56dd-84fc-0a0b96edc58d"]


def test_list_gpus_old_mig_uuid_form():
    text = ("GPU 0: A100-SXM4-40GB (UUID: GPU-5d5ba0d6-d33d-2b2c-524d-9e3d8d2b8a77)\n"
            "  MIG 1g.5gb Device 0: (UUID: MIG-GPU-5d5ba0d6-d33d-2b2c-524d-9e3d8d2b8a77/7/0)\n")
    assert mig.parse_list_gpus(text)[0]["mig_devices"][0]["uuid"].endswith("/7/0")


def test_smi_processes_attributed_to_gi_ci():
    parsed = mig.parse_smi(fixture("smi_processes.txt"))
    assert [(d["gpu"], d["gi_id"], d["ci_id"], d["mig_device"]) for d in parsed["mig_devices"]] == [(0, 1, 0, 0), (0, 2, 0, 1)]
    assert [(p["gi_id"], p["ci_id"], p["pid"], p["name"]) for p in parsed["processes"]] == [
        (1, 0, 58866, "./BlackScholes"), (2, 0, 58856, "./BlackScholes")]


def test_smi_no_processes_and_shared_gi_rows():
    parsed = mig.parse_smi(fixture("smi_no_processes.txt"))
    assert parsed["processes"] == []
    assert [(d["gi_id"], d["ci_id"], d["mig_device"]) for d in parsed["mig_devices"]] == [(1, 0, 0), (1, 1, 1), (1, 2, 2)]


def test_smi_non_mig_process_row():
    text = "| Processes: |\n|    0   N/A  N/A      4567      C   ./my_program                   450MiB    |\n"
    assert mig.parse_smi(text)["processes"][0]["gi_id"] is None


def test_query_q_current_and_pending():
    gpus = mig.parse_query_q(fixture("q_mig_pending.txt"))
    assert [(g["pci_bus_id"], g["mig_mode_current"], g["mig_mode_pending"]) for g in gpus] == [
        ("00000000:00:03.0", "Disabled", "Enabled"), ("00000000:36:00.0", "Enabled", "Enabled")]
    assert gpus[0]["uuid"] == "GPU-e86cb44c-6756-fd30-cd4a-1e6da3caf9b0"


def test_query_csv():
    lines = fixture("query_gpu_mig.csv").splitlines()[1:]  # the guide's example has a header
    assert mig.parse_query_csv("\n".join(lines), ["pci.bus_id", "mig.mode.current"]) == [
        {"pci.bus_id": "00000000:36:00.0", "mig.mode.current": "Enabled"}]
    with pytest.raises(ValueError):
        mig.parse_query_csv("a, b, c\n", ["x", "y"])


def test_profiles_from_gpu_output():
    slices, profiles = mig.profiles_from_lgip(mig.parse_lgip(fixture("lgip_a30.txt")), mig.parse_lgipp(fixture("lgipp_a30.txt")), 0)
    assert slices == 4
    assert [(p.name, p.id, p.size, p.starts, p.max_count) for p in profiles] == [
        ("1g.6gb", 14, 1, (0, 1, 2, 3), 4), ("1g.6gb+me", 21, 1, (0, 1, 2, 3), 1), ("2g.12gb", 5, 2, (0, 2), 2), ("4g.24gb", 0, 4, (0,), 1)]

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Profile tables, placement validity and the keep/destroy/create diff."""

import itertools

import pytest

from ansible_collections.fedgpu.platform.plugins.module_utils import mig

A100 = "A100-80GB"


def layout(*items):
    return mig.normalize_layout(A100, list(items))


@pytest.mark.parametrize("name,model", [
    ("NVIDIA A100-SXM4-80GB", "A100-80GB"), ("A100-SXM4-40GB", "A100-40GB"), ("NVIDIA A100-PCIE-40GB", "A100-40GB"),
    ("NVIDIA A100 80GB PCIe", "A100-80GB"), ("NVIDIA H100 80GB HBM3", "H100-80GB"), ("NVIDIA H200", "H200-141GB"),
    ("NVIDIA A30", "A30-24GB"), ("NVIDIA H100 NVL", None), ("NVIDIA GeForce RTX 4070", None), ("A100-80GB", "A100-80GB"),
])
def test_resolve_model(name, model):
    assert mig.resolve_model(name) == model


def test_resolve_a100_by_memory():
    assert mig.resolve_model("NVIDIA A100-PCIE", 81920) == "A100-80GB"


@pytest.mark.parametrize("spec", ["3g.40gb", "MIG 3g.40gb", "9", 9, "3G.40GB"])
def test_profile_by_name_or_id(spec):
    assert mig.get_profile(A100, spec).id == 9


def test_unknown_profile_names_option():
    with pytest.raises(mig.MigError) as err:
        mig.normalize_layout(A100, [{"profile": "5g.50gb"}], "layouts[0].instances")
    assert err.value.option == "layouts[0].instances[0]"
    assert "unknown MIG profile '5g.50gb'" in str(err.value)
    assert "3g.40gb (ID 9)" in str(err.value)


def test_a100_40gb_names_differ():
    with pytest.raises(mig.MigError):
        mig.get_profile("A100-40GB", "3g.40gb")
    assert mig.get_profile("A100-40GB", "3g.20gb").id == 9


@pytest.mark.parametrize("items", [
    ["7g.80gb"], ["3g.40gb", "3g.40gb"], ["2g.20gb"] * 3 + ["1g.10gb"], ["1g.10gb"] * 7, ["4g.40gb", "3g.40gb"],
    ["4g.40gb", "2g.20gb", "1g.10gb"], ["3g.40gb", "2g.20gb", "1g.10gb"], ["1g.20gb"] * 4, ["3g.40gb"] + ["1g.10gb"] * 4,
])
def test_documented_layouts_fit(items):
    placed = layout(*items)
    starts = mig.assign_placements(A100, [], placed)
    masks = [mig.slice_mask(s, p.size) for (p, _n), s in zip(placed, starts)]
    assert sum(bin(m).count("1") for m in masks) == bin(sum(masks)).count("1"), "instances overlap"
    for (profile, _n), start in zip(placed, starts):
        assert start in profile.starts


@pytest.mark.parametrize("items", [
    ["7g.80gb", "1g.10gb"], ["3g.40gb"] * 3, ["4g.40gb", "4g.40gb"], ["1g.10gb"] * 8, ["2g.20gb"] * 4,
    ["4g.40gb", "3g.40gb", "1g.10gb"], ["1g.20gb"] * 4 + ["1g.10gb"], ["1g.10gb+me", "1g.10gb+me"],
])
def test_layouts_that_do_not_fit(items):
    with pytest.raises(mig.MigError) as err:
        mig.normalize_layout(A100, items, "layouts[2].instances")
    assert err.value.option == "layouts[2].instances"
    assert "does not fit" in err.value.msg


@pytest.mark.parametrize("item,valid", [
    ({"profile": "3g.40gb", "placement": 4}, True), ({"profile": "3g.40gb", "placement": 2}, False),
    ({"profile": "4g.40gb", "placement": 4}, False), ({"profile": "1g.10gb", "placement": 7}, False),
    ({"profile": "1g.20gb", "placement": 6}, True), ({"profile": "1g.20gb", "placement": 5}, False),
    ({"profile": "2g.20gb", "placement": 6}, False), ({"profile": "7g.80gb", "placement": 0}, True),
])
def test_placement_validity(item, valid):
    if valid:
        assert layout(item)[0][1] == item["placement"]
    else:
        with pytest.raises(mig.MigError) as err:
            mig.normalize_layout(A100, [item], "instances")
        assert "not valid for profile" in err.value.msg
        assert "valid placement starts" in err.value.msg


def test_overlapping_explicit_placements():
    with pytest.raises(mig.MigError) as err:
        layout({"profile": "4g.40gb", "placement": 0}, {"profile": "2g.20gb", "placement": 2})
    assert "overlaps" in err.value.msg


def test_string_shorthand():
    assert [(p.name, s) for p, s in layout("3g.40gb:4", "14", "1g.10gb")] == [("3g.40gb", 4), ("2g.20gb", None), ("1g.10gb", None)]


def brute_force_fits(model, profiles):
    """Independent oracle: try every combination of valid starts."""
    total = mig.model_slices(model)
    for starts in itertools.product(*[p.starts for p in profiles]):
        used = 0
        ok = True
        for profile, start in zip(profiles, starts):
            mask = ((1 << profile.size) - 1) << start
            if start + profile.size > total or used & mask:
                ok = False
                break
            used |= mask
        if ok and all(sum(1 for q in profiles if q.id == p.id) <= p.max_count for p in profiles):
            return True
    return False


@pytest.mark.parametrize("model", ["A100-80GB", "A30-24GB"])
def test_assign_placements_agrees_with_brute_force(model):
    profiles = [p for p in mig.model_profiles(model) if not p.name.endswith("+me")]
    checked = 0
    for size in range(1, 5):
        for combo in itertools.combinations_with_replacement(profiles, size):
            expected = brute_force_fits(model, list(combo))
            try:
                mig.assign_placements(model, [], [(p, None) for p in combo])
                got = True
            except mig.MigError:
                got = False
            assert got == expected, [p.name for p in combo]
            checked += 1
    assert checked > 20


# ----------------------------------------------------------------- diff ---
def gi(gi_id, profile, start, ci=1):
    return {"gi_id": gi_id, "profile_id": mig.get_profile(A100, profile).id, "start": start, "ci_count": ci}


def names(items):
    return [mig.get_profile(A100, g["profile_id"]).name + "@%d" % g["start"] for g in items]


def test_diff_identical_layout_keeps_all():
    current = [gi(2, "3g.40gb", 0), gi(1, "3g.40gb", 4)]
    plan = mig.plan_gpu(A100, current, layout("3g.40gb", "3g.40gb"))
    assert plan == {"keep": sorted(current, key=lambda g: g["start"]), "destroy": [], "create": [], "create_ci": []}


def test_diff_destroys_only_what_is_not_wanted():
    current = [gi(2, "3g.40gb", 0), gi(11, "1g.10gb", 4), gi(12, "1g.10gb", 5), gi(13, "1g.10gb", 6)]
    plan = mig.plan_gpu(A100, current, layout("3g.40gb", "2g.20gb", "1g.10gb"))
    # keeps the 1g.10gb that leaves room for the 2g.20gb
    assert names(plan["keep"]) == ["3g.40gb@0", "1g.10gb@6"]
    assert names(plan["destroy"]) == ["1g.10gb@4", "1g.10gb@5"]
    assert [(p.name, s) for p, s in plan["create"]] == [("2g.20gb", 4)]


def test_diff_creates_around_kept_instances():
    current = [gi(1, "3g.40gb", 4)]
    plan = mig.plan_gpu(A100, current, layout("3g.40gb", "1g.10gb", "1g.10gb"))
    assert names(plan["keep"]) == ["3g.40gb@4"]
    assert all(s < 4 for _p, s in plan["create"])


def test_diff_explicit_placement_moves_instance():
    current = [gi(1, "3g.40gb", 4)]
    plan = mig.plan_gpu(A100, current, layout({"profile": "3g.40gb", "placement": 0}))
    assert names(plan["destroy"]) == ["3g.40gb@4"]
    assert [(p.name, s) for p, s in plan["create"]] == [("3g.40gb", 0)]


def test_diff_prefers_keeping_busy_instance():
    current = [gi(1, "3g.40gb", 4), gi(2, "3g.40gb", 0)]
    plan = mig.plan_gpu(A100, current, layout("3g.40gb"), busy={1: [4242]})
    assert names(plan["keep"]) == ["3g.40gb@4"]
    assert names(plan["destroy"]) == ["3g.40gb@0"]


def test_diff_busy_instance_not_in_layout_needs_force():
    current = [gi(1, "3g.40gb", 4), gi(2, "3g.40gb", 0)]
    with pytest.raises(mig.MigError) as err:
        mig.plan_gpu(A100, current, layout("7g.80gb"), busy={1: [4242, 4243]}, option="layouts[0]")
    assert "refusing to destroy" in err.value.msg and "4242, 4243" in err.value.msg and "force" in err.value.msg
    plan = mig.plan_gpu(A100, current, layout("7g.80gb"), busy={1: [4242]}, force=True)
    assert len(plan["destroy"]) == 2 and plan["create"][0][0].name == "7g.80gb"


def test_diff_fragmentation_moves_idle_instance():
    # 1g.10gb at 3 blocks a 4g.40gb at 0; keeping "a 1g.10gb" allows moving it
    current = [gi(10, "1g.10gb", 3)]
    plan = mig.plan_gpu(A100, current, layout("4g.40gb", "1g.10gb"))
    assert names(plan["destroy"]) == ["1g.10gb@3"]
    assert sorted((p.name, s) for p, s in plan["create"]) == [("1g.10gb", 6), ("4g.40gb", 0)]


def test_diff_fragmentation_with_busy_instance_fails_clearly():
    current = [gi(10, "1g.10gb", 3)]
    with pytest.raises(mig.MigError) as err:
        mig.plan_gpu(A100, current, layout("4g.40gb", "1g.10gb"), busy={10: [1]})
    assert "refusing to destroy GPU instance(s) in use: GI 10 (1g.10gb@3:1) used by PID(s) 1" in err.value.msg


def test_diff_explicit_placement_blocked_by_busy_instance():
    current = [gi(7, "1g.10gb", 0)]
    with pytest.raises(mig.MigError) as err:
        mig.plan_gpu(A100, current, layout({"profile": "7g.80gb", "placement": 0}), busy={7: [99]})
    assert "refusing to destroy" in err.value.msg


def test_diff_creates_missing_compute_instance():
    plan = mig.plan_gpu(A100, [gi(1, "3g.40gb", 4, ci=0)], layout("3g.40gb"))
    assert plan["create_ci"] == [1] and plan["destroy"] == [] and plan["create"] == []


def test_diff_empty_layout_destroys_everything():
    plan = mig.plan_gpu(A100, [gi(1, "3g.40gb", 4), gi(2, "3g.40gb", 0)], [])
    assert len(plan["destroy"]) == 2 and plan["keep"] == []

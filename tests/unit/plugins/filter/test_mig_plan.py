# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Planner: seeded random property tests and an independent exhaustive search on small fleets."""

import random

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.fedgpu.platform.plugins.filter.mig_plan import FilterModule, mig_plan
from ansible_collections.fedgpu.platform.plugins.module_utils import mig

MODELS = {"A100-80GB": "NVIDIA A100-SXM4-80GB", "A100-40GB": "NVIDIA A100-SXM4-40GB", "H100-80GB": "NVIDIA H100 80GB HBM3",
          "A30-24GB": "NVIDIA A30"}


# --------------------------------------------------------------- oracle ---
def all_layouts(model, names):
    """Every set of non-overlapping placements of the named profiles (brute force, no planner code)."""
    total = mig.model_slices(model)
    placements = sorted((p.name, p.id, s, p.size, p.max_count) for p in mig.model_profiles(model) if p.name in names for s in p.starts)
    result = []

    def walk(pos, used, chosen):
        result.append(tuple(chosen))
        for k in range(pos, len(placements)):
            name, pid, start, size, cap = placements[k]
            mask = ((1 << size) - 1) << start
            if start + size > total or used & mask:
                continue
            if sum(1 for c in chosen if c[0] == name) >= cap:
                continue
            walk(k + 1, used | mask, chosen + [(name, start)])

    walk(0, 0, [])
    return result


def oracle(gpus, demand):
    """Minimum (reconfigured, used) by exhaustive dynamic programming over all layouts of every GPU."""
    names = sorted(demand)
    options = []
    for gpu in gpus:
        current = tuple(sorted((i["profile"], i["placement"]) for i in gpu.get("instances", [])))
        busy = set((i["profile"], i["placement"]) for i in gpu.get("instances", []) if i.get("in_use"))
        model = mig.resolve_model(gpu["model"])
        extra_names = set(n for n, _s in current)
        opts = [(tuple(sum(1 for n, _s in current if n == name) for name in names), (0, 1 if current else 0))]
        for layout in all_layouts(model, set(names) | extra_names):
            key = tuple(sorted(layout))
            if key == current or not busy.issubset(set(layout)):
                continue
            if any(n not in names and (n, s) not in busy for n, s in layout):
                continue  # non-demanded instances are only worth keeping when busy
            opts.append((tuple(sum(1 for n, _s in layout if n == name) for name in names), (1, 1 if layout else 0)))
        options.append(opts)
    memo = {}

    def best(i, rest):
        if not any(rest):
            return (0, sum(1 for g in gpus[i:] if g.get("instances")))
        if i == len(gpus):
            return None
        key = (i, rest)
        if key not in memo:
            answer = None
            for supply, cost in options[i]:
                sub = best(i + 1, tuple(max(0, r - s) for r, s in zip(rest, supply)))
                if sub is not None:
                    total = (cost[0] + sub[0], cost[1] + sub[1])
                    answer = total if answer is None or total < answer else answer
            memo[key] = answer
        return memo[key]

    return best(0, tuple(demand[n] for n in names))


# ------------------------------------------------------------ generators ---
def random_layout(rng, model, busy_chance):
    profiles = [p for p in mig.model_profiles(model) if not p.name.endswith("+me")]
    layout = []
    for _attempt in range(rng.randint(0, 4)):
        profile = rng.choice(profiles)
        try:
            start = mig.assign_placements(model, [(mig.get_profile(model, n), s) for n, s in layout], [(profile, None)])[0]
        except mig.MigError:
            continue
        layout.append((profile.name, start))
    return [{"profile": n, "placement": s, "in_use": rng.random() < busy_chance} for n, s in layout]


def random_case(rng, max_gpus, models=("A100-80GB", "H100-80GB", "A100-40GB")):
    fleet = {}
    gpus = []
    for h in range(rng.randint(1, 3)):
        host_gpus = []
        for index in range(rng.randint(1, max(1, max_gpus // 2))):
            if len(gpus) >= max_gpus:
                break
            model = rng.choice(models)
            gpu = {"index": index, "model": MODELS[model]}
            if rng.random() < 0.5:
                gpu["instances"] = random_layout(rng, model, 0.3)
            host_gpus.append(gpu)
            gpus.append(gpu)
        fleet["node%d" % h] = host_gpus
    offered = sorted(set(p.name for g in gpus for p in mig.model_profiles(mig.resolve_model(g["model"])) if not p.name.endswith("+me")))
    demand = {}
    for name in rng.sample(offered, rng.randint(1, min(3, len(offered)))):
        demand[name] = rng.randint(1, 2 * len(gpus))
    return fleet, gpus, demand


# ----------------------------------------------------------- properties ---
def check_plan(fleet, demand, result):
    layouts = result["layouts"]
    assert set(layouts) == set(fleet), "every host must be a key"
    supply = dict((n, 0) for n in demand)
    for host, gpus in fleet.items():
        planned = dict((item["gpu"], item["instances"]) for item in layouts[host])
        for pos, gpu in enumerate(gpus):
            index = gpu.get("index", pos)
            model = mig.resolve_model(gpu["model"])
            current = [(i["profile"], i["placement"]) for i in gpu.get("instances", [])]
            if index not in planned:
                assert current == [], "a GPU with instances must be in the plan (%s %s)" % (host, index)
                continue
            final = [(i["profile"], i["placement"]) for i in planned[index]]
            # valid: every start is allowed for its profile and nothing overlaps
            fixed = [(mig.get_profile(model, n), s) for n, s in final]
            for profile, start in fixed:
                assert start in profile.starts
            mig.assign_placements(model, fixed, [])
            # busy instances survive where they are
            for inst in gpu.get("instances", []):
                if inst.get("in_use"):
                    assert (inst["profile"], inst["placement"]) in final
            # usable as nvidia_mig input
            mig.normalize_layout(model, planned[index])
            for name, _start in final:
                if name in supply:
                    supply[name] += 1
    for name, count in demand.items():
        assert supply[name] >= count, "demand for %s not met: %d < %d" % (name, supply[name], count)


@pytest.mark.parametrize("seed", range(150))
def test_small_fleets_valid_and_optimal(seed):
    rng = random.Random(seed)
    fleet, gpus, demand = random_case(rng, 8)
    expected = oracle(gpus, demand)
    if expected is None:
        with pytest.raises(AnsibleFilterError) as err:
            mig_plan(fleet, demand)
        assert "demand cannot be met" in str(err.value) and "missing at best" in str(err.value)
        return
    result = mig_plan(fleet, demand, details=True)
    check_plan(fleet, demand, result)
    assert (result["gpus_reconfigured"], result["gpus_used"]) == expected, (fleet, demand)


@pytest.mark.parametrize("seed", range(150, 250))
def test_greedy_path_valid_and_never_misses_a_feasible_plan(seed):
    """The path used for large fleets (forced here on small ones): valid plans, no false 'cannot be met'."""
    rng = random.Random(seed)
    fleet, gpus, demand = random_case(rng, 8)
    expected = oracle(gpus, demand)
    if expected is None:
        with pytest.raises(AnsibleFilterError):
            mig_plan(fleet, demand, exact_limit=0)
        return
    result = mig_plan(fleet, demand, details=True, exact_limit=0)
    check_plan(fleet, demand, result)
    assert (result["gpus_reconfigured"], result["gpus_used"]) >= expected


@pytest.mark.parametrize("seed", range(4))
def test_large_fleets_valid(seed):
    rng = random.Random(1000 + seed)
    fleet = {}
    for h in range(60):
        fleet["node%02d" % h] = [
            {"index": i, "model": MODELS[rng.choice(["A100-80GB", "H100-80GB"])],
             "instances": random_layout(rng, "A100-80GB", 0.2) if rng.random() < 0.3 else []}
            for i in range(2)
        ]
    demand = {"1g.10gb": rng.randint(50, 150), "3g.40gb": rng.randint(10, 30), "2g.20gb": rng.randint(5, 20)}
    result = mig_plan(fleet, demand, details=True)
    check_plan(fleet, demand, result)
    # lower bound on GPUs needed from compute slices (7 per GPU)
    need = demand["1g.10gb"] + 3 * demand["3g.40gb"] + 2 * demand["2g.20gb"]
    assert result["gpus_used"] >= -(-need // 7)


def test_keeps_current_instances_that_serve_the_demand():
    fleet = {"a": [{"index": 0, "model": "A100-SXM4-80GB", "instances": [
        {"profile": "3g.40gb", "placement": 0}, {"profile": "3g.40gb", "placement": 4}]},
        {"index": 1, "model": "A100-SXM4-80GB"}]}
    result = mig_plan(fleet, {"3g.40gb": 2}, details=True)
    assert result["gpus_reconfigured"] == 0 and result["instances_destroyed"] == 0
    expected = [{"profile": "3g.40gb", "placement": 0}, {"profile": "3g.40gb", "placement": 4}]
    assert result["layouts"]["a"] == [{"gpu": 0, "instances": expected}]
    # more demand: the existing GPU is extended, not rebuilt
    result = mig_plan(fleet, {"3g.40gb": 1, "1g.10gb": 4}, details=True)
    assert result["gpus_reconfigured"] == 1 and result["gpus_used"] == 1 and result["instances_destroyed"] == 1


def test_busy_instance_is_never_moved():
    fleet = {"a": [{"index": 0, "model": "A100-SXM4-80GB", "instances": [{"profile": "1g.10gb", "placement": 3, "in_use": True}]}]}
    result = mig_plan(fleet, {"1g.10gb": 1, "3g.40gb": 1})
    assert {"profile": "1g.10gb", "placement": 3} in result["a"][0]["instances"]
    with pytest.raises(AnsibleFilterError) as err:
        mig_plan(fleet, {"4g.40gb": 1})  # only place for a 4g.40gb is 0-3, held by the busy instance
    assert "4g.40gb" in str(err.value)


def test_accepts_nvidia_gpu_info_output():
    gpus = [{"index": 0, "name": "NVIDIA A100-SXM4-80GB", "memory_total_mib": 81920, "gpu_instances": [
        {"gi_id": 1, "profile": "3g.40gb", "profile_id": 9, "placement": 4, "size": 4, "in_use": True}]}]
    result = mig_plan({"n1": {"gpus": gpus}}, {"3g.40gb": 2})
    assert sorted(i["placement"] for i in result["n1"][0]["instances"]) == [0, 4]


@pytest.mark.parametrize("fleet,demand,text", [
    ({"a": [{"model": "A100-SXM4-80GB"}]}, {"3g.20gb": 1}, "no GPU in the fleet offers profile 3g.20gb"),
    ({"a": [{"model": "A100-SXM4-80GB"}]}, {"7g.80gb": 2}, "missing at best: 1 x 7g.80gb"),
    ({"a": [{"model": "Tesla T4"}]}, {"1g.10gb": 1}, "unknown or non-MIG GPU model"),
    ({"a": [{"model": "A100-SXM4-80GB"}]}, {"1g.10gb": -1}, "must not be negative"),
    ({"a": [{"model": "A100-SXM4-80GB"}]}, ["1g.10gb"], "must be a dict"),
    ({"a": [{"model": "A100-SXM4-80GB", "instances": [{"profile": "3g.40gb", "placement": 2}]}]}, {"1g.10gb": 1},
     "current layout is not valid"),
])
def test_bad_input(fleet, demand, text):
    with pytest.raises(AnsibleFilterError) as err:
        mig_plan(fleet, demand)
    assert text in str(err.value)


def test_empty_gpus_stay_out_and_all_hosts_are_keys():
    fleet = {"a": [{"model": "A100-SXM4-80GB"}, {"model": "A100-SXM4-80GB"}], "b": [{"model": "A100-SXM4-80GB"}]}
    result = mig_plan(fleet, {"7g.80gb": 1})
    assert sum(len(v) for v in result.values()) == 1 and set(result) == {"a", "b"}


def test_filter_is_registered():
    assert FilterModule().filters()["mig_plan"] is mig_plan


def test_no_instances_beyond_the_demand_on_reconfigured_gpus():
    fleet = {"a": [{"model": "A100-SXM4-80GB"}, {"model": "A100-SXM4-80GB"}]}
    result = mig_plan(fleet, {"1g.10gb": 7, "3g.40gb": 1}, details=True)
    assert result["gpus_used"] == 2
    assert result["supply"] == {"1g.10gb": 7, "3g.40gb": 1}


def test_mig_profiles_by_model_and_all():
    from ansible_collections.fedgpu.platform.plugins.filter.mig_plan import mig_profiles
    assert mig_profiles('NVIDIA A100-SXM4-80GB') == ['1g.10gb', '1g.10gb+me', '1g.20gb', '2g.20gb', '3g.40gb', '4g.40gb', '7g.80gb']
    every = mig_profiles(None)
    assert '4g.24gb' in every and '7g.141gb' in every and len(every) == len(set(every))
    with pytest.raises(AnsibleFilterError, match='T4'):
        mig_profiles('Tesla T4')

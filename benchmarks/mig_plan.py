# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark of the MIG planner (fedgpu.platform.mig_plan).

1. Time to plan 10, 100 and 1000 GPUs (A100/H100 80GB, a quarter of them with a
   current layout, some instances in use) for a mixed demand.  Goal: 100 GPUs
   in at most 1 s.
2. Optimality on small fleets (up to 8 GPUs): GPUs reconfigured and used by the
   planner, by the planner's large-fleet path (greedy + exact tail) and by an
   independent exhaustive search (tests/unit/plugins/filter/test_mig_plan.py),
   printed as ratios.

Run from the repository root:  python benchmarks/mig_plan.py [--small 200]
"""

import argparse
import os
import random
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINK = os.path.join(ROOT, ".cache", "collections", "ansible_collections", "fedgpu", "platform")
if not os.path.exists(LINK):
    os.makedirs(os.path.dirname(LINK))
    os.symlink(ROOT, LINK)
sys.path.insert(0, os.path.join(ROOT, ".cache", "collections"))
sys.path.insert(0, os.path.join(ROOT, "tests", "unit", "plugins", "filter"))

from ansible_collections.fedgpu.platform.plugins.module_utils import mig_planner  # noqa: E402
import test_mig_plan as oracle_mod  # noqa: E402  (exhaustive search and random fleets)


def fleet_of(size, rng):
    fleet = {}
    for n in range(size):
        host = "node%04d" % (n // 8)
        gpu = {"index": n % 8, "model": rng.choice(["NVIDIA A100-SXM4-80GB", "NVIDIA H100 80GB HBM3"])}
        if rng.random() < 0.25:
            gpu["instances"] = oracle_mod.random_layout(rng, "A100-80GB", 0.2)
        fleet.setdefault(host, []).append(gpu)
    return fleet


def demand_for(size):
    # roughly 70 % of the fleet's compute slices
    return {"1g.10gb": 2 * size, "2g.20gb": size // 2, "3g.40gb": size // 2, "7g.80gb": max(1, size // 20)}


def bench_speed():
    print("== planning time (mixed demand: 1g.10gb, 2g.20gb, 3g.40gb, 7g.80gb) ==")
    print("slice bound = ceil(compute slices demanded / 7): GPUs needed on an empty fleet; kept layouts may use more")
    print("%6s %10s %10s %12s %12s" % ("GPUs", "seconds", "GPUs used", "reconfigured", "slice bound"))
    ok = True
    for size in (10, 100, 1000):
        rng = random.Random(size)
        fleet = fleet_of(size, rng)
        demand = demand_for(size)
        start = time.perf_counter()
        result = mig_planner.plan(fleet, demand)
        elapsed = time.perf_counter() - start
        slices = demand["1g.10gb"] + 2 * demand["2g.20gb"] + 3 * demand["3g.40gb"] + 7 * demand["7g.80gb"]
        print("%6d %10.3f %10d %12d %12d" % (size, elapsed, result["gpus_used"], result["gpus_reconfigured"], -(-slices // 7)))
        if size == 100 and elapsed > 1.0:
            ok = False
    print("goal 100 GPUs <= 1 s: %s" % ("met" if ok else "NOT met"))
    return ok


def bench_optimality(cases):
    print("\n== optimality on small fleets (<= 8 GPUs) vs exhaustive search ==")
    exact_ratio, greedy_ratio = [], []
    optimal = greedy_optimal = feasible = 0
    for seed in range(cases):
        rng = random.Random(10000 + seed)
        fleet, gpus, demand = oracle_mod.random_case(rng, 8)
        expected = oracle_mod.oracle(gpus, demand)
        if expected is None:
            continue
        feasible += 1
        planned = mig_planner.plan(fleet, demand)
        greedy = mig_planner.plan(fleet, demand, exact_limit=0)
        got = (planned["gpus_reconfigured"], planned["gpus_used"])
        got_greedy = (greedy["gpus_reconfigured"], greedy["gpus_used"])
        optimal += got == expected
        greedy_optimal += got_greedy == expected
        exact_ratio.append(float(got[1]) / max(1, expected[1]))
        greedy_ratio.append(float(got_greedy[1]) / max(1, expected[1]))
    print("feasible cases: %d of %d" % (feasible, cases))
    print("planner (exact path):        optimal in %d/%d, GPUs used / exhaustive: mean %.3f, max %.3f"
          % (optimal, feasible, sum(exact_ratio) / len(exact_ratio), max(exact_ratio)))
    print("large-fleet path (greedy):   optimal in %d/%d, GPUs used / exhaustive: mean %.3f, max %.3f"
          % (greedy_optimal, feasible, sum(greedy_ratio) / len(greedy_ratio), max(greedy_ratio)))
    return optimal == feasible


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=200, help="number of random small fleets (default 200)")
    args = parser.parse_args()
    fast = bench_speed()
    optimal = bench_optimality(args.small)
    return 0 if fast and optimal else 1


if __name__ == "__main__":
    sys.exit(main())

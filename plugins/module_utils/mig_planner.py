# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""MIG layout planner: from a fleet and a demand to a layout per GPU.

Objective, in this order (lexicographic):

1. fewest GPUs reconfigured (a GPU whose layout changes in any way);
2. fewest GPUs used (GPUs left with at least one GPU instance);
3. fewest existing GPU instances destroyed;
4. fewest memory slices taken (no bigger layout than the demand needs).

Instances in use are never moved or destroyed. A GPU whose current instances
are kept as they are still counts towards the demand with them; reconfigured
GPUs keep the current instances that serve the demand where they are.

The search is exact (dynamic programming over GPUs and the remaining demand)
for fleets of up to ``exact_limit`` GPUs; larger fleets are planned greedily
(largest reduction of the remaining demand per reconfigured GPU) and the last
greedy choices are re-solved exactly.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.fedgpu.platform.plugins.module_utils import mig as miglib

EXACT_LIMIT = 8
TAIL_UNDO = 4
TAIL_POOL = 10
EXACT_BUDGET = 200000
EXACT_FALLBACK_GPUS = 300


class _Gpu(object):
    __slots__ = ("host", "index", "model", "current", "busy", "signature", "options")

    def __init__(self, host, index, model, current, busy):
        self.host = host
        self.index = index
        self.model = model
        self.current = current  # list of (Profile, start)
        self.busy = busy  # list of (Profile, start), subset of current
        self.signature = (model, tuple(sorted((p.id, s) for p, s in current)), tuple(sorted((p.id, s) for p, s in busy)))
        self.options = None


def _get(item, *names):
    for name in names:
        if isinstance(item, dict) and name in item and item[name] is not None:
            return item[name]
    return None


def normalize_fleet(fleet):
    """Accept {host: [gpu, ...]}, {host: {gpus: [...]}} or [{host, gpus}]; return list of _Gpu."""
    if isinstance(fleet, dict):
        items = [(host, value.get("gpus", []) if isinstance(value, dict) else value) for host, value in fleet.items()]
    elif isinstance(fleet, list):
        items = []
        for pos, entry in enumerate(fleet):
            if not isinstance(entry, dict) or "host" not in entry:
                raise miglib.MigError("each fleet entry needs 'host' and 'gpus'", option="fleet[%d]" % pos)
            items.append((entry["host"], entry.get("gpus", [])))
    else:
        raise miglib.MigError("must be a dict of host -> GPUs or a list of {host, gpus}", option="fleet")
    gpus = []
    for host, host_gpus in sorted(items, key=lambda kv: str(kv[0])):
        if not isinstance(host_gpus, list):
            raise miglib.MigError("GPUs of host %s must be a list" % host, "fleet")
        for pos, gpu in enumerate(host_gpus):
            where = "fleet[%s][%d]" % (host, pos)
            if not isinstance(gpu, dict):
                raise miglib.MigError("GPU entry must be a dict", where)
            index = _get(gpu, "index", "gpu")
            index = pos if index is None else int(index)
            name = _get(gpu, "model", "name")
            model = miglib.resolve_model(name, _get(gpu, "memory_total_mib"))
            if model is None:
                raise miglib.MigError("unknown or non-MIG GPU model %r; known models: %s" % (name, ", ".join(miglib.model_keys())), where)
            instances = _get(gpu, "instances", "gpu_instances") or []
            current, busy = [], []
            for ipos, inst in enumerate(instances):
                iwhere = "%s.instances[%d]" % (where, ipos)
                if isinstance(inst, dict):
                    spec = _get(inst, "profile_id", "profile")
                    start = _get(inst, "placement", "start")
                    if isinstance(start, dict):
                        start = start.get("start")
                    in_use = bool(_get(inst, "in_use"))
                else:
                    text = str(inst)
                    spec, _sep, start = text.partition(":")
                    start = start or None
                    in_use = False
                profile = miglib.get_profile(model, spec, iwhere)
                if start is None:
                    raise miglib.MigError("current instances need their placement", iwhere)
                if int(start) not in profile.starts:
                    raise miglib.MigError("current layout is not valid: placement %s is not valid for %s" % (start, profile.name), option=iwhere)
                current.append((profile, int(start)))
                if in_use:
                    busy.append((profile, int(start)))
            try:
                miglib.assign_placements(model, current, [], where)
            except miglib.MigError as exc:
                raise miglib.MigError("current layout is not valid: %s" % exc.msg, where)
            gpus.append(_Gpu(host, index, model, current, busy))
    return gpus


def normalize_demand(demand, gpus):
    if not isinstance(demand, dict):
        raise miglib.MigError("must be a dict of profile name -> count, e.g. {'1g.10gb': 20}", option="demand")
    result = {}
    offered = set()
    for gpu in gpus:
        offered.update(p.name for p in miglib.model_profiles(gpu.model))
    for name, count in demand.items():
        key = str(name).strip()
        if key.upper().startswith("MIG "):
            key = key[4:].strip()
        key = key.lower()
        try:
            count = int(count)
        except (TypeError, ValueError):
            raise miglib.MigError("count of %s must be an integer, got %r" % (name, count), "demand")
        if count < 0:
            raise miglib.MigError("count of %s must not be negative" % name, "demand")
        if count == 0:
            continue
        if key not in offered:
            raise miglib.MigError(
                "no GPU in the fleet offers profile %s (offered: %s)" % (name, ", ".join(sorted(offered)) or "none"), "demand")
        result[key] = result.get(key, 0) + count
    return result


# ------------------------------------------------------------- options ---
_CONFIG_CACHE = {}


def _configs(model, names, caps, busy):
    """All feasible multisets of demanded profiles (with the busy instances fixed)."""
    key = (model, names, caps, tuple(sorted((p.id, s) for p, s in busy)))
    if key in _CONFIG_CACHE:
        return _CONFIG_CACHE[key]
    by_name = dict((p.name, p) for p in miglib.model_profiles(model))
    profiles = [by_name.get(name) for name in names]
    found = []

    def fits(counts):
        wanted = []
        for profile, count in zip(profiles, counts):
            wanted.extend([(profile, None)] * count)
        try:
            miglib.assign_placements(model, busy, wanted)
            return True
        except miglib.MigError:
            return False

    def walk(pos, counts):
        if pos == len(profiles):
            found.append(tuple(counts))
            return
        profile = profiles[pos]
        if profile is None:
            walk(pos + 1, counts + [0])
            return
        for count in range(0, caps[pos] + 1):
            trial = counts + [count] + [0] * (len(profiles) - pos - 1)
            if count and not fits(trial):
                break  # more of the same profile cannot fit either
            walk(pos + 1, counts + [count])

    walk(0, [])
    _CONFIG_CACHE[key] = found
    return found


def _layout_for(gpu, counts, names):
    """Placements for a multiset on ``gpu``: keep busy and as many current instances as possible."""
    by_name = dict((p.name, p) for p in miglib.model_profiles(gpu.model))
    need = dict((name, c) for name, c in zip(names, counts) if c)
    busy = list(gpu.busy)
    for profile, _start in busy:
        if profile.name in need:
            need[profile.name] -= 1
    keepable = [(p, s) for p, s in gpu.current if (p, s) not in gpu.busy and need.get(p.name, 0) > 0]
    kept = []
    for profile, start in sorted(keepable, key=lambda item: item[1]):
        if need.get(profile.name, 0) > 0:
            kept.append((profile, start))
            need[profile.name] -= 1
    wanted = []
    for name, count in need.items():
        wanted.extend([(by_name[name], None)] * max(0, count))
    while True:
        try:
            starts = miglib.assign_placements(gpu.model, busy + kept, wanted)
            return busy + kept + [(p, s) for (p, _n), s in zip(wanted, starts)]
        except miglib.MigError:
            if not kept:
                return None
            dropped = kept.pop()
            wanted.append((dropped[0], None))


def _supply(instances, names):
    return tuple(sum(1 for p, _s in instances if p.name == name) for name in names)


def _options(gpu, names, demand_vec):
    """(supply, cost, layout) choices of one GPU; cost = (reconfigured, used, destroyed, slices taken)."""
    by_name = dict((p.name, p) for p in miglib.model_profiles(gpu.model))
    caps = tuple(min(by_name[n].max_count, d) if n in by_name else 0 for n, d in zip(names, demand_vec))
    opts = {}
    keep_supply = _supply(gpu.current, names)
    keep = (keep_supply, (0, 1 if gpu.current else 0, 0, _slices(gpu.current)), None)
    current_key = tuple(sorted((p.id, s) for p, s in gpu.current))
    for counts in _configs(gpu.model, names, caps, tuple(gpu.busy)):
        # busy instances are part of every layout; count them in the supply
        busy_extra = _supply(gpu.busy, names)
        total = tuple(c + b for c, b in zip(counts, busy_extra))
        layout = _layout_for(gpu, total, names)
        if layout is None:
            continue
        if tuple(sorted((p.id, s) for p, s in layout)) == current_key:
            continue  # same as keeping
        supply = _supply(layout, names)
        destroyed = len(gpu.current) - len([x for x in layout if x in gpu.current])
        cost = (1, 1 if layout else 0, destroyed, _slices(layout))
        capped = tuple(min(s, d) for s, d in zip(supply, demand_vec))
        if capped not in opts or cost < opts[capped][1]:
            opts[capped] = (supply, cost, layout)
    result = [keep]
    # drop options dominated by another one (more supply for no more cost)
    values = list(opts.values())
    for supply, cost, layout in values:
        capped = tuple(min(s, d) for s, d in zip(supply, demand_vec))
        dominated = False
        for other_supply, other_cost, _other in values + [keep]:
            other_capped = tuple(min(s, d) for s, d in zip(other_supply, demand_vec))
            if other_cost <= cost and other_capped != capped and all(o >= c for o, c in zip(other_capped, capped)):
                dominated = True
                break
        if not dominated:
            result.append((supply, cost, layout))
    return result


# -------------------------------------------------------------- search ---
def _add(a, b):
    return tuple(x + y for x, y in zip(a, b))


def _slices(instances):
    return sum(p.size for p, _s in instances)


class _Budget(Exception):
    pass


def _exact(gpus, residual, budget=None):
    """Optimal choice per GPU covering ``residual``; returns (cost, [option index]) or None.

    With ``budget`` (number of search states), gives up (None) when the search grows beyond it.
    """
    memo = {}
    count = len(gpus)

    def best(i, rest):
        if budget is not None and len(memo) > budget:
            raise _Budget()
        if not any(rest):
            # the remaining GPUs stay as they are
            tail = (0, sum(1 for g in gpus[i:] if g.current), 0, sum(_slices(g.current) for g in gpus[i:]))
            return (tail, [0] * (count - i))
        if i == count:
            return None
        key = (i, rest)
        if key in memo:
            return memo[key]
        answer = None
        for pos, (supply, cost, _layout) in enumerate(gpus[i].options):
            nxt = tuple(max(0, r - s) for r, s in zip(rest, supply))
            sub = best(i + 1, nxt)
            if sub is None:
                continue
            total = _add(cost, sub[0])
            if answer is None or total < answer[0]:
                answer = (total, [pos] + sub[1])
        memo[key] = answer
        return answer

    try:
        return best(0, residual)
    except _Budget:
        return None


def _greedy(gpus, names, demand_vec, sizes, scheme):
    """Reconfigure one GPU at a time, taking the option that reduces the weighted remaining demand most.

    ``scheme`` picks the weights: ``size`` (slices of the profile), ``scarce`` (size times how much of
    what the not yet reconfigured GPUs could still offer is needed) or ``flat``.
    """
    count = len(names)
    choice = [0] * len(gpus)
    totals = [0] * count
    for gpu in gpus:
        for k, value in enumerate(gpu.options[0][0]):
            totals[k] += value
    order = []
    # per class of identical GPUs: the GPUs still on "keep", and each option's change of supply
    classes = {}
    for g, gpu in enumerate(gpus):
        entry = classes.get(gpu.signature)
        if entry is None:
            keep_supply = gpu.options[0][0]
            deltas = []
            for pos, (supply, cost, _layout) in enumerate(gpu.options[1:], 1):
                delta = tuple(s - k for s, k in zip(supply, keep_supply))
                if any(d > 0 for d in delta):
                    extra_used = cost[1] - gpu.options[0][1][1]
                    deltas.append((pos, delta, (-extra_used, -cost[2], -cost[3])))
            best_of = tuple(max([0] + [d[1][k] for d in deltas]) for k in range(count))
            entry = classes[gpu.signature] = {"free": [], "deltas": deltas, "best_of": best_of}
        entry["free"].append(g)
    for entry in classes.values():
        entry["free"].reverse()  # pop() gives the lowest index first

    while True:
        rest = [max(0, d - t) for d, t in zip(demand_vec, totals)]
        if not any(rest):
            return choice, order
        surplus = [max(0, t - d) for d, t in zip(demand_vec, totals)]
        if scheme == "scarce":
            potential = [0] * count
            for entry in classes.values():
                free = len(entry["free"])
                for k in range(count):
                    potential[k] += free * entry["best_of"][k]
            weights = [sizes[k] * (1.0 + float(rest[k]) / max(1, potential[k])) for k in range(count)]
        elif scheme == "flat":
            weights = [1.0] * count
        else:
            weights = sizes
        best = None
        # classes by an upper bound of their gain; stop when the bound cannot beat the best found
        bounded = []
        for entry in classes.values():
            if entry["free"]:
                bound = sum(weights[k] * min(rest[k], entry["best_of"][k]) for k in range(count))
                if bound > 0:
                    bounded.append((bound, id(entry), entry))
        bounded.sort(key=lambda item: -item[0])
        for bound, _id, entry in bounded:
            if best is not None and bound < best[0][0]:
                break
            for pos, delta, tie in entry["deltas"]:
                gain = 0.0
                for k in range(count):
                    d = delta[k]
                    if d:
                        new_rest = rest[k] - surplus[k] - d
                        gain += weights[k] * (rest[k] - (new_rest if new_rest > 0 else 0))
                if gain <= 0:
                    continue
                score = (gain,) + tie
                if best is None or score > best[0]:
                    best = (score, entry, pos, delta)
        if best is None:
            return None, tuple(rest)
        _score, entry, pos, delta = best
        g = entry["free"].pop()
        choice[g] = pos
        order.append(g)
        for k in range(count):
            totals[k] += delta[k]


def _cost_of(gpus, choice):
    total = (0, 0, 0, 0)
    for gpu, pos in zip(gpus, choice):
        total = _add(total, gpu.options[pos][1])
    return total


def _improve_tail(gpus, names, demand_vec, choice, order):
    """Undo the last greedy picks and re-solve them exactly over a small pool."""
    undo = order[-TAIL_UNDO:]
    base = list(choice)
    for g in undo:
        base[g] = 0
    pool = list(undo)
    per_sig = {}
    for g in pool:
        per_sig[gpus[g].signature] = per_sig.get(gpus[g].signature, 0) + 1
    for g, gpu in enumerate(gpus):
        if len(pool) >= TAIL_POOL:
            break
        if base[g] == 0 and g not in pool and gpu.options[0][1][0] == 0 and per_sig.get(gpu.signature, 0) < len(undo):
            pool.append(g)
            per_sig[gpu.signature] = per_sig.get(gpu.signature, 0) + 1
    totals = [0] * len(names)
    for g, gpu in enumerate(gpus):
        if g in pool:
            continue
        for k, value in enumerate(gpu.options[base[g]][0]):
            totals[k] += value
    rest = tuple(max(0, d - t) for d, t in zip(demand_vec, totals))
    sub = _exact([gpus[g] for g in pool], rest)
    if sub is None:
        return choice
    candidate = list(base)
    for g, pos in zip(pool, sub[1]):
        candidate[g] = pos
    # pool GPUs that had "keep" contribute their keep supply already counted in _exact through option 0
    if _cost_of(gpus, candidate) < _cost_of(gpus, choice):
        return candidate
    return choice


def plan(fleet, demand, exact_limit=EXACT_LIMIT):
    """Plan layouts. Returns dict with ``layouts`` (host -> nvidia_mig layouts) and a summary."""
    gpus = normalize_fleet(fleet)
    wanted = normalize_demand(demand, gpus)
    names = tuple(sorted(wanted))
    demand_vec = tuple(wanted[n] for n in names)
    by_signature = {}
    for gpu in gpus:
        # identical GPUs (same model, same instances, same busy ones) have the same options
        if gpu.signature not in by_signature:
            by_signature[gpu.signature] = _options(gpu, names, demand_vec)
        gpu.options = by_signature[gpu.signature]
    weights = []
    for name in names:
        sizes = [p.size / float(miglib.model_slices(g.model)) for g in gpus for p in miglib.model_profiles(g.model) if p.name == name]
        weights.append(max(sizes) if sizes else 1.0)
    if len(gpus) <= exact_limit:
        found = _exact(gpus, tuple(demand_vec))
        choice = None if found is None else found[1]
        missing = None if found is not None else _missing(gpus, names, demand_vec, weights)
    else:
        choice, missing = None, None
        for scheme in ("scarce", "size", "flat"):
            found, order = _greedy(gpus, names, demand_vec, weights, scheme)
            if found is None:
                if missing is None or sum(order) < sum(missing):
                    missing = order
                continue
            if order:
                found = _improve_tail(gpus, names, demand_vec, found, order)
            if choice is None or _cost_of(gpus, found) < _cost_of(gpus, choice):
                choice = found
        if choice is None and len(gpus) <= EXACT_FALLBACK_GPUS:
            # greedy found no plan: the exact search decides (bounded, for fleets that are not huge)
            found = _exact(gpus, tuple(demand_vec), budget=EXACT_BUDGET)
            if found is not None:
                choice = found[1]
        if choice is not None:
            missing = None
    if choice is None:
        raise miglib.MigError(
            "demand cannot be met by this fleet; missing at best: %s"
            % ", ".join("%d x %s" % (m, n) for n, m in zip(names, missing) if m), "demand")
    result = _result(gpus, names, demand_vec, choice)
    for host in _hosts(fleet):
        result["layouts"].setdefault(host, [])
    return result


def _hosts(fleet):
    if isinstance(fleet, dict):
        return list(fleet)
    return [entry["host"] for entry in fleet]


def _missing(gpus, names, demand_vec, weights):
    best = None
    for scheme in ("scarce", "size", "flat"):
        choice, rest = _greedy(gpus, names, demand_vec, weights, scheme)
        if choice is None and (best is None or sum(rest) < sum(best)):
            best = rest
    return best if best is not None else tuple(demand_vec)


def _result(gpus, names, demand_vec, choice):
    layouts = {}
    reconfigured = []
    supply = dict((n, 0) for n in names)
    used = 0
    destroyed = 0
    for gpu, pos in zip(gpus, choice):
        option_supply, cost, layout = gpu.options[pos]
        layouts.setdefault(gpu.host, [])
        final = gpu.current if layout is None else layout
        for k, name in enumerate(names):
            supply[name] += option_supply[k]
        if final:
            used += 1
        destroyed += cost[2]
        if cost[0]:
            reconfigured.append({"host": gpu.host, "gpu": gpu.index})
        if final or gpu.current:
            layouts[gpu.host].append({
                "gpu": gpu.index,
                "instances": [{"profile": p.name, "placement": s} for p, s in sorted(final, key=lambda item: item[1])],
            })
    for host in layouts:
        layouts[host].sort(key=lambda item: item["gpu"])
    return {
        "layouts": layouts,
        "reconfigured": reconfigured,
        "gpus_used": used,
        "gpus_reconfigured": len(reconfigured),
        "instances_destroyed": destroyed,
        "supply": supply,
        "demand": dict(zip(names, demand_vec)),
    }

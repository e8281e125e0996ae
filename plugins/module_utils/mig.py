# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""NVIDIA MIG knowledge shared by the modules and the planner.

This file is the one place that holds:

* the GPU instance (GI) profile tables per GPU model (profile name, GI
  profile ID, size in memory slices, valid placement starts, max count), from
  NVIDIA's Multi-Instance GPU User Guide ("Supported MIG Profiles" and the
  ``nvidia-smi mig -lgipp`` example of "Getting Started with MIG");
* the placement rules (an instance occupies ``size`` memory slices from its
  start; instances must not overlap; a profile may only start at its listed
  starts; no more instances of a profile than its max count);
* parsers for the ``nvidia-smi`` outputs the guide documents;
* the diff between the current layout of a GPU and a desired one
  (keep / destroy / create), including instances in use.

Pure Python, no third party imports: it runs on managed hosts (Python 3.8+)
and on the controller (filter plugin).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
from collections import namedtuple


class MigError(Exception):
    """Bad input or an impossible request; ``option`` names the offending option."""

    def __init__(self, msg, option=None):
        super(MigError, self).__init__(msg)
        self.msg = msg
        self.option = option

    def __str__(self):
        if self.option:
            return "%s: %s" % (self.option, self.msg)
        return self.msg


Profile = namedtuple("Profile", ["name", "id", "size", "starts", "max_count", "compute"])

_SEVEN = (0, 1, 2, 3, 4, 5, 6)


def _profiles(names):
    """Build the 8-slice (A100/H100/H200) table from the 7 profile names.

    GI profile IDs, sizes, placements and counts are the same on these GPUs
    (MIG User Guide, ``nvidia-smi mig -lgipp`` on A100: 19 {0..6}:1,
    20 {0..6}:1, 15 {0,2,4,6}:2, 14 {0,2,4}:2, 9 {0,4}:4, 5 {0}:4, 0 {0}:8).
    """
    one, one_me, one_double, two, three, four, seven = names
    return (
        Profile(one, 19, 1, _SEVEN, 7, 1),
        Profile(one_me, 20, 1, _SEVEN, 1, 1),
        Profile(one_double, 15, 2, (0, 2, 4, 6), 4, 1),
        Profile(two, 14, 2, (0, 2, 4), 3, 2),
        Profile(three, 9, 4, (0, 4), 2, 3),
        Profile(four, 5, 4, (0,), 1, 4),
        Profile(seven, 0, 8, (0,), 1, 7),
    )


# model key -> (memory slices, profiles)
MODELS = {
    "A100-40GB": (8, _profiles(("1g.5gb", "1g.5gb+me", "1g.10gb", "2g.10gb", "3g.20gb", "4g.20gb", "7g.40gb"))),
    "A100-80GB": (8, _profiles(("1g.10gb", "1g.10gb+me", "1g.20gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb"))),
    "H100-80GB": (8, _profiles(("1g.10gb", "1g.10gb+me", "1g.20gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb"))),
    "H200-141GB": (8, _profiles(("1g.18gb", "1g.18gb+me", "1g.35gb", "2g.35gb", "3g.71gb", "4g.71gb", "7g.141gb"))),
    # A30: ``nvidia-smi mig -lgipp`` on A30 gives 14 {0,1,2,3}:1, 21 {0,1,2,3}:1,
    # 5 {0,2}:2, 0 {0}:4; 2g.12gb+me (ID 6) per the A30 profile table.
    "A30-24GB": (4, (
        Profile("1g.6gb", 14, 1, (0, 1, 2, 3), 4, 1),
        Profile("1g.6gb+me", 21, 1, (0, 1, 2, 3), 1, 1),
        Profile("2g.12gb", 5, 2, (0, 2), 2, 2),
        Profile("2g.12gb+me", 6, 2, (0, 2), 1, 2),
        Profile("4g.24gb", 0, 4, (0,), 1, 4),
    )),
}

# NVML compute instance profile IDs of the full-size ("default") CI of a GI,
# by compute slices: NVML_COMPUTE_INSTANCE_PROFILE_1_SLICE=0, 2_SLICE=1,
# 3_SLICE=2, 4_SLICE=3, 7_SLICE=4.
CI_PROFILE_BY_COMPUTE = {1: 0, 2: 1, 3: 2, 4: 3, 7: 4}


def model_keys():
    return sorted(MODELS)


def register_model(key, slices, profiles):
    """Add a profile table read from the GPU itself (``-lgip``/``-lgipp``)."""
    MODELS[key] = (slices, tuple(profiles))
    return key


def resolve_model(name, memory_mib=None):
    """Map an ``nvidia-smi`` product name (or a model key) to a model key.

    Returns None for GPUs whose profile table is not known here.
    """
    if not name:
        return None
    upper = str(name).upper().replace("NVIDIA ", "").strip()
    if upper in MODELS:
        return upper
    for key in MODELS:
        if upper == key.upper():
            return key
    if "A30" in upper:
        return "A30-24GB"
    if "H200" in upper:
        return "H200-141GB"
    if "H100" in upper:
        if "94GB" in upper or "96GB" in upper or "NVL" in upper or "GH200" in upper:
            return None
        return "H100-80GB"
    if "A100" in upper:
        if "80GB" in upper or (memory_mib is not None and int(memory_mib) > 50000):
            return "A100-80GB"
        return "A100-40GB"
    return None


def model_slices(model):
    return MODELS[model][0]


def model_profiles(model):
    return MODELS[model][1]


def get_profile(model, spec, option=None):
    """Find a profile of ``model`` by name (``3g.40gb``, ``MIG 3g.40gb``) or GI profile ID."""
    if model not in MODELS:
        raise MigError("unknown GPU model %r; known models: %s" % (model, ", ".join(model_keys())), option)
    text = str(spec).strip()
    if text.upper().startswith("MIG "):
        text = text[4:].strip()
    for profile in model_profiles(model):
        if text.isdigit() and int(text) == profile.id:
            return profile
        if text.lower() == profile.name:
            return profile
    raise MigError(
        "unknown MIG profile %r for %s; valid profiles: %s"
        % (spec, model, ", ".join("%s (ID %d)" % (p.name, p.id) for p in model_profiles(model))),
        option,
    )


def slice_mask(start, size):
    return ((1 << size) - 1) << start


def fmt_instance(profile_name, start, size):
    return "%s@%d:%d" % (profile_name, start, size)


def _check_counts(model, profiles, option):
    counts = {}
    for profile in profiles:
        counts[profile.id] = counts.get(profile.id, 0) + 1
        if counts[profile.id] > profile.max_count:
            raise MigError(
                "layout does not fit on %s: at most %d instance(s) of %s per GPU" % (model, profile.max_count, profile.name),
                option,
            )


def assign_placements(model, fixed, wanted, option=None):
    """Choose placement starts for ``wanted`` around the ``fixed`` instances.

    ``fixed``: list of (Profile, start) that stay where they are.
    ``wanted``: list of (Profile, start or None); explicit starts are checked.
    Returns the list of starts aligned with ``wanted``; raises MigError when
    a start is not valid for its profile or when the layout cannot fit.
    """
    total = model_slices(model)
    _check_counts(model, [p for p, _s in fixed] + [p for p, _s in wanted], option)
    used = 0
    for profile, start in fixed:
        used |= slice_mask(start, profile.size)
    starts = [None] * len(wanted)
    free = []
    for idx, (profile, start) in enumerate(wanted):
        if start is None:
            free.append(idx)
            continue
        if start not in profile.starts:
            raise MigError(
                "placement %s is not valid for profile %s on %s; valid placement starts: %s"
                % (start, profile.name, model, ", ".join(str(s) for s in profile.starts)),
                option,
            )
        mask = slice_mask(start, profile.size)
        if used & mask:
            raise MigError(
                "placement %d of %s overlaps another instance (slices %d-%d are taken)"
                % (start, profile.name, start, start + profile.size - 1),
                option,
            )
        used |= mask
        starts[idx] = start
    # biggest first; small profiles fill from the end so big ones keep room
    free.sort(key=lambda i: (-wanted[i][0].size, wanted[i][0].id))

    def candidates(profile):
        if profile.size < 4:
            return sorted(profile.starts, reverse=True)
        return list(profile.starts)

    def solve(pos, mask):
        if pos == len(free):
            return True
        idx = free[pos]
        profile = wanted[idx][0]
        for start in candidates(profile):
            smask = slice_mask(start, profile.size)
            if start + profile.size > total or mask & smask:
                continue
            starts[idx] = start
            if solve(pos + 1, mask | smask):
                return True
        starts[idx] = None
        return False

    if not solve(0, used):
        names = [fmt_instance(p.name, s, p.size) for p, s in fixed] + [p.name for p, _s in wanted]
        raise MigError("layout does not fit on %s (%d memory slices): %s" % (model, total, ", ".join(names)), option)
    return starts


def normalize_layout(model, instances, option="instances"):
    """Validate a desired layout; return list of (Profile, start or None).

    ``instances``: list of dicts ``{profile: name-or-ID, placement: int}`` or
    strings ``"3g.40gb"`` / ``"3g.40gb:4"`` / ``"9:4"``.
    """
    result = []
    for pos, item in enumerate(instances or []):
        where = "%s[%d]" % (option, pos)
        if isinstance(item, dict):
            spec = item.get("profile")
            start = item.get("placement")
            if spec is None:
                raise MigError("missing 'profile'", where)
        else:
            text = str(item)
            if ":" in text:
                spec, start = text.rsplit(":", 1)
            else:
                spec, start = text, None
        if start is not None and start != "":
            try:
                start = int(start)
            except (TypeError, ValueError):
                raise MigError("placement must be an integer, got %r" % (start,), where)
        else:
            start = None
        profile = get_profile(model, spec, where)
        if start is not None and start not in profile.starts:
            raise MigError(
                "placement %s is not valid for profile %s on %s; valid placement starts: %s"
                % (start, profile.name, model, ", ".join(str(s) for s in profile.starts)),
                where,
            )
        result.append((profile, start))
    # fail early on a layout that can never fit (placements checked too)
    assign_placements(model, [], result, option)
    return result


# ---------------------------------------------------------------------------
# Parsers of documented nvidia-smi outputs
# ---------------------------------------------------------------------------

_RE_L_GPU = re.compile(r"^GPU (\d+): (.+?) \(UUID: (GPU-[0-9A-Za-z-]+)\)\s*$")
_RE_L_MIG = re.compile(r"^\s+MIG (\S+)\s+Device\s+(\d+): \(UUID: (MIG-[0-9A-Za-z/-]+)\)\s*$")


def parse_list_gpus(text):
    """``nvidia-smi -L``: GPUs and the MIG devices listed under each."""
    gpus = []
    for line in text.splitlines():
        match = _RE_L_GPU.match(line)
        if match:
            gpus.append({"index": int(match.group(1)), "name": match.group(2), "uuid": match.group(3), "mig_devices": []})
            continue
        match = _RE_L_MIG.match(line)
        if match and gpus:
            gpus[-1]["mig_devices"].append({"profile": match.group(1), "device": int(match.group(2)), "uuid": match.group(3)})
    return gpus


def parse_query_csv(text, fields):
    """``nvidia-smi --query-*=<fields> --format=csv,noheader,nounits``."""
    rows = []
    for line in text.splitlines():
        if not line.strip():
            continue
        values = [v.strip() for v in line.split(",")]
        if len(values) != len(fields):
            raise ValueError("unexpected CSV line from nvidia-smi: %r" % line)
        rows.append(dict(zip(fields, values)))
    return rows


def parse_query_q(text):
    """``nvidia-smi -q``: per GPU bus ID the current and pending MIG mode."""
    gpus = []
    section = None
    for line in text.splitlines():
        match = re.match(r"^GPU ([0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-9A-Fa-f])\s*$", line)
        if match:
            gpus.append({"pci_bus_id": match.group(1), "mig_mode_current": None, "mig_mode_pending": None})
            section = None
            continue
        if not gpus:
            continue
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if ":" not in stripped:
            section = stripped if indent <= 4 else section
            continue
        key, value = [s.strip() for s in stripped.split(":", 1)]
        if indent <= 4:
            section = None
            if key == "Product Name":
                gpus[-1]["name"] = value
            elif key == "GPU UUID":
                gpus[-1]["uuid"] = value
        elif section == "MIG Mode" and key in ("Current", "Pending"):
            gpus[-1]["mig_mode_" + key.lower()] = value
    return gpus


_RE_LGIP = re.compile(r"^\|\s+(\d+)\s+MIG\s+(\S+)\s+(\d+)\s+(\d+)/(\d+)\s+([\d.]+)\s+(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s+\|\s*$")


def parse_lgip(text):
    """``nvidia-smi mig -lgip``: GI profiles with free/total instance counts."""
    result = []
    for line in text.splitlines():
        match = _RE_LGIP.match(line)
        if match:
            result.append({
                "gpu": int(match.group(1)),
                "name": match.group(2),
                "id": int(match.group(3)),
                "free": int(match.group(4)),
                "total": int(match.group(5)),
                "memory_gib": float(match.group(6)),
            })
    return result


_RE_LGIPP = re.compile(r"^GPU\s+(\d+)\s+Profile ID\s+(\d+)\s+Placements?\s*:\s*\{([\d,\s]*)\}:(\d+)\s*$")


def parse_lgipp(text):
    """``nvidia-smi mig -lgipp``: ``GPU  0 Profile ID 19 Placements: {0,1,2,3,4,5,6}:1``."""
    result = []
    for line in text.splitlines():
        match = _RE_LGIPP.match(line.strip())
        if match:
            starts = [int(s) for s in match.group(3).replace(" ", "").split(",") if s != ""]
            result.append({"gpu": int(match.group(1)), "id": int(match.group(2)), "starts": starts, "size": int(match.group(4))})
    return result


_RE_LGI = re.compile(r"^\|\s+(\d+)\s+MIG\s+(\S+)\s+(\d+)\s+(\d+)\s+(\d+):(\d+)\s+\|\s*$")


def parse_lgi(text):
    """``nvidia-smi mig -lgi``; "No GPU instances found" gives []."""
    result = []
    for line in text.splitlines():
        match = _RE_LGI.match(line)
        if match:
            result.append({
                "gpu": int(match.group(1)),
                "profile": match.group(2),
                "profile_id": int(match.group(3)),
                "gi_id": int(match.group(4)),
                "start": int(match.group(5)),
                "size": int(match.group(6)),
            })
    return result


_RE_LCI = re.compile(r"^\|\s+(\d+)\s+(\d+)\s+MIG\s+(\S+)\s+(\d+)\s+(\d+)(?:\s+(\d+):(\d+))?\s+\|\s*$")


def parse_lci(text):
    """``nvidia-smi mig -lci`` (with or without the Placement column of older drivers)."""
    result = []
    for line in text.splitlines():
        match = _RE_LCI.match(line)
        if match:
            item = {
                "gpu": int(match.group(1)),
                "gi_id": int(match.group(2)),
                "profile": match.group(3),
                "profile_id": int(match.group(4)),
                "ci_id": int(match.group(5)),
            }
            if match.group(6) is not None:
                item["start"] = int(match.group(6))
                item["size"] = int(match.group(7))
            result.append(item)
    return result


_RE_MIGDEV = re.compile(r"^\|\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+\|")
_RE_MIGDEV_MEMORY = re.compile(r"^\|[^|]*\|\s+(\d+)MiB\s*/\s*(\d+)MiB\s")
_RE_PROC = re.compile(r"^\|\s+(\d+)\s+(\d+|N/A)\s+(\d+|N/A)\s+(\d+)\s+(\S+)\s+(.*?)\s+(\d+MiB|N/A)\s*\|\s*$")


def parse_smi(text):
    """Default ``nvidia-smi`` output: the "MIG devices" and "Processes" tables."""
    devices = []
    processes = []
    section = None
    for line in text.splitlines():
        if "MIG devices:" in line:
            section = "mig"
            continue
        if "Processes:" in line:
            section = "proc"
            continue
        if section == "mig":
            match = _RE_MIGDEV.match(line)
            if match:
                memory = _RE_MIGDEV_MEMORY.match(line)
                devices.append({
                    "gpu": int(match.group(1)),
                    "gi_id": int(match.group(2)),
                    "ci_id": int(match.group(3)),
                    "mig_device": int(match.group(4)),
                    # The "Memory-Usage" column, used / total MiB (None when the line has none).
                    "memory_used_mib": int(memory.group(1)) if memory else None,
                    "memory_total_mib": int(memory.group(2)) if memory else None,
                })
        elif section == "proc":
            match = _RE_PROC.match(line)
            if match:
                processes.append({
                    "gpu": int(match.group(1)),
                    "gi_id": None if match.group(2) == "N/A" else int(match.group(2)),
                    "ci_id": None if match.group(3) == "N/A" else int(match.group(3)),
                    "pid": int(match.group(4)),
                    "type": match.group(5),
                    "name": match.group(6),
                    "used_memory": match.group(7),
                })
    return {"mig_devices": devices, "processes": processes}


def profiles_from_lgip(lgip, lgipp, gpu):
    """Build a profile table for one GPU from its own -lgip/-lgipp output."""
    placements = dict((p["id"], p) for p in lgipp if p["gpu"] == gpu)
    profiles = []
    slices = 0
    for row in lgip:
        if row["gpu"] != gpu or row["id"] not in placements:
            continue
        pl = placements[row["id"]]
        compute = int(re.match(r"(\d+)", row["name"]).group(1)) if re.match(r"(\d+)", row["name"]) else 1
        profiles.append(Profile(row["name"], row["id"], pl["size"], tuple(pl["starts"]), row["total"], compute))
        slices = max(slices, max(pl["starts"] or [0]) + pl["size"])
    return slices, tuple(profiles)


# ---------------------------------------------------------------------------
# Diff: current layout of one GPU vs desired layout
# ---------------------------------------------------------------------------

def plan_gpu(model, current, desired, busy=None, force=False, option="layouts"):
    """Compute what to keep, destroy and create on one GPU.

    ``current``: list of dicts ``{gi_id, profile_id, start, ci_count}``.
    ``desired``: output of :func:`normalize_layout`.
    ``busy``: dict gi_id -> list of PIDs using that GPU instance.
    Returns dict with ``keep`` (current dicts), ``destroy`` (current dicts),
    ``create`` (list of (Profile, start)), ``create_ci`` (gi_ids of kept GIs
    without compute instance). Raises MigError when the layout does not fit
    or when an in-use instance would have to be destroyed without ``force``.
    """
    busy = busy or {}
    by_id = dict((p.id, p) for p in model_profiles(model))
    for gi in current:
        if gi["profile_id"] not in by_id:
            raise MigError("GPU instance %d has profile ID %d unknown for %s" % (gi["gi_id"], gi["profile_id"], model), option)
    remaining = list(current)
    keep = []
    keep_explicit = set()
    pending = []
    # 1. explicit placements match an instance of the same profile at that start
    for profile, start in desired:
        if start is None:
            continue
        hit = [gi for gi in remaining if gi["profile_id"] == profile.id and gi["start"] == start]
        if hit:
            remaining.remove(hit[0])
            keep.append(hit[0])
            keep_explicit.add(hit[0]["gi_id"])
        else:
            pending.append((profile, start))
    # 2. unplaced entries keep existing instances of the same profile: the largest
    #    set (busy ones first) around which the rest of the layout still fits
    need = {}
    for profile, start in desired:
        if start is None:
            need[profile.id] = need.get(profile.id, 0) + 1
    candidates = [gi for gi in remaining if need.get(gi["profile_id"], 0) > 0]

    def fixed_of(gis):
        return [(by_id[gi["profile_id"]], gi["start"]) for gi in gis]

    subsets = []
    for bits in range(1 << len(candidates)):
        chosen = [gi for pos, gi in enumerate(candidates) if bits >> pos & 1]
        counts = {}
        for gi in chosen:
            counts[gi["profile_id"]] = counts.get(gi["profile_id"], 0) + 1
        if any(count > need[pid] for pid, count in counts.items()):
            continue
        busy_kept = len([gi for gi in chosen if gi["gi_id"] in busy])
        subsets.append(((-busy_kept, -len(chosen), [gi["start"] for gi in chosen]), chosen, counts))
    subsets.sort(key=lambda item: item[0])
    starts = None
    for _rank, chosen, counts in subsets:
        rest = dict(need)
        for pid, count in counts.items():
            rest[pid] -= count
        wanted = list(pending)
        for pid in sorted(rest):
            wanted.extend([(by_id[pid], None)] * rest[pid])
        try:
            starts = assign_placements(model, fixed_of(keep + chosen), wanted, option)
        except MigError:
            continue
        keep = keep + chosen
        pending = wanted
        remaining = [gi for gi in remaining if gi not in chosen]
        break
    if starts is None:
        # nothing around the kept instances works: report why (explicit ones or busy ones block it)
        wanted = list(pending)
        for pid in sorted(need):
            wanted.extend([(by_id[pid], None)] * need[pid])
        assign_placements(model, fixed_of(keep), wanted, option)
        raise MigError("layout does not fit on %s around the instances that must stay" % model, option)  # pragma: no cover
    destroy = list(remaining)
    create = [(profile, start) for (profile, _s), start in zip(pending, starts)]
    in_use = [gi for gi in destroy if gi["gi_id"] in busy]
    if in_use and not force:
        raise MigError(
            "refusing to destroy GPU instance(s) in use: %s; stop the processes or set force=true"
            % "; ".join(
                "GI %d (%s) used by PID(s) %s"
                % (gi["gi_id"], fmt_instance(by_id[gi["profile_id"]].name, gi["start"], by_id[gi["profile_id"]].size),
                   ", ".join(str(p) for p in busy[gi["gi_id"]]))
                for gi in in_use
            ),
            option,
        )
    create_ci = [gi["gi_id"] for gi in keep if not gi.get("ci_count")]
    return {
        "keep": sorted(keep, key=lambda gi: gi["start"]),
        "destroy": sorted(destroy, key=lambda gi: gi["start"]),
        "create": sorted(create, key=lambda item: item[1]),
        "create_ci": sorted(create_ci),
    }


def layout_strings(model, gis):
    """Human readable layout (for diff output): ["3g.40gb@0:4", ...] sorted by start."""
    by_id = dict((p.id, p) for p in model_profiles(model)) if model in MODELS else {}
    out = []
    for gi in sorted(gis, key=lambda g: g["start"]):
        profile = by_id.get(gi["profile_id"])
        name = profile.name if profile else gi.get("profile", str(gi["profile_id"]))
        size = profile.size if profile else gi.get("size", 0)
        out.append(fmt_instance(name, gi["start"], size))
    return out

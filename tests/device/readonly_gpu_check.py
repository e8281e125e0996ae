# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""READ-ONLY check on a real GPU machine (the `device` tool); run from the repository root.

It runs fedgpu.platform.nvidia_gpu_info against the real nvidia-smi and, when MIG
mode is on, parses the real ``nvidia-smi mig -lgip`` and ``-lgipp`` with our
parsers and compares them with our profile table. It NEVER enables or disables
MIG, creates or destroys instances, or resets the GPU: the only commands run are
``nvidia-smi --query-gpu``, ``-L``, ``mig -lgi/-lci/-lgip/-lgipp`` and plain
``nvidia-smi``.

    python tests/device/readonly_gpu_check.py  (writes $OUT/gpu_check.json when OUT is set)
"""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS = os.path.join(ROOT, ".cache", "collections")
LINK = os.path.join(COLLECTIONS, "ansible_collections", "fedgpu", "platform")
if not os.path.exists(LINK):
    os.makedirs(os.path.dirname(LINK))
    os.symlink(ROOT, LINK)
sys.path.insert(0, COLLECTIONS)

from ansible_collections.fedgpu.platform.plugins.module_utils import mig  # noqa: E402

READ_ONLY = (["-L"], ["mig", "-lgip"], ["mig", "-lgipp"])


def smi(args):
    proc = subprocess.run(["nvidia-smi"] + args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    return proc.returncode, proc.stdout


def main():
    report = {"ok": True, "problems": []}
    args_file = os.path.join(os.environ.get("TMPDIR", "/tmp"), "gpu_info_args.json")
    with open(args_file, "w") as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": {}}, handle)
    env = dict(os.environ, PYTHONPATH=COLLECTIONS)
    proc = subprocess.run([sys.executable, "-m", "ansible_collections.fedgpu.platform.plugins.modules.nvidia_gpu_info", args_file],
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
    info = json.loads(proc.stdout)
    report["gpu_info"] = info
    if info.get("failed"):
        report["ok"] = False
        report["problems"].append("nvidia_gpu_info failed: %s" % info.get("msg"))
    raw = {}
    for args in READ_ONLY:
        raw[" ".join(args)] = smi(args)
    report["raw"] = dict((k, {"rc": rc, "out": out}) for k, (rc, out) in raw.items())
    rc, lgip_out = raw["mig -lgip"]
    _rc, lgipp_out = raw["mig -lgipp"]
    for gpu in info.get("gpus", []):
        entry = {"index": gpu["index"], "name": gpu["name"], "model": gpu["model"], "mig_mode": gpu["mig_mode"]}
        if gpu["mig_mode"]["current"] == "Enabled" and rc == 0:
            slices, profiles = mig.profiles_from_lgip(mig.parse_lgip(lgip_out), mig.parse_lgipp(lgipp_out), gpu["index"])
            entry["parsed_profiles"] = [p._asdict() for p in profiles]
            if not profiles:
                report["ok"] = False
                report["problems"].append("GPU %d: could not parse -lgip/-lgipp" % gpu["index"])
            elif gpu["model"]:
                ours = sorted((p.name, p.id, p.size, p.starts, p.max_count) for p in mig.model_profiles(gpu["model"]))
                theirs = sorted((p.name, p.id, p.size, p.starts, p.max_count) for p in profiles)
                entry["table_matches"] = ours == theirs
                if ours != theirs:
                    report["ok"] = False
                    report["problems"].append("GPU %d: table differs: ours %s, GPU %s" % (gpu["index"], ours, theirs))
        else:
            entry["note"] = "MIG mode is not on: -lgip/-lgipp not available (this check never turns it on)"
        report.setdefault("gpus", []).append(entry)
    text = json.dumps(report, indent=2, default=str)
    if os.environ.get("OUT"):
        with open(os.path.join(os.environ["OUT"], "gpu_check.json"), "w") as handle:
            handle.write(text)
    print(text[:6000])
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

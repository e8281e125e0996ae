#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: nvidia_mig
short_description: Apply a declared NVIDIA MIG layout per GPU, changing only the difference
version_added: "0.1.0"
description:
  - Reads the current MIG mode and GPU instances with C(nvidia-smi), compares them with the declared layout
    of each listed GPU and changes only the difference.
  - Enables MIG mode where needed. When the driver leaves the mode I(pending) (GPU reset or reboot needed),
    the module resets the GPU if O(allow_reset=true), otherwise it reports the GPU in RV(pending_reset) and
    RV(reboot_required) and leaves its layout for the next run.
  - Keeps instances that are in the declared layout, destroys only the others, and creates what is missing
    at valid placements (always with an explicit placement), each with its default compute instance.
  - Refuses to destroy an instance that has processes on it unless O(force=true).
  - All input is validated before anything changes; an unknown profile, a layout that does not fit, or a
    placement that is not valid for its profile fails naming the option.
  - GPUs that are not listed in O(layouts) are not touched.
author:
  - fedgpu.platform developers (@fedgpu)
extends_documentation_fragment:
  - fedgpu.platform.nvidia_smi
options:
  layouts:
    description:
      - Desired layout per GPU. The output of the P(fedgpu.platform.mig_plan#filter) filter for a host can be passed as is.
    type: list
    elements: dict
    required: true
    suboptions:
      gpu:
        description: GPU index (as in C(nvidia-smi -i)).
        type: int
        required: true
      mig_enabled:
        description:
          - Whether MIG mode should be on for this GPU.
          - V(false) destroys all instances (subject to O(force)) and disables MIG mode; O(layouts[].instances) must then be empty.
        type: bool
        default: true
      instances:
        description:
          - GPU instances wanted on this GPU. An empty list destroys all instances but keeps MIG mode on.
        type: list
        elements: dict
        default: []
        suboptions:
          profile:
            description:
              - Profile name such as V(3g.40gb) or V(MIG 1g.10gb), or the GI profile ID such as V(9).
            type: str
            required: true
          placement:
            description:
              - Placement start (memory slice index). It must be one of the profile's valid starts
                (see C(nvidia-smi mig -lgipp)). Without it any existing instance of the profile is kept
                and new ones go where they fit.
            type: int
  allow_reset:
    description:
      - Reset a GPU (C(nvidia-smi -i N -r)) whose MIG mode change is pending. Fails if the GPU is busy.
    type: bool
    default: false
  force:
    description:
      - Destroy GPU instances that have processes on them when the layout requires it.
      - The driver itself still refuses to destroy a compute instance while a process holds it
        ("In use by another client"); the module then fails with that message.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Check mode runs the same read-only comparison and reports what would change.
  diff_mode:
    support: full
    description: Returns the layout before and after per GPU.
  platform:
    platforms: posix
    support: full
    description: Linux hosts with an NVIDIA driver.
notes:
  - MIG devices do not survive a reboot; run the module again at boot (or after a reset) to restore the layout.
seealso:
  - module: fedgpu.platform.nvidia_gpu_info
  - plugin: fedgpu.platform.mig_plan
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Two 3g.40gb on GPU 0, seven 1g.10gb on GPU 1
  fedgpu.platform.nvidia_mig:
    layouts:
      - gpu: 0
        instances:
          - profile: 3g.40gb
          - profile: 3g.40gb
      - gpu: 1
        instances: "{{ [{'profile': '1g.10gb'}] * 7 }}"

- name: Mixed layout with explicit placements, reset the GPU if MIG mode is pending
  fedgpu.platform.nvidia_mig:
    allow_reset: true
    layouts:
      - gpu: 0
        instances:
          - {profile: 4g.40gb, placement: 0}
          - {profile: 2g.20gb, placement: 4}
          - {profile: "19", placement: 6}

- name: Apply the planner's layout for this host
  fedgpu.platform.nvidia_mig:
    layouts: "{{ (fleet | fedgpu.platform.mig_plan(demand))[inventory_hostname] }}"
  register: mig

- name: Reboot when MIG mode waits for it
  ansible.builtin.reboot:
  when: mig.reboot_required

- name: Turn MIG off on GPU 3
  fedgpu.platform.nvidia_mig:
    layouts:
      - gpu: 3
        mig_enabled: false
"""

RETURN = r"""
gpus:
  description: What was (or in check mode would be) done per listed GPU.
  returned: always
  type: list
  elements: dict
  sample:
    - gpu: 0
      model: A100-80GB
      mig_enabled: true
      enabled_mig: false
      pending_reset: false
      kept: ["3g.40gb@4:4"]
      destroyed: ["1g.10gb@0:1", "1g.10gb@1:1"]
      created: ["2g.20gb@0:2"]
      created_compute_instances: []
pending_reset:
  description: Indexes of GPUs whose MIG mode change is pending; their layout was not applied.
  returned: always
  type: list
  elements: int
  sample: [1]
reboot_required:
  description: True when a GPU needs a reset or a reboot before its layout can be applied.
  returned: always
  type: bool
  sample: false
commands:
  description: nvidia-smi commands that changed something (in check mode, the ones that would run).
  returned: always
  type: list
  elements: str
  sample: ["nvidia-smi mig -i 0 -gi 9 -dci", "nvidia-smi mig -i 0 -gi 9 -dgi", "nvidia-smi mig -i 0 -cgi 14:0 -C"]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fedgpu.platform.plugins.module_utils import mig as miglib
from ansible_collections.fedgpu.platform.plugins.module_utils.nvidia_smi import (
    NVIDIA_SMI_ARGS,
    NvidiaSmi,
    busy_map,
    current_for_plan,
)


def argument_spec():
    spec = dict(
        layouts=dict(
            type="list", elements="dict", required=True,
            options=dict(
                gpu=dict(type="int", required=True),
                mig_enabled=dict(type="bool", default=True),
                instances=dict(
                    type="list", elements="dict", default=[],
                    options=dict(profile=dict(type="str", required=True), placement=dict(type="int")),
                ),
            ),
        ),
        allow_reset=dict(type="bool", default=False),
        force=dict(type="bool", default=False),
    )
    spec.update(NVIDIA_SMI_ARGS)
    return spec


class MigApplier(object):
    def __init__(self, module):
        self.module = module
        self.smi = NvidiaSmi(module)
        self.commands = []
        self.reports = []
        self.pending = []

    def fail(self, exc):
        self.module.fail_json(msg=str(exc), option=exc.option)

    # -- validation and planning: no change happens here -------------------
    def plan(self, gpus):
        by_index = dict((g["index"], g) for g in gpus)
        seen = set()
        plans = []
        for pos, layout in enumerate(self.module.params["layouts"]):
            option = "layouts[%d]" % pos
            index = layout["gpu"]
            if index in seen:
                self.module.fail_json(msg="%s: GPU %d is listed more than once" % (option, index), option=option)
            seen.add(index)
            gpu = by_index.get(index)
            if gpu is None:
                self.module.fail_json(msg="%s.gpu: no GPU with index %d on this host (found: %s)"
                                      % (option, index, ", ".join(str(i) for i in sorted(by_index)) or "none"),
                                      option=option + ".gpu")
            if gpu["mig_mode"]["current"] == "N/A" or gpu["model"] is None and gpu["mig_mode"]["current"] != "Enabled":
                self.module.fail_json(msg="%s.gpu: GPU %d (%s) has no known MIG support" % (option, index, gpu["name"]),
                                      option=option + ".gpu")
            if not layout["mig_enabled"] and layout["instances"]:
                self.module.fail_json(msg="%s.instances: must be empty when mig_enabled is false" % option,
                                      option=option + ".instances")
            if gpu["model"] is None:
                self.module.fail_json(msg="%s.gpu: no MIG profile table for %s" % (option, gpu["name"]), option=option + ".gpu")
            try:
                desired = miglib.normalize_layout(gpu["model"], layout["instances"], option + ".instances")
                enabled = gpu["mig_mode"]["current"] == "Enabled"
                current = current_for_plan(gpu) if enabled else []
                result = miglib.plan_gpu(gpu["model"], current, desired, busy_map(gpu), self.module.params["force"], option)
            except miglib.MigError as exc:
                self.fail(exc)
            plans.append((layout, gpu, result))
        return plans

    # -- actions ------------------------------------------------------------
    def do(self, args, allow_empty=False):
        self.commands.append(" ".join([self.smi.path] + args))
        if self.module.check_mode:
            return ""
        return self.smi.run(args, allow_empty=allow_empty)

    def modes(self, index):
        for gpu in self.smi.state():
            if gpu["index"] == index:
                return gpu["mig_mode"]
        return {"current": "N/A", "pending": "N/A"}

    def set_mode(self, gpu, want):
        """Returns True when the mode is effective (or would be, in check mode)."""
        index = str(gpu["index"])
        mode = dict(gpu["mig_mode"])
        if mode["current"] == want and mode["pending"] in (want, "N/A"):
            return True
        if mode["pending"] != want:
            self.do(["-i", index, "-mig", "1" if want == "Enabled" else "0"])
            if self.module.check_mode:
                return True
            mode = self.modes(gpu["index"])
        if mode["current"] != want and self.module.params["allow_reset"]:
            self.do(["-i", index, "-r"])
            if self.module.check_mode:
                return True
            mode = self.modes(gpu["index"])
        if mode["current"] != want:
            self.pending.append(gpu["index"])
            return False
        return True

    def apply(self, layout, gpu, plan):
        model = gpu["model"]
        index = str(gpu["index"])
        report = {
            "gpu": gpu["index"],
            "model": model,
            "mig_enabled": layout["mig_enabled"],
            "enabled_mig": False,
            "pending_reset": False,
            "kept": miglib.layout_strings(model, plan["keep"]),
            "destroyed": miglib.layout_strings(model, plan["destroy"]),
            "created": [miglib.fmt_instance(p.name, s, p.size) for p, s in plan["create"]],
            "created_compute_instances": list(plan["create_ci"]),
        }
        self.reports.append(report)
        want_on = layout["mig_enabled"]
        was_on = gpu["mig_mode"]["current"] == "Enabled"
        if want_on:
            report["enabled_mig"] = not was_on
            if not self.set_mode(gpu, "Enabled"):
                report["pending_reset"] = True
                report["created"] = []
                return
        for gi in plan["destroy"]:
            self.do(["mig", "-i", index, "-gi", str(gi["gi_id"]), "-dci"], allow_empty=True)
            self.do(["mig", "-i", index, "-gi", str(gi["gi_id"]), "-dgi"])
        if plan["create"]:
            specs = ",".join("%d:%d" % (p.id, s) for p, s in plan["create"])
            self.do(["mig", "-i", index, "-cgi", specs, "-C"])
        profiles = dict((gi["gi_id"], gi["profile_id"]) for gi in gpu["gpu_instances"])
        for gi_id in plan["create_ci"]:
            compute = miglib.get_profile(model, profiles[gi_id]).compute
            self.do(["mig", "-i", index, "-gi", str(gi_id), "-cci", str(miglib.CI_PROFILE_BY_COMPUTE.get(compute, 0))])
        if not want_on and was_on:
            if not self.set_mode(gpu, "Disabled"):
                report["pending_reset"] = True

    def run(self):
        before_gpus = self.smi.state()
        plans = self.plan(before_gpus)
        for layout, gpu, plan in plans:
            self.apply(layout, gpu, plan)
        changed = bool(self.commands)
        result = dict(
            changed=changed,
            gpus=self.reports,
            pending_reset=sorted(self.pending),
            reboot_required=bool(self.pending),
            commands=self.commands,
        )
        if self.pending:
            result["msg"] = ("MIG mode change pending on GPU(s) %s: reset the GPU (allow_reset=true) or reboot the host, "
                             "then run again to apply the layout" % ", ".join(str(i) for i in sorted(self.pending)))
            self.module.warn(result["msg"])
        if self.module._diff:
            result["diff"] = self.diff(plans, before_gpus)
        self.module.exit_json(**result)

    def diff(self, plans, before_gpus):
        before, after = {}, {}
        after_state = None
        if not self.module.check_mode and self.commands:
            after_state = dict((g["index"], g) for g in self.smi.state())
        for layout, gpu, plan in plans:
            key = "gpu%d" % gpu["index"]
            model = gpu["model"]
            before[key] = {"mig": gpu["mig_mode"]["current"], "instances": miglib.layout_strings(model, current_for_plan(gpu))}
            if after_state is not None:
                now = after_state[gpu["index"]]
                after[key] = {"mig": now["mig_mode"]["current"], "instances": miglib.layout_strings(model, current_for_plan(now))}
            else:
                wanted = sorted(miglib.layout_strings(model, plan["keep"])
                                + [miglib.fmt_instance(p.name, s, p.size) for p, s in plan["create"]],
                                key=lambda text: int(text.split("@")[1].split(":")[0]))
                after[key] = {"mig": "Enabled" if layout["mig_enabled"] else "Disabled", "instances": wanted}
        return {"before": before, "after": after}


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    MigApplier(module).run()


if __name__ == "__main__":
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: nvidia_gpu_info
short_description: Report NVIDIA GPUs, MIG mode and MIG instances of a host
version_added: "0.1.0"
description:
  - Reads C(nvidia-smi) and returns every GPU with index, UUID, model and memory,
    its current and pending MIG mode, its GPU instances and compute instances with
    profile, placement and MIG device UUID, and which instances have processes on them.
  - Read only; never changes the GPU.
author:
  - fedgpu.platform developers (@fedgpu)
extends_documentation_fragment:
  - fedgpu.platform.nvidia_smi
attributes:
  check_mode:
    support: full
    description: The module only reads; it runs the same in check mode.
  diff_mode:
    support: none
    description: Nothing changes, there is nothing to diff.
  platform:
    platforms: posix
    support: full
    description: Linux hosts with an NVIDIA driver.
"""

EXAMPLES = r"""
- name: Read GPU and MIG state
  fedgpu.platform.nvidia_gpu_info:
  register: gpu_info

- name: Show the MIG device UUIDs of GPU 0
  ansible.builtin.debug:
    msg: "{{ gpu_info.gpus[0].gpu_instances | map(attribute='compute_instances') | flatten | map(attribute='mig_device_uuid') }}"

- name: Fail when a MIG mode change waits for a reset
  ansible.builtin.assert:
    that: gpu_info.gpus | selectattr('mig_pending_reset') | list | length == 0
"""

RETURN = r"""
gpus:
  description: One entry per GPU, ordered by index.
  returned: always
  type: list
  elements: dict
  contains:
    index:
      description: GPU index as used by C(nvidia-smi -i).
      type: int
      sample: 0
    uuid:
      description: GPU UUID.
      type: str
      sample: GPU-e86cb44c-6756-fd30-cd4a-1e6da3caf9b0
    name:
      description: Product name reported by the driver.
      type: str
      sample: NVIDIA A100-SXM4-80GB
    model:
      description: Key of the MIG profile table used for this GPU, null when MIG is not supported or unknown.
      type: str
      sample: A100-80GB
    memory_total_mib:
      description: Total memory in MiB.
      type: int
      sample: 81920
    pci_bus_id:
      description: PCI bus ID.
      type: str
      sample: "00000000:07:00.0"
    mig_mode:
      description: Current and pending MIG mode (C(Enabled), C(Disabled) or C(N/A)).
      type: dict
      sample: {"current": "Disabled", "pending": "Enabled"}
    mig_pending_reset:
      description: True when the pending MIG mode differs from the current one (GPU reset or reboot needed).
      type: bool
      sample: false
    gpu_instances:
      description: GPU instances (empty when MIG mode is off).
      type: list
      elements: dict
      sample:
        - gi_id: 1
          profile: 3g.40gb
          profile_id: 9
          placement: 4
          size: 4
          in_use: true
          pids: [4242]
          compute_instances:
            - ci_id: 0
              profile: 3g.40gb
              profile_id: 2
              mig_device_uuid: MIG-c7384736-a75d-5afc-978f-d2f1294409fd
    processes:
      description:
        - Processes on the MIG devices of this GPU, from the C(nvidia-smi) process table.
        - Read only when MIG instances exist; empty for GPUs without MIG instances.
      type: list
      elements: dict
      sample: [{"gpu": 0, "gi_id": 1, "ci_id": 0, "pid": 4242, "type": "C", "name": "python", "used_memory": "253MiB"}]
mig_devices:
  description: Flat list of MIG devices (one per compute instance), handy for schedulers and device plugins.
  returned: always
  type: list
  elements: dict
  sample:
    - gpu: 0
      gpu_uuid: GPU-e86cb44c-6756-fd30-cd4a-1e6da3caf9b0
      gi_id: 1
      ci_id: 0
      profile: 3g.40gb
      placement: 4
      uuid: MIG-c7384736-a75d-5afc-978f-d2f1294409fd
      in_use: true
devices:
  description:
    - The devices a scheduler hands out, in the shape of C(htcondor_gpus) and C(jupyterhub_gpus)
      of the collection's roles. One per MIG device of a GPU with MIG enabled, one per whole GPU
      otherwise; a GPU with MIG enabled and no instance gives none.
    - C(model) is the product name without C(NVIDIA ), as HTCondor's C(DeviceName);
      C(memory_mb) of a MIG device comes from its profile's name.
  returned: always
  type: list
  elements: dict
  sample:
    - id: MIG-c7384736-a75d-5afc-978f-d2f1294409fd
      model: A100-SXM4-80GB
      memory_mb: 40960
      mig_profile: 3g.40gb
      parent: GPU-e86cb44c-6756-fd30-cd4a-1e6da3caf9b0
    - id: GPU-5e1c2a39-0c4a-4f7e-9a53-3b8c5a7e21d4
      model: H100 80GB HBM3
      memory_mb: 81559
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fedgpu.platform.plugins.module_utils.nvidia_smi import NVIDIA_SMI_ARGS, NvidiaSmi, schedulable_devices


def main():
    module = AnsibleModule(argument_spec=dict(NVIDIA_SMI_ARGS), supports_check_mode=True)
    smi = NvidiaSmi(module)
    gpus = smi.state()
    devices = []
    for gpu in gpus:
        mode = gpu["mig_mode"]
        gpu["mig_pending_reset"] = mode["pending"] not in ("N/A", mode["current"])
        for gi in gpu["gpu_instances"]:
            for ci in gi["compute_instances"]:
                devices.append({
                    "gpu": gpu["index"],
                    "gpu_uuid": gpu["uuid"],
                    "gi_id": gi["gi_id"],
                    "ci_id": ci["ci_id"],
                    "profile": gi["profile"],
                    "placement": gi["placement"],
                    "uuid": ci["mig_device_uuid"],
                    "in_use": gi["in_use"],
                })
    module.exit_json(changed=False, gpus=gpus, mig_devices=devices, devices=schedulable_devices(gpus))


if __name__ == "__main__":
    main()

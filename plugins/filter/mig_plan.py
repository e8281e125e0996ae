# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
name: mig_plan
short_description: Plan NVIDIA MIG layouts for a fleet from a demand
version_added: "0.1.0"
author:
  - fedgpu.platform developers (@fedgpu)
description:
  - Takes a fleet (hosts with their GPU models and current MIG layouts) and a demand
    (how many MIG instances of each profile are needed in total) and returns, per host,
    the layouts to give to M(fedgpu.platform.nvidia_mig) as its O(fedgpu.platform.nvidia_mig#module:layouts) option.
  - "Objective, in order: fewest GPUs reconfigured, then fewest GPUs used, then fewest existing
    instances destroyed, then fewest memory slices taken. Instances marked C(in_use) are never moved
    or destroyed; current instances that serve the demand stay where they are."
  - GPUs that are not reconfigured keep their instances, including ones the demand does not ask for
    (they still count towards the demand); reconfigured GPUs get only instances the demand needs
    (plus the ones in use).
  - Exact for fleets of up to O(exact_limit) GPUs; larger fleets are planned greedily and the
    last choices re-solved exactly.
  - GPUs that are empty and stay empty are left out of the result, so MIG mode is not turned on
    where it is not needed. A GPU whose instances all go away appears with an empty instance list.
  - An unsatisfiable demand fails with an error that names what is missing.
positional: _input, demand
options:
  _input:
    description:
      - The fleet. Either a dict of host name to a list of GPUs (or to a dict with a C(gpus) list),
        or a list of dicts with C(host) and C(gpus).
      - A GPU is a dict with C(model) (or C(name), as returned by M(fedgpu.platform.nvidia_gpu_info)),
        an optional C(index) (default its position) and optional current instances in C(instances)
        (or C(gpu_instances)), each with C(profile) (name or ID), C(placement) and optional C(in_use).
      - The C(gpus) list returned by M(fedgpu.platform.nvidia_gpu_info) can be used as is.
    type: raw
    required: true
  demand:
    description:
      - "Dict of MIG profile name to the number of instances needed in the whole fleet, for example
        C({'1g.10gb': 20, '3g.40gb': 4})."
      - Profile names are those of the GPU models (C(1g.10gb) is offered by A100 80GB and H100 80GB,
        and also by A100 40GB where it spans two memory slices).
    type: dict
    required: true
  details:
    description:
      - Return a dict with C(layouts) and a summary (C(gpus_used), C(gpus_reconfigured), C(reconfigured),
        C(instances_destroyed), C(supply), C(demand)) instead of the layouts alone.
    type: bool
    default: false
  exact_limit:
    description: Fleets with at most this many GPUs are planned by exact search.
    type: int
    default: 8
"""

EXAMPLES = r"""
# In a play on the GPU workers: read every host's GPUs, plan once, apply each host's part.
- name: Read GPUs
  fedgpu.platform.nvidia_gpu_info:
  register: gpu_info

- name: Apply this host's part of the plan
  fedgpu.platform.nvidia_mig:
    layouts: "{{ plan[inventory_hostname] }}"
  vars:
    fleet: "{{ dict(ansible_play_hosts | zip(ansible_play_hosts | map('extract', hostvars, ['gpu_info', 'gpus']))) }}"
    plan: "{{ fleet | fedgpu.platform.mig_plan({'1g.10gb': 20, '3g.40gb': 4}) }}"

- name: Plan from a hand-written fleet
  ansible.builtin.debug:
    msg: "{{ fleet | fedgpu.platform.mig_plan({'1g.10gb': 7, '3g.40gb': 2}, details=true) }}"
  vars:
    fleet:
      node1:
        - {index: 0, model: A100-SXM4-80GB, instances: [{profile: 3g.40gb, placement: 0, in_use: true}]}
        - {index: 1, model: A100-SXM4-80GB}
"""

RETURN = r"""
_value:
  description:
    - Dict of host name to a list of layouts, each a dict with C(gpu) and C(instances) (a list of dicts
      with C(profile) and C(placement)), ready for the O(fedgpu.platform.nvidia_mig#module:layouts) option.
      Every host of the fleet is a key.
    - With O(details=true), a dict with C(layouts) (as above), C(gpus_used), C(gpus_reconfigured),
      C(reconfigured) (list of C({host, gpu})), C(instances_destroyed), C(supply) and C(demand).
  type: dict
  sample:
    node1:
      - gpu: 0
        instances:
          - {profile: 3g.40gb, placement: 0}
          - {profile: 1g.10gb, placement: 4}
          - {profile: 1g.10gb, placement: 5}
          - {profile: 1g.10gb, placement: 6}
      - gpu: 1
        instances:
          - {profile: 1g.10gb, placement: 3}
          - {profile: 1g.10gb, placement: 4}
          - {profile: 1g.10gb, placement: 5}
          - {profile: 1g.10gb, placement: 6}
          - {profile: 3g.40gb, placement: 0}
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.fedgpu.platform.plugins.module_utils import mig as miglib
from ansible_collections.fedgpu.platform.plugins.module_utils import mig_planner


def mig_plan(fleet, demand, details=False, exact_limit=mig_planner.EXACT_LIMIT):
    """Plan MIG layouts for ``fleet`` meeting ``demand``."""
    try:
        result = mig_planner.plan(fleet, demand, exact_limit=int(exact_limit))
    except miglib.MigError as exc:
        raise AnsibleFilterError("mig_plan: %s" % exc)
    if details:
        return result
    return result["layouts"]


def mig_profiles(model=None):
    """Names of the MIG GPU instance profiles of ``model`` (any name nvidia-smi reports), or of every known model."""
    if model:
        key = miglib.resolve_model(model)
        if key is None:
            raise AnsibleFilterError("mig_profiles: no MIG profile table for GPU model %r; known: %s" % (model, ", ".join(miglib.model_keys())))
        keys = [key]
    else:
        keys = miglib.model_keys()
    names = []
    for key in keys:
        for profile in miglib.model_profiles(key):
            if profile.name not in names:
                names.append(profile.name)
    return names


class FilterModule(object):
    def filters(self):
        return {"mig_plan": mig_plan, "mig_profiles": mig_profiles}

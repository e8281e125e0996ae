# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Options shared by the modules that run nvidia-smi
    DOCUMENTATION = r"""
options:
  nvidia_smi_path:
    description:
      - Path or name of the C(nvidia-smi) executable to run.
      - Tests point it at the nvidia-smi emulator shipped in C(tests/emulator/).
    type: path
    default: nvidia-smi
requirements:
  - NVIDIA driver with C(nvidia-smi) on the managed host.
notes:
  - Profile tables and placement rules come from NVIDIA's Multi-Instance GPU User Guide;
    GPUs not in the built-in tables are read from C(nvidia-smi mig -lgip) and C(-lgipp) once MIG mode is on.
"""

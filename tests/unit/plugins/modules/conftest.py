# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run the modules against the nvidia-smi emulator (real subprocesses for every nvidia-smi call)."""

import contextlib
import importlib
import io
import json
import os
import subprocess
import sys

import pytest
from ansible.module_utils.testing import patch_module_args

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
EMULATOR = os.path.join(ROOT, "tests", "emulator", "nvidia-smi")
COLLECTIONS = os.path.join(ROOT, ".cache", "collections")


class Emulator(object):
    def __init__(self, state, path=EMULATOR):
        self.state = state
        self.path = path
        self.env = dict(os.environ, FAKE_NVIDIA_SMI_STATE=state)

    def __call__(self, *args, **kwargs):
        proc = subprocess.run([sys.executable, EMULATOR] + [str(a) for a in args], env=self.env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
        if kwargs.get("check", True) and proc.returncode != 0:
            raise AssertionError("emulator %s failed rc=%d: %s" % (args, proc.returncode, proc.stdout))
        return proc

    def data(self):
        with open(self.state) as handle:
            return json.load(handle)

    def run_module(self, name, args, check_mode=False, diff=False, in_process=True):
        """Run a module's main(); in-process by default (imports once), or as ``python -m`` with an args file."""
        args = dict(args)
        args.setdefault("nvidia_smi_path", self.path)
        args["_ansible_check_mode"] = check_mode
        args["_ansible_diff"] = diff
        if in_process:
            module = importlib.import_module("ansible_collections.fedgpu.platform.plugins.modules." + name)
            out = io.StringIO()
            old = os.environ.get("FAKE_NVIDIA_SMI_STATE")
            os.environ["FAKE_NVIDIA_SMI_STATE"] = self.state
            try:
                with patch_module_args(args), contextlib.redirect_stdout(out):
                    try:
                        module.main()
                    except SystemExit:
                        pass
            finally:
                if old is None:
                    del os.environ["FAKE_NVIDIA_SMI_STATE"]
                else:
                    os.environ["FAKE_NVIDIA_SMI_STATE"] = old
            return json.loads(out.getvalue())
        path = self.state + ".args.json"
        with open(path, "w") as handle:
            json.dump({"ANSIBLE_MODULE_ARGS": args}, handle)
        env = dict(self.env, PYTHONPATH=COLLECTIONS + os.pathsep + self.env.get("PYTHONPATH", ""))
        proc = subprocess.run([sys.executable, "-m", "ansible_collections.fedgpu.platform.plugins.modules." + name, path],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
        try:
            return json.loads(proc.stdout)
        except ValueError:
            raise AssertionError("module %s printed no JSON (rc=%d): %s %s" % (name, proc.returncode, proc.stdout, proc.stderr))

    def layout(self, index):
        gpu = self.data()["gpus"][index]
        return sorted((gi["profile_id"], gi["start"]) for gi in gpu["gpu_instances"])


def launcher(directory):
    """The emulator started by this interpreter (skips slow ``env python3`` shims); same code, same argv."""
    path = os.path.join(directory, "nvidia-smi")
    with open(path, "w") as handle:
        handle.write("#!%s\nimport runpy, sys\nsys.argv[0] = %r\nrunpy.run_path(%r, run_name='__main__')\n"
                     % (sys.executable, EMULATOR, EMULATOR))
    os.chmod(path, 0o755)
    return path


@pytest.fixture
def emulator(tmp_path):
    emu = Emulator(str(tmp_path / "state.json"), launcher(str(tmp_path)))
    emu("--emulator-init", "A100-80GB,A100-80GB,A30")
    return emu

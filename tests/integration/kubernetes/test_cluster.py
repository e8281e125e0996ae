# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The kubernetes role's objects against a real cluster: skipped unless KUBECONFIG names one.

With KUBECONFIG set and kubectl on PATH, every object the role renders (GPU
objects, storage, and Kueue's when its CRDs are installed) goes to the API
server: `kubectl apply --dry-run=server` (the API server's own validation and
admission, nothing stored), or a real apply with FEDGPU_K8S_APPLY=1. Then, for
a real apply, a second apply must report every object unchanged.
"""

import os
import shutil
import subprocess
import sys

import pytest
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
UNIT = os.path.join(HERE, "..", "..", "unit", "kubernetes")
sys.path.insert(0, UNIT)

pytestmark = [
    pytest.mark.skipif(not os.environ.get("KUBECONFIG"),
                       reason="needs a Kubernetes cluster: set KUBECONFIG to its credentials (none runs on the build machines)"),
    pytest.mark.skipif(shutil.which("kubectl") is None, reason="needs kubectl on PATH"),
]


def kubectl(*args, stdin=None):
    return subprocess.run(["kubectl"] + list(args), input=stdin, capture_output=True, text=True, check=False)


def rendered():
    import test_role  # pylint: disable=import-outside-toplevel
    from ansible_collections.fedgpu.platform.plugins.module_utils import kueue  # pylint: disable=import-outside-toplevel
    objects = {
        "20-gpus.yml": list(yaml.safe_load_all(test_role.render_file("objects/20-gpus.yml.j2", **test_role.cluster()))),
        "30-storage.yml": list(yaml.safe_load_all(test_role.render_file(
            "objects/30-storage.yml.j2", **test_role.cluster(kubernetes_groups=test_role.GROUPS)))),
    }
    inventory = [{"name": "gpu1", "gpu_model": "NVIDIA-A100-SXM4-80GB", "resources": {"nvidia.com/mig-1g.10gb": 14},
                  "cpu": 64, "memory_mib": 512000}]
    objects["40-kueue.yml"] = kueue.objects(inventory, test_role.GROUPS, notebooks={"fraction": 0.25})
    return objects


@pytest.mark.parametrize("name", ["20-gpus.yml", "30-storage.yml", "40-kueue.yml"])
def test_objects_are_accepted_by_the_api_server(name):
    if name == "40-kueue.yml" and kubectl("get", "crd", "clusterqueues.kueue.x-k8s.io").returncode != 0:
        pytest.skip("Kueue's CRDs are not installed in this cluster (kubernetes_kueue_manifest_checksum)")
    text = yaml.safe_dump_all(rendered()[name])
    real = os.environ.get("FEDGPU_K8S_APPLY") == "1"
    result = kubectl("apply", "-f", "-", *([] if real else ["--dry-run=server"]), stdin=text)
    assert result.returncode == 0, result.stderr
    if real:
        again = kubectl("apply", "-f", "-", stdin=text)
        assert again.returncode == 0, again.stderr
        assert all(line.endswith(" unchanged") for line in again.stdout.splitlines()), again.stdout

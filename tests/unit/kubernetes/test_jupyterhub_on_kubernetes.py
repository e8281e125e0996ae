# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The jupyterhub role with jupyterhub_on: kubernetes, run for real with ansible-playbook on this machine.

It validates its inputs, writes the Zero to JupyterHub values (0600) where it is told, says that the chart
is not installed (no Helm, no cluster here), and changes nothing the second time. The values validate
against the chart's pinned values.schema.json (merged over the chart's defaults, as Helm does).
"""

import json
import os
import stat
import subprocess
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, HERE)
# The chart's defaults and pinned schema, as test_z2jh checks the filter's values with them.
from test_z2jh import merged, schema_errors  # noqa: E402  pylint: disable=wrong-import-position

PLAY = """
- name: The hub on Kubernetes
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    jupyterhub_on: kubernetes
    jupyterhub_k8s_values_file: {out}/values.yaml
    jupyterhub_k8s_kubeconfig: {out}/no-cluster.conf
    jupyterhub_k8s_nfs_server: nfs1.example
    jupyterhub_oidc_issuer: https://iam.example.org/
    jupyterhub_oidc_client_id: hub
    jupyterhub_oidc_client_secret: s3cret-s3cret-s3cret
    jupyterhub_oidc_authorize_url: https://iam.example.org/authorize
    jupyterhub_oidc_token_url: https://iam.example.org/token
    jupyterhub_oidc_userdata_url: https://iam.example.org/userinfo
    jupyterhub_server_name: hub.example.org
    jupyterhub_gpu_discovery: false
    platform_groups:
      - {{name: physics, gid: 3100, share: 0.6}}
      - {{name: ml-infn, gid: 3200, share: 0.4}}
    platform_users:
      - {{name: alice, uid: 3001, groups: [physics]}}
    jupyterhub_environments:
      - {{name: torch, display_name: PyTorch, image: "quay.io/jupyter/pytorch-notebook:2026-01-01", groups: []}}
      - {{name: conda-ml, display_name: ML conda, path: /opt/conda-envs/ml, groups: [ml-infn]}}
    jupyterhub_flavours:
      - {{name: cpu-small, display_name: CPU, cpu_limit: 1, mem_limit: 2G, gpu: none, groups: []}}
      - {{name: mig-small, display_name: MIG, cpu_limit: 2, mem_limit: 8G, gpu: mig, mig_profile: 1g.10gb, groups: [physics]}}
  roles:
    - role: fedgpu.platform.jupyterhub
"""


def run(tmp_path):
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_CONFIG=str(tmp_path / "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".cache", "collections"))
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,", "play.yml",
                           "-e", "ansible_python_interpreter=%s" % sys.executable],
                          cwd=str(tmp_path), env=env, capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return json.loads(proc.stdout)


def test_values_written_valid_and_idempotent(tmp_path):
    out = tmp_path / "out"
    (tmp_path / "ansible.cfg").write_text("[defaults]\n")
    (tmp_path / "play.yml").write_text(PLAY.format(out=out))
    first = run(tmp_path)
    values_file = out / "values.yaml"
    assert stat.S_IMODE(values_file.stat().st_mode) == 0o600
    assert "s3cret-s3cret-s3cret" not in json.dumps(first), "the client secret reached the output"
    notes = [h["msg"] for t in first["plays"][0]["tasks"] for h in t["hosts"].values() if "The hub is not installed" in str(h.get("msg"))]
    assert len(notes) == 1
    values = yaml.safe_load(values_file.read_text())
    assert schema_errors(merged(values)) == []
    assert values["hub"]["config"]["GenericOAuthenticator"]["client_secret"] == "s3cret-s3cret-s3cret"
    second = run(tmp_path)
    assert second["stats"]["localhost"]["changed"] == 0

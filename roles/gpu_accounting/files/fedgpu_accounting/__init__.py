# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""fedgpu GPU accounting: the collector that runs on every node with user work, and the reports.

Modules (stdlib only; psycopg2, pynvml and matplotlib are used when present):
devices (GPUs and MIG devices, from NVML or nvidia-smi), workloads (who holds
and uses them: JupyterHub servers, HTCondor jobs, cgroup figures), spool (the
durable local queue), ship (COPY into the accounting database), collector (the
service), report (the reports), usage_page (the researchers' own usage, a
JupyterHub service: needs JupyterHub's service library and tornado).
"""

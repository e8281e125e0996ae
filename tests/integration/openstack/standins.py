# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A stand-in hypervisor for the OpenStack test sites.

Their Nova runs the fake virt driver: a server becomes ACTIVE but no machine
runs it.  ``StandIns`` watches the sites as a hypervisor would its instances:
every ACTIVE server of one cluster gets a local systemd container of the same
name (``standins.yml``, with the nvidia-smi emulator where the flavor has
GPUs), and a server that is gone loses its container.  The inventory of the
test points ``ansible_host`` at that container, so what is configured is
what the cloud API reported.
"""
import json
import os
import subprocess
import tempfile
import threading
import time

from ansible_collections.fedgpu.platform.plugins.module_utils.openstack_federation import gpu_info
from osenv import BIN, HERE, SITE_A, SITE_B, ansible_env

PLAYBOOK = os.path.join(HERE, 'standins.yml')
# Emulated GPUs per GPU model of a flavor (its gpu:model extra spec).
EMULATED = {'A100': 'A100-80GB', 'H100': 'H100-80GB'}


def flavor_gpus(flavor):
    """The emulator's GPU models for a server's embedded flavor (compute API >= 2.47), read as the collection reads flavors."""
    gpu = gpu_info(getattr(flavor, 'extra_specs', None))
    return [EMULATED.get(gpu['model'], gpu['model'])] * gpu['count'] if gpu['model'] else []


class StandIns:
    """Keep one stand-in container per ACTIVE server of ``cluster`` while the context runs."""

    def __init__(self, conns, cluster, period=1.0):
        self.conns, self.cluster, self.period = conns, cluster, period
        self.running = {}   # server name -> server id
        self.log = []       # (time, event, names)
        self.errors = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name='standins', daemon=True)

    def servers(self):
        found = {}
        for site in (SITE_A, SITE_B):
            conn = self.conns[site + '-admin']
            for server in conn.compute.servers(details=True, all_projects=True):
                if (server.metadata or {}).get('fedgpu_cluster') == self.cluster:
                    found[server.name] = server
        return found

    def _start(self, servers):
        standins = [{'name': s.name, 'gpus': flavor_gpus(s.flavor)} for s in servers]
        with tempfile.NamedTemporaryFile('w', suffix='.json') as f:
            json.dump({'standins': standins}, f)
            f.flush()
            proc = subprocess.run([os.path.join(BIN, 'ansible-playbook'), '-i', 'localhost,', '-c', 'local', '-e', '@' + f.name, PLAYBOOK],
                                  capture_output=True, text=True, env=ansible_env(), check=False)
        if proc.returncode != 0:
            raise RuntimeError('stand-ins for %s did not start:\n%s' % ([s['name'] for s in standins], proc.stdout[-3000:]))

    @staticmethod
    def _remove(names):
        subprocess.run(['docker', 'rm', '-f'] + list(names), capture_output=True, check=False)

    def step(self):
        servers = self.servers()
        active = {name: s for name, s in servers.items() if s.status == 'ACTIVE'}
        # A server recreated under the same name (rescheduled) gets a fresh stand-in.
        gone = [name for name, sid in self.running.items() if name not in active or active[name].id != sid]
        if gone:
            self._remove(gone)
            for name in gone:
                del self.running[name]
            self.log.append((time.time(), 'removed', sorted(gone)))
        new = [s for name, s in sorted(active.items()) if name not in self.running]
        if new:
            self._start(new)
            self.running.update((s.name, s.id) for s in new)
            self.log.append((time.time(), 'started', [s.name for s in new]))

    def _loop(self):
        while not self._stop.is_set():
            try:
                self.step()
            except Exception as exc:  # pylint: disable=broad-except
                # Recorded, and raised by stop(): a stand-in that did not start fails the test.
                self.errors.append(exc)
                return
            self._stop.wait(self.period)

    def __enter__(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=300)
        if self.errors:
            raise self.errors[0]

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=300)
        self._remove(list(self.running))
        self.running.clear()
        return False

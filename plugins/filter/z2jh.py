# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter: Zero to JupyterHub Helm values from the jupyterhub role's variables."""

from __future__ import annotations

import os

from ansible.errors import AnsibleFilterError

from ansible_collections.fedgpu.platform.plugins.module_utils.z2jh import Z2jhError, values

# The collection's own copies, used when the caller passes no text.
_ROLE_FILES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "roles", "jupyterhub", "files")


def _read(name):
    try:
        with open(os.path.join(_ROLE_FILES, name)) as handle:
            return handle.read()
    except OSError as exc:
        raise AnsibleFilterError("z2jh_values: cannot read the collection's %s (%s); pass its text" % (name, exc))


def z2jh_values(settings, hub_module_source=None, singleuser_wrapper_source=None):
    """Helm values of the Zero to JupyterHub chart 4.4.0 (see z2jh_values.yml)."""
    try:
        return values(settings,
                      hub_module_source if hub_module_source else _read("fedgpu_hub.py"),
                      singleuser_wrapper_source if singleuser_wrapper_source else _read("fedgpu-singleuser"))
    except Z2jhError as exc:
        raise AnsibleFilterError("z2jh_values: %s" % exc)


class FilterModule(object):
    def filters(self):
        return {"z2jh_values": z2jh_values}

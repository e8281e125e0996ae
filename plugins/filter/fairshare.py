# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fair-share targets of the platform's communities, shared by HTCondor, Kueue and the accounting reports."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.fedgpu.platform.plugins.module_utils.fairshare import DEFAULT_PRIORITY_FACTOR, FairShareError, targets


def fairshare_targets(groups, accept_surplus=True, priority_factor=DEFAULT_PRIORITY_FACTOR):
    """[{name, parent, path, depth, share, target, accept_surplus, priority_factor}], parents before children."""
    try:
        return targets(groups, accept_surplus, priority_factor)
    except FairShareError as e:
        raise AnsibleFilterError('fairshare_targets: %s' % e)


class FilterModule(object):
    def filters(self):
        return {'fairshare_targets': fairshare_targets}

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kueue queues (kueue.x-k8s.io/v1beta2) from the platform's nodes and communities; the rules are module_utils.kueue's."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.fedgpu.platform.plugins.module_utils.kueue import KueueError, objects


def kueue_objects(inventory, groups, notebooks=None, prefix='', namespace_prefix='community-', notebook_namespace='jupyterhub',
                  root_cohort='platform', cpu_flavor='cpu', cpu_node_labels=None, local_queue='default', notebook_queue='notebooks',
                  priorities=None, match_namespaces=True):
    """[Kueue object], in apply order: WorkloadPriorityClasses, ResourceFlavors, Cohorts, ClusterQueues, LocalQueues."""
    try:
        return objects(inventory, groups, notebooks=notebooks, prefix=prefix, namespace_prefix=namespace_prefix,
                       notebook_namespace=notebook_namespace, root_cohort=root_cohort, cpu_flavor=cpu_flavor,
                       cpu_node_labels=cpu_node_labels, local_queue=local_queue, notebook_queue=notebook_queue,
                       priorities=priorities, match_namespaces=bool(match_namespaces))
    except KueueError as e:
        raise AnsibleFilterError('kueue_objects: %s' % e)


class FilterModule(object):
    def filters(self):
        return {'kueue_objects': kueue_objects}

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a Kubernetes node offers for GPUs, from the GPU part's view of its devices."""

from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError

from ansible_collections.fedgpu.platform.plugins.module_utils.k8s_names import community_name, mig_resource


def _product(name):
    """The GPU product as NVIDIA's GPU feature discovery writes it (spaces become dashes)."""
    return re.sub(r'[^A-Za-z0-9_.-]', '-', str(name).strip())


def kubernetes_node(gpus, mig_strategy='mixed'):
    """GPU model, extended resources and labels of a node, from fedgpu.platform.nvidia_gpu_info's ``gpus``."""
    if mig_strategy not in ('none', 'single', 'mixed'):
        raise AnsibleFilterError('kubernetes_mig_strategy: expected none, single or mixed, got %r' % (mig_strategy,))
    if not isinstance(gpus, (list, tuple)):
        raise AnsibleFilterError('kubernetes_node: expected the list of GPUs of nvidia_gpu_info, got %r' % (gpus,))
    resources = {}
    products = []
    slices = {}
    mig_capable = False
    for gpu in gpus:
        if not isinstance(gpu, dict) or 'name' not in gpu:
            raise AnsibleFilterError('kubernetes_node: every GPU needs a name, got %r' % (gpu,))
        products.append(_product(gpu['name']))
        mig_capable = mig_capable or bool(gpu.get('model'))
        instances = [ci for gi in gpu.get('gpu_instances') or [] for ci in gi.get('compute_instances') or []]
        if instances and mig_strategy != 'none':
            for ci in instances:
                profile = str(ci.get('profile', ''))
                try:
                    key = 'nvidia.com/gpu' if mig_strategy == 'single' else mig_resource(profile)
                except ValueError as exc:
                    raise AnsibleFilterError('kubernetes_node: %s' % exc)
                slices[profile] = slices.get(profile, 0) + 1
                resources[key] = resources.get(key, 0) + 1
        else:
            resources['nvidia.com/gpu'] = resources.get('nvidia.com/gpu', 0) + 1
    if len(set(products)) > 1:
        raise AnsibleFilterError('kubernetes_node: the node mixes GPU models %s; Kueue flavours select one model per node'
                                 % sorted(set(products)))
    layout = '_'.join('%dx%s' % (slices[p], p.replace('+', '-')) for p in sorted(slices)) or 'none'
    labels = {}
    if products:
        labels = {
            'nvidia.com/gpu.present': 'true',
            'nvidia.com/gpu.product': products[0],
            'nvidia.com/gpu.count': str(len(products)),
            'nvidia.com/mig.capable': 'true' if mig_capable else 'false',
            'nvidia.com/mig.strategy': mig_strategy,
            'fedgpu.platform/mig-layout': layout[:63],
        }
    return {
        'gpu_model': products[0] if products else '',
        'resources': resources,
        'mig_layout': layout,
        'labels': labels,
    }


def _uses_gpu(container):
    resources = (container or {}).get('resources') or {}
    names = list((resources.get('limits') or {}).keys()) + list((resources.get('requests') or {}).keys())
    return any(n == 'nvidia.com/gpu' or n.startswith('nvidia.com/mig-') for n in names)


def kubernetes_gpu_pods(pods):
    """The running pods of a ``kubectl get pods -o json`` list that use GPUs or MIG devices, DaemonSets' excepted."""
    if not isinstance(pods, (list, tuple)):
        raise AnsibleFilterError('kubernetes_gpu_pods: expected the items of a pod list, got %r' % (pods,))
    result = []
    for pod in pods:
        owners = (pod.get('metadata') or {}).get('ownerReferences') or []
        if any(o.get('kind') == 'DaemonSet' for o in owners):
            continue
        if ((pod.get('status') or {}).get('phase')) in ('Succeeded', 'Failed'):
            continue
        spec = pod.get('spec') or {}
        if any(_uses_gpu(c) for c in (spec.get('containers') or []) + (spec.get('initContainers') or [])):
            result.append(pod)
    return result


def kubernetes_name(name):
    """A community's name as Kubernetes objects carry it (namespaces, queues, volumes)."""
    return community_name(name)


class FilterModule(object):
    def filters(self):
        return {'kubernetes_node': kubernetes_node, 'kubernetes_gpu_pods': kubernetes_gpu_pods, 'kubernetes_name': kubernetes_name}

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kueue (v0.19, API kueue.x-k8s.io/v1beta2) queues from the platform's communities and nodes.

The rules, in one place (the filter ``kueue_objects`` and the role's
README follow them):

* Flavors: one ResourceFlavor per GPU model (``gpu-<model, lower case>``,
  node label ``nvidia.com/gpu.product=<model>``, as GPU feature discovery
  sets it) covering that model's nodes: their ``cpu``, ``memory``,
  ``nvidia.com/gpu`` and MIG resources (``nvidia.com/mig-1g.10gb``, ...),
  and one flavor (``cpu``) for the CPU-only nodes.  Every ClusterQueue has
  a single resource group that covers all resources, CPU flavor first, then
  the GPU flavors by name: a pod's CPU, memory and GPUs are counted on the
  flavor of the nodes it lands on, and a pod that asks for GPUs skips the
  CPU flavor (it has no GPU quota anywhere).
* Capacity: the sum over the nodes of each flavor, per resource (memory in
  MiB).  The notebooks' reserve is taken first (``fraction`` of every
  flavor and resource, rounded half up, or explicit counts); the rest is
  the batch capacity, split down the community tree.
* Split (largest remainder at each level of the tree): the children of a
  node get floor(quota * share), the units left over go one each to the
  largest remainders, ties to the name that sorts first; the part no child
  owns (1 - sum of the children's shares) goes to the parent community's own
  ClusterQueue, at the top to the root Cohort (shared, owned by nobody) and
  loses ties.  Each quota is within 1 unit per level of its exact share; the
  quotas of all ClusterQueues and of the root Cohort add up exactly to the
  inventory.  A community without share gets 0 and borrows.
* Tree: a root Cohort; a community with children becomes a Cohort of the
  same name (in its parent's Cohort) that holds its children and its own
  ClusterQueue; a community without children is a ClusterQueue in its
  parent's Cohort.  ``accept_surplus: false`` is ``borrowingLimit: 0``
  (on the ClusterQueue and on the community's Cohort); the priority factor
  is the fair-sharing weight 1000 / priority_factor.
* Notebooks: a ClusterQueue in the root Cohort with the reserve as nominal
  quota, ``borrowingLimit: 0`` (it never borrows, so no reclaim can preempt
  a notebook), ``lendingLimit`` = the part of the reserve batch may use
  while it is idle (``lend``, default all of it) and
  ``reclaimWithinCohort: Any`` (a notebook takes lent capacity back by
  preempting the batch workloads that use it).  Batch ClusterQueues reclaim
  their own nominal quota the same way (``reclaimWithinCohort: Any``), and
  preempt lower priorities in their own queue (``withinClusterQueue:
  LowerPriority``).

Pure Python, standard library only; errors are :class:`KueueError` naming
the input.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math
import re
from fractions import Fraction

from ansible_collections.fedgpu.platform.plugins.module_utils.k8s_names import (
    DNS_LABEL, DNS_SUBDOMAIN, LABEL_KEY, LABEL_VALUE, community_name)
from ansible_collections.fedgpu.platform.plugins.module_utils.fairshare import (
    FairShareError, apportion, communities, exact)

API_VERSION = 'kueue.x-k8s.io/v1beta2'
GPU_PRODUCT_LABEL = 'nvidia.com/gpu.product'
COMMUNITY_LABEL = 'fedgpu.platform/community'
NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name'
GPU = 'nvidia.com/gpu'
DEFAULT_PRIORITIES = {'interactive': 10000, 'batch': 1000, 'batch-low': 100}
MAX_ITEMS = 64  # flavors per resource group and resources per flavor (CRD maxItems)

GPU_RESOURCE = re.compile(r'^nvidia\.com/(gpu|mig-([0-9]+c\.)?[0-9]+g\.[0-9]+gb(\.me)?)$')


class KueueError(ValueError):
    """Inputs that cannot become Kueue objects; the message names the culprit."""


def _count(value, where):
    """A whole number >= 0 (an int, or a string of digits)."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise KueueError('%s must be a whole number >= 0, got %r' % (where, value))
    return value


def _fraction(value, where):
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if not 0.0 <= number <= 1.0:
        raise KueueError('%s must be a fraction between 0 and 1, got %r' % (where, value))
    return exact(number)


def _dns(name, where, label=False):
    pattern = DNS_LABEL if label else DNS_SUBDOMAIN
    if not isinstance(name, str) or not pattern.match(name) or len(name) > (63 if label else 253):
        raise KueueError('%s: %r is not a valid Kubernetes name (DNS-1123 %s)' % (where, name, 'label' if label else 'subdomain'))
    return name


def round_half_up(value):
    """The nearest whole number of a Fraction, halves up."""
    return int(math.floor(value + Fraction(1, 2)))


def flavor_name(gpu_model):
    """ResourceFlavor name of a GPU model: ``gpu-`` and the model in lower case, other characters as dashes."""
    return 'gpu-' + re.sub(r'[^a-z0-9]+', '-', gpu_model.lower()).strip('-')


def check_inventory(inventory, cpu_flavor='cpu', cpu_node_labels=None):
    """(resources, flavors): the covered resource names and [{name, gpu_model, node_labels, nodes, totals}], CPU flavor first."""
    if not isinstance(inventory, (list, tuple)):
        raise KueueError('inventory: expected a list of nodes, got %r' % (inventory,))
    if not inventory:
        raise KueueError('inventory: there are no nodes')
    _dns(cpu_flavor, 'cpu_flavor')
    labels = cpu_node_labels or {}
    if not isinstance(labels, dict) or len(labels) > 8:
        raise KueueError('cpu_node_labels must be a mapping of at most 8 node labels, got %r' % (cpu_node_labels,))
    for key, value in labels.items():
        if not LABEL_KEY.match(str(key)) or not (value == '' or LABEL_VALUE.match(str(value))):
            raise KueueError('cpu_node_labels: %r=%r is not a valid node label' % (key, value))
    flavors, names, models = {}, set(), {}
    for index, node in enumerate(inventory):
        if not isinstance(node, dict) or not node.get('name'):
            raise KueueError('inventory[%d]: every node needs a name, got %r' % (index, node))
        name = str(node['name'])
        where = 'inventory: node %r' % name
        if name in names:
            raise KueueError('%s is listed twice' % where)
        names.add(name)
        resources = node.get('resources') or {}
        if not isinstance(resources, dict):
            raise KueueError('%s: resources must be a mapping of resource names to counts, got %r' % (where, resources))
        counts = {'cpu': _count(node.get('cpu', 0), '%s: cpu' % where),
                  'memory': _count(node.get('memory_mib', 0), '%s: memory_mib' % where)}
        for resource, value in resources.items():
            if not isinstance(resource, str) or not GPU_RESOURCE.match(resource):
                raise KueueError('%s: %r is not a GPU resource name (nvidia.com/gpu or nvidia.com/mig-<N>g.<M>gb)' % (where, resource))
            counts[resource] = _count(value, '%s: resources[%r]' % (where, resource))
        model = node.get('gpu_model') or ''
        if not model:
            if any(counts.get(r) for r in resources):
                raise KueueError('%s has GPU resources but no gpu_model' % where)
            flavor = cpu_flavor
            if flavor not in flavors:
                flavors[flavor] = {'name': flavor, 'gpu_model': None, 'node_labels': dict((str(k), str(v)) for k, v in labels.items()),
                                   'nodes': [], 'totals': {}}
        else:
            if not isinstance(model, str) or not LABEL_VALUE.match(model):
                raise KueueError('%s: gpu_model %r is not a valid node label value' % (where, model))
            flavor = flavor_name(model)
            if flavor == cpu_flavor or models.setdefault(flavor, model) != model:
                raise KueueError('%s: gpu_model %r would be flavor %r, which is already %s'
                                 % (where, model, flavor, 'the CPU flavor' if flavor == cpu_flavor else 'GPU model %r' % models[flavor]))
            _dns(flavor, '%s: flavor of gpu_model %r' % (where, model))
            if flavor not in flavors:
                flavors[flavor] = {'name': flavor, 'gpu_model': model, 'node_labels': {GPU_PRODUCT_LABEL: model}, 'nodes': [], 'totals': {}}
        flavors[flavor]['nodes'].append(name)
        for resource, value in counts.items():
            flavors[flavor]['totals'][resource] = flavors[flavor]['totals'].get(resource, 0) + value
    gpu_resources = sorted(set(r for f in flavors.values() for r in f['totals'] if r not in ('cpu', 'memory')), key=lambda r: (r != GPU, r))
    resources = ['cpu', 'memory'] + gpu_resources
    if len(resources) > MAX_ITEMS or len(flavors) > MAX_ITEMS:
        raise KueueError('inventory: %d resources and %d flavors, Kueue takes at most %d of each' % (len(resources), len(flavors), MAX_ITEMS))
    ordered = sorted(flavors.values(), key=lambda f: (f['gpu_model'] is not None, f['name']))
    for flavor in ordered:
        flavor['totals'] = dict((r, flavor['totals'].get(r, 0)) for r in resources)
    return resources, ordered


def check_notebooks(notebooks, resources, flavors):
    """None, or {nominal, lending}: {flavor: {resource: count}} each."""
    if notebooks is None:
        return None
    if not isinstance(notebooks, dict):
        raise KueueError('notebooks must be a mapping (fraction, resources, lend), got %r' % (notebooks,))
    unknown = sorted(set(notebooks) - set(['fraction', 'resources', 'lend']))
    if unknown:
        raise KueueError('notebooks: unknown keys %s (fraction, resources, lend)' % unknown)
    fraction = _fraction(notebooks.get('fraction', 0), 'notebooks.fraction')
    lend = _fraction(notebooks.get('lend', 1), 'notebooks.lend')
    nominal = dict((f['name'], dict((r, round_half_up(fraction * f['totals'][r])) for r in resources)) for f in flavors)
    explicit = notebooks.get('resources') or {}
    if not isinstance(explicit, dict):
        raise KueueError('notebooks.resources must be a mapping of GPU models (or flavors) to resource counts, got %r' % (explicit,))
    by_key = {}
    for f in flavors:
        by_key[f['name']] = f
        if f['gpu_model']:
            by_key[f['gpu_model']] = f
    for key, counts in explicit.items():
        if key not in by_key:
            raise KueueError('notebooks.resources: %r is neither a GPU model of the inventory nor a flavor (%s)'
                             % (key, ', '.join(sorted(by_key))))
        flavor = by_key[key]
        if not isinstance(counts, dict):
            raise KueueError('notebooks.resources[%r] must be a mapping of resource names to counts, got %r' % (key, counts))
        for resource, value in counts.items():
            where = 'notebooks.resources[%r][%r]' % (key, resource)
            if resource not in resources:
                raise KueueError('%s: no node of the inventory has %r' % (where, resource))
            value = _count(value, where)
            if value > flavor['totals'][resource]:
                raise KueueError('%s: %d is more than the %d of the inventory' % (where, value, flavor['totals'][resource]))
            nominal[flavor['name']][resource] = value
    lending = dict((f, dict((r, int(math.floor(lend * n))) for r, n in q.items())) for f, q in nominal.items())
    return {'nominal': nominal, 'lending': lending}


def _weight(priority_factor):
    """Fair-sharing weight 1000 / priority_factor as a quantity (at least 1m)."""
    milli = max(1, round_half_up(Fraction(1000 * 1000) / exact(priority_factor)))
    return str(milli // 1000) if milli % 1000 == 0 else '%dm' % milli


def plan(inventory, groups, notebooks=None, prefix='', namespace_prefix='community-', notebook_namespace='jupyterhub',
         root_cohort='platform', cpu_flavor='cpu', cpu_node_labels=None, local_queue='default', notebook_queue='notebooks'):
    """The quotas and names, before they become objects (see the module's docstring for the rules).

    {resources, flavors, notebooks (None or {cluster_queue, namespace, local_queue, nominal, lending}),
    batch: {flavor: {resource: count}}, root: {cohort, quota, target},
    communities: [{name, cluster_queue, cohort (it is a member of), own_cohort (None or its Cohort), namespace,
    local_queue, depth, share, target, own_target, subtree, quota, accept_surplus, priority_factor, weight}]}
    with quotas as {flavor: {resource: count}} (memory in MiB); targets are Fractions.
    """
    resources, flavors = check_inventory(inventory, cpu_flavor, cpu_node_labels)
    try:
        checked = communities(groups)
    except FairShareError as e:
        raise KueueError('groups: %s' % e)
    reserve = check_notebooks(notebooks, resources, flavors)
    _dns(root_cohort, 'root_cohort')
    _dns(local_queue, 'local_queue')
    if not isinstance(prefix, str) or not isinstance(namespace_prefix, str):
        raise KueueError('prefix and namespace_prefix must be strings')
    keys = [(f['name'], r) for f in flavors for r in resources]
    batch = {}
    for f in flavors:
        batch[f['name']] = dict((r, f['totals'][r] - (reserve['nominal'][f['name']][r] if reserve else 0)) for r in resources)

    by_name = dict((c['name'], c) for c in checked)
    subtree = dict((c['name'], {}) for c in checked)
    own = dict((c['name'], {}) for c in checked)
    root_quota = dict((f['name'], {}) for f in flavors)
    tops = [c['name'] for c in checked if not c['parent']]

    def split(quota, children):
        shares = dict(((0, n), by_name[n]['share'] or Fraction(0)) for n in children)
        shares[(1, '')] = 1 - sum(shares.values(), Fraction(0))
        parts = apportion(quota, shares)
        return dict((n, parts[(0, n)]) for n in children), parts[(1, '')]

    for flavor, resource in keys:
        parts, rest = split(batch[flavor][resource], tops)
        root_quota[flavor][resource] = rest
        for name, value in parts.items():
            subtree[name].setdefault(flavor, {})[resource] = value
        for c in checked:  # parents before children
            value = subtree[c['name']][flavor][resource]
            if c['children']:
                parts, rest = split(value, c['children'])
                for name, part in parts.items():
                    subtree[name].setdefault(flavor, {})[resource] = part
                own[c['name']].setdefault(flavor, {})[resource] = rest
            else:
                own[c['name']].setdefault(flavor, {})[resource] = value

    cq_names, cohort_names, namespaces = {}, {root_cohort: 'the root cohort'}, {}
    nb = None
    if reserve is not None:
        nb_queue = _dns(prefix + notebook_queue, 'notebook ClusterQueue name')
        _dns(notebook_queue, 'notebook_queue', label=False)
        cq_names[nb_queue] = 'the notebooks'
        namespaces[_dns(notebook_namespace, 'notebook_namespace', label=True)] = 'the notebooks'
        nb = {'cluster_queue': nb_queue, 'namespace': notebook_namespace, 'local_queue': notebook_queue,
              'nominal': reserve['nominal'], 'lending': reserve['lending']}
    out = []
    for c in checked:
        k8s = community_name(c['name'])
        where = 'groups: community %r' % c['name']
        queue = _dns(prefix + k8s, '%s: ClusterQueue name' % where)
        namespace = _dns(namespace_prefix + k8s, '%s: namespace' % where, label=True)
        for names, value, what in ((cq_names, queue, 'ClusterQueue'), (namespaces, namespace, 'namespace')):
            if value in names:
                raise KueueError('%s: its %s %r is already that of %s' % (where, what, value, names[value]))
            names[value] = 'community %r' % c['name']
        own_cohort = None
        if c['children']:
            own_cohort = queue
            if own_cohort in cohort_names:
                raise KueueError('%s: its Cohort %r is already %s' % (where, own_cohort, cohort_names[own_cohort]))
            cohort_names[own_cohort] = 'community %r' % c['name']
        rest = 1 - sum((by_name[n]['share'] or 0 for n in c['children']), Fraction(0))
        out.append({
            'name': c['name'], 'cluster_queue': queue, 'own_cohort': own_cohort,
            'cohort': (prefix + community_name(c['parent'])) if c['parent'] else root_cohort,
            'namespace': namespace, 'local_queue': local_queue, 'depth': c['depth'], 'share': c['share'],
            'target': c['target'], 'own_target': c['target'] * rest, 'subtree': subtree[c['name']], 'quota': own[c['name']],
            'accept_surplus': c['accept_surplus'], 'priority_factor': c['priority_factor'], 'weight': _weight(c['priority_factor'])})
    root_target = 1 - sum((by_name[n]['share'] or 0 for n in tops), Fraction(0))
    return {'resources': resources, 'flavors': flavors, 'notebooks': nb, 'batch': batch,
            'root': {'cohort': root_cohort, 'quota': root_quota, 'target': root_target}, 'communities': out}


def quantity(resource, count):
    """A quota as Kueue wants it: memory in Mi, everything else a whole number."""
    return '%dMi' % count if resource == 'memory' else count


def _groups(resources, flavors, nominal, lending=None, borrowing=None):
    """The single resource group of a ClusterQueue or Cohort."""
    group = {'coveredResources': list(resources), 'flavors': []}
    for f in flavors:
        items = []
        for r in resources:
            item = {'name': r, 'nominalQuota': quantity(r, nominal[f['name']][r])}
            if borrowing is not None:
                item['borrowingLimit'] = quantity(r, borrowing)
            if lending is not None:
                item['lendingLimit'] = quantity(r, lending[f['name']][r])
            items.append(item)
        group['flavors'].append({'name': f['name'], 'resources': items})
    return [group]


def _obj(kind, name, spec=None, namespace=None, **top):
    meta = {'name': name, 'labels': {'app.kubernetes.io/managed-by': 'fedgpu.platform'}}
    if namespace:
        meta['namespace'] = namespace
    obj = {'apiVersion': API_VERSION, 'kind': kind, 'metadata': meta}
    if spec is not None:
        obj['spec'] = spec
    obj.update(top)
    return obj


def objects(inventory, groups, notebooks=None, prefix='', namespace_prefix='community-', notebook_namespace='jupyterhub',
            root_cohort='platform', cpu_flavor='cpu', cpu_node_labels=None, local_queue='default', notebook_queue='notebooks',
            priorities=None, match_namespaces=True):
    """The Kueue objects, in apply order: WorkloadPriorityClasses, ResourceFlavors, Cohorts, ClusterQueues, LocalQueues."""
    p = plan(inventory, groups, notebooks, prefix, namespace_prefix, notebook_namespace, root_cohort, cpu_flavor, cpu_node_labels,
             local_queue, notebook_queue)
    resources, flavors = p['resources'], p['flavors']
    if priorities is None:
        priorities = DEFAULT_PRIORITIES
    if not isinstance(priorities, dict):
        raise KueueError('priorities must be a mapping of priority class names to values, got %r' % (priorities,))
    for name, value in priorities.items():
        _dns(name, 'priorities')
        if isinstance(value, bool) or not isinstance(value, int) or not -2 ** 31 <= value < 2 ** 31:
            raise KueueError('priorities[%r] must be a 32-bit whole number, got %r' % (name, value))
    result = []
    for name, value in sorted(priorities.items(), key=lambda kv: (-kv[1], kv[0])):
        result.append(_obj('WorkloadPriorityClass', name, value=value,
                           description='fedgpu.platform priority %s (kueue.x-k8s.io/priority-class label)' % name))
    for f in flavors:
        spec = {'nodeLabels': dict(f['node_labels'])} if f['node_labels'] else {}
        result.append(_obj('ResourceFlavor', f['name'], spec))
    result.append(_obj('Cohort', root_cohort, {'resourceGroups': _groups(resources, flavors, p['root']['quota'])}))
    zero = dict((f['name'], dict((r, 0) for r in resources)) for f in flavors)
    for c in p['communities']:
        if c['own_cohort']:
            spec = {'parentName': c['cohort'], 'fairSharing': {'weight': c['weight']}}
            if not c['accept_surplus']:
                spec['resourceGroups'] = _groups(resources, flavors, zero, borrowing=0)
            result.append(_obj('Cohort', c['own_cohort'], spec))
    queues = []
    nb = p['notebooks']
    if nb:
        queues.append(_obj('ClusterQueue', nb['cluster_queue'], {
            'cohortName': root_cohort,
            'namespaceSelector': {'matchLabels': {NAMESPACE_NAME_LABEL: nb['namespace']}},
            'queueingStrategy': 'BestEffortFIFO',
            'preemption': {'reclaimWithinCohort': 'Any', 'withinClusterQueue': 'Never', 'borrowWithinCohort': {'policy': 'Never'}},
            'resourceGroups': _groups(resources, flavors, nb['nominal'], lending=nb['lending'], borrowing=0)}))
    for c in p['communities']:
        selector = {'matchLabels': {COMMUNITY_LABEL: c['name']}} if match_namespaces else {}
        queues.append(_obj('ClusterQueue', c['cluster_queue'], {
            'cohortName': c['own_cohort'] or c['cohort'],
            'namespaceSelector': selector,
            'queueingStrategy': 'BestEffortFIFO',
            'preemption': {'reclaimWithinCohort': 'Any', 'withinClusterQueue': 'LowerPriority', 'borrowWithinCohort': {'policy': 'Never'}},
            'fairSharing': {'weight': c['weight']},
            'resourceGroups': _groups(resources, flavors, c['quota'], borrowing=None if c['accept_surplus'] else 0)}))
    result.extend(queues)
    if nb:
        result.append(_obj('LocalQueue', nb['local_queue'], {'clusterQueue': nb['cluster_queue']}, namespace=nb['namespace']))
    for c in p['communities']:
        result.append(_obj('LocalQueue', c['local_queue'], {'clusterQueue': c['cluster_queue']}, namespace=c['namespace']))
    return result


def summary(inventory, groups, notebooks=None, **options):
    """The nominal quotas, {flavor: {resource: count}} each: {notebooks (None without), root (the root Cohort's), communities: {name: ...}}."""
    p = plan(inventory, groups, notebooks, **options)
    return {'notebooks': p['notebooks']['nominal'] if p['notebooks'] else None,
            'root': p['root']['quota'],
            'communities': dict((c['name'], c['quota']) for c in p['communities'])}

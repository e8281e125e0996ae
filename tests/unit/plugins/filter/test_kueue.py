# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kueue objects: the pinned v0.19.2 CRD schemas, quotas that add up to the inventory, notebooks that batch cannot starve."""
import copy
import os
import re
import sys
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ansible.errors import AnsibleFilterError
from ansible_collections.fedgpu.platform.plugins.filter.kueue import FilterModule, kueue_objects
from ansible_collections.fedgpu.platform.plugins.module_utils import kueue
from ansible_collections.fedgpu.platform.plugins.module_utils.fairshare import targets

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..', 'kubernetes'))
import manifests  # noqa: E402  pylint: disable=wrong-import-position

DNS_LABEL = re.compile(r'^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$')
DNS_SUBDOMAIN = re.compile(r'^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')

GROUPS = [{'name': 'physics', 'gid': 3100, 'share': 0.6}, {'name': 'cms', 'gid': 3101, 'parent': 'physics', 'share': 1.0},
          {'name': 'ml-infn', 'gid': 3200, 'share': 0.4, 'priority_factor': 2000}]
A100 = 'A100-SXM4-80GB'
FLAVOR = 'gpu-a100-sxm4-80gb'
NODES = [{'name': 'gpu1', 'gpu_model': A100, 'resources': {'nvidia.com/gpu': 2}, 'cpu': 64, 'memory_mib': 512000},
         {'name': 'gpu2', 'gpu_model': A100, 'resources': {'nvidia.com/mig-1g.10gb': 14}, 'cpu': 64, 'memory_mib': 512000}]


# ------------------------------------------------------------------ schemas ---
# The pinned CRDs' v1beta2 schemas, strict: the same validators as for what the role renders.
VALIDATORS = dict((kind, v) for (api, kind), v in manifests.crd_validators().items())


def _rules(obj):
    """The CRDs' CEL rules that these objects could break."""
    spec = obj.get('spec', {})
    for group in spec.get('resourceGroups', []):
        for flavor in group['flavors']:
            assert [r['name'] for r in flavor['resources']] == group['coveredResources']  # same resources, same order
            for r in flavor['resources']:
                if obj['kind'] == 'ClusterQueue' and 'cohortName' not in spec:
                    assert 'borrowingLimit' not in r
    if obj['kind'] == 'ClusterQueue':
        flavors = [f['name'] for g in spec['resourceGroups'] for f in g['flavors']]
        assert len(flavors) == len(set(flavors))
        preemption = spec.get('preemption', {})
        assert not (preemption.get('reclaimWithinCohort', 'Never') == 'Never'
                    and preemption.get('borrowWithinCohort', {}).get('policy', 'Never') != 'Never')


def check_schemas(objects):
    for obj in objects:
        assert obj['apiVersion'] == 'kueue.x-k8s.io/v1beta2'
        validator, scope = VALIDATORS[obj['kind']]
        errors = sorted(validator.iter_errors(obj), key=str)
        assert not errors, '%s %s: %s' % (obj['kind'], obj['metadata']['name'], errors[0])
        _rules(obj)
        name = obj['metadata']['name']
        assert DNS_SUBDOMAIN.match(name) and len(name) <= 253, name
        assert ('namespace' in obj['metadata']) == (scope == 'Namespaced')
        if 'namespace' in obj['metadata']:
            assert DNS_LABEL.match(obj['metadata']['namespace'])


def test_the_validator_can_fail():
    validator = VALIDATORS['ClusterQueue'][0]
    bad = {'apiVersion': 'kueue.x-k8s.io/v1beta2', 'kind': 'ClusterQueue', 'metadata': {'name': 'a'},
           'spec': {'cohort': 'platform', 'preemption': {'reclaimWithinCohort': 'Always'}}}
    assert len(list(validator.iter_errors(bad))) == 2  # v1beta1's field name, and an unknown policy


# ------------------------------------------------------------------ helpers ---
def qty(value):
    if isinstance(value, int):
        return value
    assert value.endswith('Mi'), value
    return int(value[:-2])


def by_kind(objects, kind):
    return dict((o['metadata']['name'], o) for o in objects if o['kind'] == kind)


def quotas(obj):
    """{(flavor, resource): {nominalQuota, lendingLimit, borrowingLimit}} of a ClusterQueue or Cohort."""
    out = {}
    for group in obj['spec'].get('resourceGroups', []):
        for f in group['flavors']:
            for r in f['resources']:
                out[(f['name'], r['name'])] = dict((k, qty(v)) for k, v in r.items() if k != 'name')
    return out


def totals(nodes):
    out = {}
    for node in nodes:
        flavor = kueue.flavor_name(node['gpu_model']) if node.get('gpu_model') else 'cpu'
        for resource, count in [('cpu', node.get('cpu', 0)), ('memory', node.get('memory_mib', 0))] + list(node.get('resources', {}).items()):
            out[(flavor, resource)] = out.get((flavor, resource), 0) + count
    return out


# ------------------------------------------------------------ worked example ---
def test_worked_example_from_docs_people():
    objects = kueue_objects(NODES, GROUPS, {'fraction': 0.25})
    check_schemas(objects)
    assert [(o['kind'], o['metadata'].get('namespace'), o['metadata']['name']) for o in objects] == [
        ('WorkloadPriorityClass', None, 'interactive'), ('WorkloadPriorityClass', None, 'batch'),
        ('WorkloadPriorityClass', None, 'batch-low'),
        ('ResourceFlavor', None, FLAVOR),
        ('Cohort', None, 'platform'), ('Cohort', None, 'physics'),
        ('ClusterQueue', None, 'notebooks'), ('ClusterQueue', None, 'ml-infn'), ('ClusterQueue', None, 'physics'),
        ('ClusterQueue', None, 'cms'),
        ('LocalQueue', 'jupyterhub', 'notebooks'), ('LocalQueue', 'community-ml-infn', 'default'),
        ('LocalQueue', 'community-physics', 'default'), ('LocalQueue', 'community-cms', 'default')]
    cqs, cohorts = by_kind(objects, 'ClusterQueue'), by_kind(objects, 'Cohort')
    assert by_kind(objects, 'ResourceFlavor')[FLAVOR]['spec'] == {'nodeLabels': {'nvidia.com/gpu.product': A100}}

    def nominal(obj):
        return dict((r, q['nominalQuota']) for (f, r), q in quotas(obj).items())
    # 4 GPUs' worth: 2 whole A100 and 14 x 1g.10gb; 128 cores, 1024000 MiB.  Notebooks: a quarter, halves up.
    assert nominal(cqs['notebooks']) == {'cpu': 32, 'memory': 256000, 'nvidia.com/gpu': 1, 'nvidia.com/mig-1g.10gb': 4}
    # Batch: 96 cores, 768000 MiB, 1 GPU, 10 slices; physics 0.6 (all to cms), ml-infn 0.4; the odd GPU to the larger remainder.
    assert nominal(cqs['cms']) == {'cpu': 58, 'memory': 460800, 'nvidia.com/gpu': 1, 'nvidia.com/mig-1g.10gb': 6}
    assert nominal(cqs['ml-infn']) == {'cpu': 38, 'memory': 307200, 'nvidia.com/gpu': 0, 'nvidia.com/mig-1g.10gb': 4}
    assert nominal(cqs['physics']) == {'cpu': 0, 'memory': 0, 'nvidia.com/gpu': 0, 'nvidia.com/mig-1g.10gb': 0}
    assert nominal(cohorts['platform']) == {'cpu': 0, 'memory': 0, 'nvidia.com/gpu': 0, 'nvidia.com/mig-1g.10gb': 0}
    assert cohorts['physics']['spec'] == {'parentName': 'platform', 'fairSharing': {'weight': '1'}}
    assert (cqs['cms']['spec']['cohortName'], cqs['physics']['spec']['cohortName'], cqs['ml-infn']['spec']['cohortName']) == \
        ('physics', 'physics', 'platform')
    assert cqs['ml-infn']['spec']['fairSharing'] == {'weight': '500m'}
    assert cqs['cms']['spec']['namespaceSelector'] == {'matchLabels': {'fedgpu.platform/community': 'cms'}}
    notebooks = cqs['notebooks']['spec']
    assert notebooks['namespaceSelector'] == {'matchLabels': {'kubernetes.io/metadata.name': 'jupyterhub'}}
    assert notebooks['preemption']['reclaimWithinCohort'] == 'Any'
    assert quotas(cqs['notebooks'])[(FLAVOR, 'nvidia.com/mig-1g.10gb')] == {'nominalQuota': 4, 'lendingLimit': 4, 'borrowingLimit': 0}
    assert kueue.summary(NODES, GROUPS, {'fraction': 0.25})['communities']['cms'][FLAVOR]['nvidia.com/gpu'] == 1


def test_options_and_explicit_reserve():
    nodes = NODES + [{'name': 'cpu1', 'cpu': 32, 'memory_mib': 128000}]
    objects = kueue_objects(nodes, GROUPS + [{'name': 'ml_lab', 'parent': 'ml-infn', 'accept_surplus': False}],
                            {'fraction': 0.5, 'lend': 0.5, 'resources': {A100: {'nvidia.com/gpu': 2}, 'cpu': {'cpu': 0}}},
                            prefix='q-', namespace_prefix='ns-', notebook_namespace='hub', root_cohort='all', cpu_flavor='cpu',
                            cpu_node_labels={'fedgpu.platform/node-kind': 'cpu'}, local_queue='batch', notebook_queue='nb',
                            priorities={'interactive': 5, 'batch': 1}, match_namespaces=False)
    check_schemas(objects)
    cqs = by_kind(objects, 'ClusterQueue')
    assert sorted(cqs) == ['q-cms', 'q-ml-infn', 'q-ml-lab', 'q-nb', 'q-physics']
    assert sorted(by_kind(objects, 'Cohort')) == ['all', 'q-ml-infn', 'q-physics']
    assert by_kind(objects, 'ResourceFlavor')['cpu']['spec'] == {'nodeLabels': {'fedgpu.platform/node-kind': 'cpu'}}
    nb = quotas(cqs['q-nb'])
    assert nb[(FLAVOR, 'nvidia.com/gpu')] == {'nominalQuota': 2, 'lendingLimit': 1, 'borrowingLimit': 0}
    assert nb[(FLAVOR, 'nvidia.com/mig-1g.10gb')] == {'nominalQuota': 7, 'lendingLimit': 3, 'borrowingLimit': 0}
    assert nb[('cpu', 'cpu')]['nominalQuota'] == 0 and nb[('cpu', 'memory')]['nominalQuota'] == 64000
    assert cqs['q-ml-infn']['spec']['resourceGroups'][0]['flavors'][0]['name'] == 'cpu'  # CPU flavor first
    assert all(q['borrowingLimit'] == 0 for q in quotas(cqs['q-ml-lab']).values())
    assert cqs['q-cms']['spec']['namespaceSelector'] == {}
    lqs = [(o['metadata']['namespace'], o['metadata']['name'], o['spec']['clusterQueue']) for o in objects if o['kind'] == 'LocalQueue']
    assert ('hub', 'nb', 'q-nb') in lqs and ('ns-ml-lab', 'batch', 'q-ml-lab') in lqs
    assert [o['value'] for o in objects if o['kind'] == 'WorkloadPriorityClass'] == [5, 1]


def test_no_notebooks_no_notebook_queue():
    objects = kueue_objects(NODES, GROUPS)
    assert 'notebooks' not in by_kind(objects, 'ClusterQueue')
    cqs = by_kind(objects, 'ClusterQueue')
    # All of it is batch: 2 GPUs -> 1.2 and 0.8, 14 slices -> 8.4 and 5.6: the larger remainders win.
    assert [quotas(cqs[q])[(FLAVOR, r)]['nominalQuota'] for q in ('cms', 'ml-infn') for r in ('nvidia.com/gpu', 'nvidia.com/mig-1g.10gb')] \
        == [1, 8, 1, 6]


@pytest.mark.parametrize('nodes, groups, notebooks, message', [
    ('gpu1', GROUPS, None, 'inventory: expected a list'),
    ([], GROUPS, None, 'inventory: there are no nodes'),
    ([{'cpu': 4}], GROUPS, None, 'inventory[0]: every node needs a name'),
    ([{'name': 'n', 'cpu': -1}], GROUPS, None, "node 'n': cpu must be a whole number >= 0"),
    ([{'name': 'n', 'cpu': 1.5}], GROUPS, None, "node 'n': cpu must be"),
    ([{'name': 'n', 'gpu_model': A100, 'resources': {'nvidia.com/gpu': -2}}], GROUPS, None, "node 'n': resources['nvidia.com/gpu']"),
    ([{'name': 'n', 'gpu_model': A100, 'resources': {'amd.com/gpu': 1}}], GROUPS, None, "node 'n': 'amd.com/gpu' is not a GPU resource"),
    ([{'name': 'n', 'gpu_model': A100, 'resources': {'nvidia.com/mig-1g.10gb+me': 1}}], GROUPS, None, 'not a GPU resource'),
    ([{'name': 'n', 'resources': {'nvidia.com/gpu': 1}}], GROUPS, None, "node 'n' has GPU resources but no gpu_model"),
    ([{'name': 'n', 'gpu_model': 'A100 SXM4'}], GROUPS, None, "gpu_model 'A100 SXM4' is not a valid node label value"),
    ([{'name': 'n', 'gpu_model': 'a100'}, {'name': 'm', 'gpu_model': 'A100'}], GROUPS, None, "which is already GPU model 'a100'"),
    ([{'name': 'n'}, {'name': 'n'}], GROUPS, None, "node 'n' is listed twice"),
    (NODES, [{'name': 'a', 'share': 0.7}, {'name': 'b', 'share': 0.4}], None, 'groups: the shares of the top-level communities'),
    (NODES, [{'name': 'a', 'share': 1.2}], None, "groups: share of 'a'"),
    (NODES, [{'name': 'a-'}], None, "community 'a-': ClusterQueue name: 'a-' is not a valid Kubernetes name"),
    (NODES, [{'name': 'a_b'}, {'name': 'a-b'}], None, "community 'a_b': its ClusterQueue 'a-b' is already that of community 'a-b'"),
    (NODES, [{'name': 'notebooks'}], {}, "community 'notebooks': its ClusterQueue 'notebooks' is already that of the notebooks"),
    (NODES, [{'name': 'platform'}, {'name': 'x', 'parent': 'platform'}], None, "its Cohort 'platform' is already the root cohort"),
    (NODES, GROUPS, {'fraction': 1.5}, 'notebooks.fraction must be a fraction between 0 and 1'),
    (NODES, GROUPS, {'fraction': -0.1}, 'notebooks.fraction must be'),
    (NODES, GROUPS, {'lend': 2}, 'notebooks.lend must be'),
    (NODES, GROUPS, {'share': 0.2}, "notebooks: unknown keys ['share']"),
    (NODES, GROUPS, 0.25, 'notebooks must be a mapping'),
    (NODES, GROUPS, {'resources': {'H100': {'nvidia.com/gpu': 1}}}, "notebooks.resources: 'H100' is neither a GPU model"),
    (NODES, GROUPS, {'resources': {A100: {'nvidia.com/gpu': 3}}}, "notebooks.resources['A100-SXM4-80GB']['nvidia.com/gpu']: 3 is more"),
    (NODES, GROUPS, {'resources': {A100: {'nvidia.com/mig-2g.20gb': 1}}}, "no node of the inventory has 'nvidia.com/mig-2g.20gb'"),
    (NODES, GROUPS, {'resources': {FLAVOR: {'cpu': -1}}}, "notebooks.resources['gpu-a100-sxm4-80gb']['cpu'] must be a whole number"),
])
def test_bad_input_is_named(nodes, groups, notebooks, message):
    with pytest.raises(AnsibleFilterError) as err:
        kueue_objects(nodes, groups, notebooks)
    assert str(err.value).startswith('kueue_objects: ') and message in str(err.value), str(err.value)


@pytest.mark.parametrize('options, message', [
    ({'priorities': {'batch': 'high'}}, "priorities['batch'] must be a 32-bit whole number"),
    ({'priorities': {'Batch': 1}}, "priorities: 'Batch' is not a valid Kubernetes name"),
    ({'root_cohort': 'All'}, "root_cohort: 'All'"),
    ({'cpu_node_labels': {'bad key!': 'x'}}, 'cpu_node_labels'),
    ({'notebook_namespace': 'community-cms'}, "its namespace 'community-cms' is already that of the notebooks"),
])
def test_bad_options_are_named(options, message):
    with pytest.raises(AnsibleFilterError) as err:
        kueue_objects(NODES, GROUPS, {'fraction': 0.1}, **options)
    assert message in str(err.value), str(err.value)


def test_registered():
    assert FilterModule().filters() == {'kueue_objects': kueue_objects}


# -------------------------------------------------------- generated platforms ---
MODELS = {'A100-SXM4-80GB': ['nvidia.com/mig-1g.10gb', 'nvidia.com/mig-3g.40gb', 'nvidia.com/mig-7g.80gb'],
          'H100-80GB-HBM3': ['nvidia.com/mig-1g.10gb', 'nvidia.com/mig-2g.20gb'],
          'Tesla-V100-SXM2-16GB': []}
NAMES = ['physics', 'cms', 'atlas', 'ml-infn', 'bio_lab', 'chem', 'astro', 'hep-th']


@st.composite
def platforms(draw):
    n = draw(st.integers(1, len(NAMES)))
    names = draw(st.permutations(NAMES))[:n]
    parents = [None] + [draw(st.one_of(st.none(), st.sampled_from(names[:i]))) for i in range(1, n)]
    groups = [{'name': name, 'priority_factor': draw(st.sampled_from([1, 1000, 3000])), 'accept_surplus': draw(st.booleans())}
              for name in names]
    for parent in set(parents):
        siblings = [g for g, p in zip(groups, parents) if p == parent]
        budget = 20
        for g in siblings:
            if draw(st.booleans()) or budget == 0:
                k = draw(st.integers(0, budget))
                budget -= k
                g['share'] = k / 20.0
    for g, p in zip(groups, parents):
        if p:
            g['parent'] = p
    nodes = []
    for i in range(draw(st.integers(1, 6))):
        node = {'name': 'node%d' % i, 'cpu': draw(st.integers(0, 256)), 'memory_mib': draw(st.integers(0, 2 ** 21))}
        model = draw(st.sampled_from(sorted(MODELS) + [None]))
        if model:
            node['gpu_model'] = model
            node['resources'] = {'nvidia.com/gpu': draw(st.integers(0, 8))}
            for mig in MODELS[model]:
                if draw(st.booleans()):
                    node['resources'][mig] = draw(st.integers(0, 56))
        nodes.append(node)
    notebooks = draw(st.one_of(st.none(), st.fixed_dictionaries({'fraction': st.sampled_from([0, 0.1, 0.25, 0.5, 1.0])},
                                                                optional={'lend': st.sampled_from([0, 0.5, 1])})))
    return draw(st.permutations(groups)), nodes, notebooks


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(platform=platforms())
def test_generated_platforms(platform):
    groups, nodes, notebooks = platform
    objects = kueue_objects(copy.deepcopy(nodes), copy.deepcopy(groups), copy.deepcopy(notebooks))
    check_schemas(objects)
    cqs, cohorts, flavors = by_kind(objects, 'ClusterQueue'), by_kind(objects, 'Cohort'), by_kind(objects, 'ResourceFlavor')
    inventory = totals(nodes)

    # References: cohorts, parents, flavors, LocalQueues.
    for cq in cqs.values():
        assert cq['spec']['cohortName'] in cohorts
        assert all(f['name'] in flavors for g in cq['spec']['resourceGroups'] for f in g['flavors'])
    for cohort in cohorts.values():
        assert cohort['spec'].get('parentName', 'platform') in cohorts
    assert [c for c in cohorts.values() if 'parentName' not in c['spec']] == [cohorts['platform']]
    lqs = [o for o in objects if o['kind'] == 'LocalQueue']
    assert all(lq['spec']['clusterQueue'] in cqs for lq in lqs)
    assert len(lqs) == len(cqs)

    # Every quota of every flavor and resource adds up exactly to the inventory; none negative.
    summed = {}
    for obj in list(cqs.values()) + [cohorts['platform']]:
        for key, q in quotas(obj).items():
            assert all(v >= 0 for v in q.values()), (obj['metadata']['name'], key, q)
            summed[key] = summed.get(key, 0) + q['nominalQuota']
    assert summed == dict((k, inventory.get(k, 0)) for k in summed)
    assert all(summed.get(k) == v for k, v in inventory.items())
    for cohort in cohorts.values():
        if cohort['metadata']['name'] != 'platform':
            assert all(q['nominalQuota'] == 0 for q in quotas(cohort).values())

    # The notebooks' reserve: never borrows, lends at most what it has, reclaims what it lent.
    reserve = {}
    if notebooks is None:
        assert 'notebooks' not in cqs
    else:
        spec = cqs['notebooks']['spec']
        assert spec['preemption']['reclaimWithinCohort'] == 'Any' and spec['cohortName'] == 'platform'
        for key, q in quotas(cqs['notebooks']).items():
            assert q['borrowingLimit'] == 0 and 0 <= q['lendingLimit'] <= q['nominalQuota']
            assert q['nominalQuota'] == int(Fraction(str(notebooks['fraction'])) * inventory.get(key, 0) + Fraction(1, 2))
            reserve[key] = q['nominalQuota']

    # Each community: within 1 unit per level of its exact share of the batch capacity (independent float targets).
    exact = dict((t['name'], t) for t in targets(groups))
    by_name = dict((g['name'], g) for g in groups)
    children = dict((g['name'], [c['name'] for c in groups if c.get('parent') == g['name']]) for g in groups)

    def subtree(name):
        return [name] + [n for c in children[name] for n in subtree(c)]
    for name, t in exact.items():
        cq = cqs[name.replace('_', '-')]
        spec = cq['spec']
        assert spec['preemption'] == {'reclaimWithinCohort': 'Any', 'withinClusterQueue': 'LowerPriority', 'borrowWithinCohort': {'policy': 'Never'}}
        assert spec['cohortName'] == (name.replace('_', '-') if children[name] else (by_name[name].get('parent') or 'platform').replace('_', '-'))
        assert spec['namespaceSelector'] == {'matchLabels': {'fedgpu.platform/community': name}}
        own_rest = 1 - sum(by_name[c].get('share') or 0 for c in children[name])
        for key, total in inventory.items():
            batch = total - reserve.get(key, 0)
            mine = sum(quotas(cqs[n.replace('_', '-')])[key]['nominalQuota'] for n in subtree(name))
            assert abs(mine - t['target'] * batch) < t['depth'] + 1e-6, (name, key, mine, t['target'] * batch)
            own = quotas(cq)[key]
            assert abs(own['nominalQuota'] - t['target'] * own_rest * batch) < t['depth'] + 1 + 1e-6
            if t['target'] == 0:
                assert mine == 0
            assert ('borrowingLimit' in own) == (not t['accept_surplus']) and own.get('borrowingLimit', 0) == 0

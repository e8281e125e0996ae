# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""module_utils.platform_layout: groups and derived host values from provisioned nodes."""
import os
import random

import pytest
import yaml

from ansible_collections.fedgpu.platform.plugins.module_utils.platform_layout import LayoutError, check_group_map, layout

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..', '..'))
MAP = {'frontend': ['platform', 'frontend'], 'db': ['platform', 'db', 'db_data'], 'db2': ['platform', 'db', 'db_data'],
       'dbw': ['platform', 'db', 'db_witness'], 'gpu': ['platform', 'workers', 'gpu_workers']}


def nodes(**counts):
    return [{'host': 'c-%s-%d' % (group, i), 'group': group, 'index': i} for group, n in counts.items() for i in range(1, n + 1)]


def test_groups_follow_the_table_in_its_order():
    groups = layout(nodes(gpu=2, frontend=1, cpu=1), MAP)[0]
    assert groups == {'platform': ['c-frontend-1', 'c-gpu-1', 'c-gpu-2'], 'frontend': ['c-frontend-1'],
                      'workers': ['c-gpu-1', 'c-gpu-2'], 'gpu_workers': ['c-gpu-1', 'c-gpu-2']}


def test_repmgr_ids_are_stable_when_groups_grow_and_never_collide():
    before = layout(nodes(db=2, db2=1, dbw=1), MAP)[1]
    after = layout(nodes(db=3, db2=2, dbw=2), MAP)[1]
    for host, values in before.items():
        assert after[host]['repmgr_node_id'] == values['repmgr_node_id'], host
    ids = [v['repmgr_node_id'] for v in after.values()]
    assert len(ids) == len(set(ids)) and all(i > 0 for i in ids)
    assert after['c-db-1'] == {'repmgr_node_id': 1, 'repmgr_role': 'primary', 'repmgr_priority': 100}
    assert after['c-db-3'] == {'repmgr_node_id': 3, 'repmgr_role': 'standby', 'repmgr_priority': 80}
    assert after['c-db2-1']['repmgr_node_id'] == 101 and after['c-db2-1']['repmgr_role'] == 'standby'
    assert after['c-dbw-2'] == {'repmgr_node_id': 1002, 'repmgr_role': 'witness'}


@pytest.mark.parametrize('seed', range(20))
def test_one_primary_whatever_the_order_of_the_nodes(seed):
    rng = random.Random(seed)
    some = nodes(db=rng.randint(1, 5), db2=rng.randint(0, 3), dbw=rng.randint(0, 2), gpu=rng.randint(0, 3))
    rng.shuffle(some)
    groups, values = layout(some, MAP)
    assert [h for h, v in values.items() if v['repmgr_role'] == 'primary'] == ['c-db-1']
    assert sorted(values) == sorted(groups.get('db_data', []) + groups.get('db_witness', []))
    assert layout(list(reversed(some)), MAP) == (groups, values)


def test_nodes_without_an_index_cannot_be_database_nodes():
    with pytest.raises(LayoutError, match='node x of node group db has index None'):
        layout([{'host': 'x', 'group': 'db', 'index': None}], MAP)
    # Elsewhere an index does not matter.
    assert layout([{'host': 'x', 'group': 'gpu', 'index': None}], MAP)[0]['workers'] == ['x']


@pytest.mark.parametrize('group_map, message', [
    (['gpu'], 'group_map must be a mapping'),
    ({'gpu': 'workers'}, 'group_map.gpu must be a list'),
    ({'gpu': ['gpu-workers']}, "group_map.gpu: 'gpu-workers' is not a valid group name"),
    ({'db': ['db_data', 'db_witness']}, 'group_map.db: a node group cannot be both db_data and db_witness'),
])
def test_bad_tables_are_refused_naming_the_entry(group_map, message):
    with pytest.raises(LayoutError, match=message):
        check_group_map(group_map)


def playbook_groups():
    """Every group named in a hosts: pattern of the collection's playbooks."""
    found = set()
    for name in os.listdir(os.path.join(ROOT, 'playbooks')):
        with open(os.path.join(ROOT, 'playbooks', name)) as f:
            for play in yaml.safe_load(f) or []:
                for part in str(play.get('hosts', '')).replace(',', ':').split(':'):
                    part = part.lstrip('!&')
                    if part and '{' not in part and part not in ('all', 'localhost'):
                        found.add(part)
    return found


def test_the_openstack_inventory_table_covers_the_node_groups_and_names_only_playbook_groups():
    with open(os.path.join(ROOT, 'inventories', 'openstack', 'fedgpu.openstack_federation.yml')) as f:
        table = check_group_map(yaml.safe_load(f)['group_map'])
    with open(os.path.join(ROOT, 'inventories', 'openstack', 'group_vars', 'all', 'cluster.yml')) as f:
        node_groups = [g['name'] for g in yaml.safe_load(f)['fedgpu_node_groups']]
    assert set(node_groups) <= set(table), 'node groups of cluster.yml that the table does not map'
    targets = {g for groups in table.values() for g in groups}
    # Groups the playbooks, the layout or the inventory's group_vars read; platform and workers are the
    # conventional groups of every node and of the execute nodes (as in inventories/local).
    group_vars = {os.path.splitext(n)[0] for n in os.listdir(os.path.join(ROOT, 'inventories', 'openstack', 'group_vars'))}
    assert targets - playbook_groups() - group_vars - {'platform', 'workers', 'db_data', 'db_witness'} == set()
    # Every group a playbook applies to is reachable from some node group, but the local platform's and the
    # Kubernetes overlay's (playbooks/kubernetes*.yml: an inventory opts in by making k8s_control_plane and
    # k8s_workers, e.g. with the plugin's `groups` option; site.yml does not run it).
    assert playbook_groups() - targets - {'local_nodes', 'oidc_test_provider', 'local_services', 'alert_test_receiver',
                                          'k8s_control_plane', 'k8s_workers'} == set()

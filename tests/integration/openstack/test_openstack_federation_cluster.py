# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""fedgpu.platform.openstack_federation_cluster against two real OpenStack sites."""
import pytest

from osenv import IMAGE, SITE_A, SITE_B, cluster_servers, run_cluster, tagged

PUBKEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHk0Hq1oM3bSmsyJ3mGx2i8Q0cJ0h6c3nF0vG8pIbK0n fedgpu-test'


def groups(cpu=2, gpu=2):
    return [
        {'name': 'frontend', 'flavor': 'm1.small', 'image': IMAGE, 'site': SITE_A},
        {'name': 'gpu', 'count': gpu, 'gpus': 1, 'gpu_model': 'A100', 'image': IMAGE, 'sites': [SITE_B, SITE_A]},
        {'name': 'cpu', 'count': cpu, 'vcpus': 2, 'ram': 2048, 'image': IMAGE},
    ]


def ok(result):
    assert not result.get('failed'), result.get('msg')
    return result


def test_bad_input_fails_before_anything_is_created(sites, conns):
    cases = [
        ({'clouds': [{'name': SITE_A}, {'name': 'nowhere'}], 'groups': [{'name': 'fe', 'flavor': 'm1.tiny', 'image': IMAGE}]},
         "unknown cloud 'nowhere'"),
        ({'groups': [{'name': 'big', 'gpus': 8, 'image': IMAGE}]}, "group 'big': no site can host it"),
        ({'groups': [{'name': 'fe', 'flavor': 'no-such-flavor', 'image': IMAGE}]}, "flavor 'no-such-flavor' not found"),
        ({'groups': [{'name': 'fe', 'flavor': 'm1.tiny', 'image': 'no-such-image'}]}, "image 'no-such-image' not found"),
        ({'groups': [{'name': 'fe', 'flavor': 'm1.tiny', 'image': IMAGE, 'site': 'site-z'}]}, "unknown site 'site-z'"),
        ({'groups': [{'name': 'fe', 'flavor': 'm1.tiny', 'vcpus': 2, 'image': IMAGE}]}, 'parameters are mutually exclusive: flavor|vcpus'),
        ({'groups': [{'name': 'fe', 'flavor': 'm1.tiny', 'image': IMAGE, 'volume_size': 10}]}, 'no block-storage service'),
        ({'groups': [{'name': 'many', 'count': 500, 'flavor': 'm1.tiny', 'image': IMAGE}]}, 'not enough quota'),
    ]
    for args, expected in cases:
        args = dict(args, name='bad', ssh_public_key=PUBKEY)
        result = run_cluster(args)
        assert result.get('failed'), (args, result)
        assert expected in result['msg'], (expected, result['msg'])
        # A failure of the argument spec has no 'changed' (Ansible reports it as false).
        assert result.get('changed', False) is False
    assert cluster_servers(conns, 'bad') == {}
    assert tagged(conns, 'bad') == {}


def test_provision_rerun_scale_teardown(sites, conns):
    # A server of another cluster that nothing below may touch.
    other = ok(run_cluster({'name': 'bystander', 'groups': [{'name': 'solo', 'flavor': 'm1.tiny', 'image': IMAGE, 'site': SITE_A}]}))
    other_id = other['nodes'][0]['id']

    args = {'name': 'itest', 'ssh_public_key': PUBKEY, 'ssh_cidrs': ['192.0.2.0/24'], 'groups': groups()}
    # Check mode: reports the plan, creates nothing.
    planned = ok(run_cluster(args, check=True, diff=True))
    assert planned['changed'] is True
    assert planned['created'] == ['itest-cpu-1', 'itest-cpu-2', 'itest-frontend-1', 'itest-gpu-1', 'itest-gpu-2']
    assert planned['diff']['after']['nodes'] == planned['created']
    assert cluster_servers(conns, 'itest') == {} and tagged(conns, 'itest') == {}

    result = ok(run_cluster(args))
    assert result['changed'] is True
    assert sorted(result['created']) == planned['created']
    nodes = dict((n['name'], n) for n in result['nodes'])
    assert nodes['itest-frontend-1']['site'] == SITE_A
    assert nodes['itest-gpu-1']['site'] == SITE_B and nodes['itest-gpu-2']['site'] == SITE_B
    assert nodes['itest-gpu-1']['gpu'] == {'count': 1, 'model': 'A100'}
    assert nodes['itest-cpu-1']['gpu']['count'] == 0 and nodes['itest-cpu-1']['flavor'] == 'm1.small'
    assert all(n['status'] == 'ACTIVE' and n['private_ip'] for n in nodes.values())
    assert nodes['itest-frontend-1']['public_ip'] and nodes['itest-frontend-1']['frontend'] is True
    assert [n for n, v in nodes.items() if v['public_ip']] == ['itest-frontend-1']

    # Cross-check with openstacksdk.
    servers = cluster_servers(conns, 'itest')
    assert sorted(servers) == sorted(nodes)
    for name, (site, server) in servers.items():
        md = server.metadata
        assert md['fedgpu_cluster'] == 'itest' and md['fedgpu_site'] == site
        assert '%s-%s-%s' % ('itest', md['fedgpu_group'], md['fedgpu_index']) == name
        assert server.key_name == 'fedgpu-itest'
        assert nodes[name]['site'] == site and nodes[name]['id'] == server.id
        sg_names = sorted(sg['name'] for sg in server.security_groups)
        expected_sgs = ['fedgpu-itest-frontend', 'fedgpu-itest-nodes'] if md['fedgpu_group'] == 'frontend' else ['fedgpu-itest-nodes']
        assert sg_names == expected_sgs, (name, sg_names)
        ports = list(conns[site].network.ports(device_id=server.id))
        assert len(ports) == 1 and ports[0].status == 'ACTIVE'
        fips = list(conns[site].network.ips(port_id=ports[0].id))
        assert len(fips) == (1 if md['fedgpu_group'] == 'frontend' else 0), name
    for site in (SITE_A, SITE_B):
        net = conns[site].network
        rules = [(r.protocol, r.port_range_min, r.remote_ip_prefix) for sg in net.security_groups(name='fedgpu-itest-frontend')
                 for r in net.security_group_rules(security_group_id=sg.id, direction='ingress')]
        assert ('tcp', 22, '192.0.2.0/24') in rules and ('tcp', 22, '0.0.0.0/0') not in rules
        router = next(iter(net.routers(tags=['fedgpu-cluster:itest'])))
        assert router.external_gateway_info['network_id'] == net.find_network('public').id

    # Re-run: nothing changes, in check mode or for real.
    assert ok(run_cluster(args, check=True))['changed'] is False
    again = ok(run_cluster(args))
    assert again['changed'] is False and again['created'] == [] and again['removed'] == []
    assert sorted(n['name'] for n in again['nodes']) == sorted(nodes)

    # Scale up, then down: the highest indexes go.
    up = ok(run_cluster(dict(args, groups=groups(cpu=4))))
    assert up['changed'] is True and up['created'] == ['itest-cpu-3', 'itest-cpu-4'] and up['removed'] == []
    down = ok(run_cluster(dict(args, groups=groups(cpu=1, gpu=1))))
    assert down['changed'] is True and down['created'] == []
    assert down['removed'] == ['itest-cpu-2', 'itest-cpu-3', 'itest-cpu-4', 'itest-gpu-2']
    assert sorted(cluster_servers(conns, 'itest')) == ['itest-cpu-1', 'itest-frontend-1', 'itest-gpu-1']
    # The surviving nodes are the same servers as before.
    assert cluster_servers(conns, 'itest')['itest-cpu-1'][1].id == nodes['itest-cpu-1']['id']

    # Teardown: check mode first, then for real; the other cluster stays.
    absent = {'name': 'itest', 'state': 'absent'}
    preview = ok(run_cluster(absent, check=True))
    assert preview['changed'] is True and preview['removed'] == ['itest-cpu-1', 'itest-frontend-1', 'itest-gpu-1']
    assert len(cluster_servers(conns, 'itest')) == 3
    gone = ok(run_cluster(absent))
    assert gone['changed'] is True
    assert cluster_servers(conns, 'itest') == {}
    assert tagged(conns, 'itest') == {}
    assert conns[SITE_A].compute.get_server(other_id).status == 'ACTIVE'
    assert ok(run_cluster(absent))['changed'] is False

    ok(run_cluster({'name': 'bystander', 'state': 'absent'}))
    assert cluster_servers(conns, 'bystander') == {} and tagged(conns, 'bystander') == {}


@pytest.fixture
def low_quota_on_site_a(conns):
    """Leave room for exactly one more server in the test project on site A."""
    admin = conns[SITE_A + '-admin']
    project = conns[SITE_A].current_project_id
    used = len(list(conns[SITE_A].compute.servers()))
    admin.set_compute_quotas(project, instances=used + 1)
    yield
    admin.set_compute_quotas(project, instances=100)


def test_quota_exhausted_on_site_a_places_on_site_b(sites, conns, low_quota_on_site_a):
    args = {'name': 'fbq', 'groups': [{'name': 'cpu', 'count': 3, 'flavor': 'm1.tiny', 'image': IMAGE, 'sites': [SITE_A, SITE_B]}]}
    result = ok(run_cluster(args))
    placed = dict((n['name'], n['site']) for n in result['nodes'])
    assert placed == {'fbq-cpu-1': SITE_A, 'fbq-cpu-2': SITE_B, 'fbq-cpu-3': SITE_B}
    assert result['sites'][SITE_A]['capacity']['instances'] == 1
    assert result['rescheduled'] == []
    ok(run_cluster({'name': 'fbq', 'state': 'absent'}))
    assert cluster_servers(conns, 'fbq') == {}


def test_gpu_capacity_exhausted_boot_is_cleaned_up_and_rescheduled(sites, conns):
    # Site A has 4 fake GPUs, site B 2. The test user cannot read Placement,
    # so the module learns that site A is full from the failed boot.
    args = {'name': 'fbg', 'groups': [{'name': 'gpu', 'count': 5, 'flavor': 'g1.a100', 'image': IMAGE, 'sites': [SITE_A, SITE_B]}]}
    result = ok(run_cluster(args))
    sites_of = sorted(n['site'] for n in result['nodes'])
    assert sites_of == [SITE_A] * 4 + [SITE_B], result['nodes']
    assert len(result['rescheduled']) == 1
    assert result['rescheduled'][0]['site'] == SITE_A and 'No valid host' in result['rescheduled'][0]['error']
    # The failed server is gone: no ERROR server, only the five nodes.
    servers = cluster_servers(conns, 'fbg')
    assert len(servers) == 5 and all(s.status == 'ACTIVE' for _site, s in servers.values())
    for site in (SITE_A, SITE_B):
        assert [s.name for s in conns[site].compute.servers() if s.status == 'ERROR'] == []
    assert ok(run_cluster(args))['changed'] is False

    # 7 GPUs wanted, 6 exist: nodes 6 and 7 both fail on site A, one of them
    # gets site B's last GPU, the other fails everywhere. The module says so,
    # cleans up the failed boots and keeps what booted (changed=true).
    args['groups'][0]['count'] = 7
    result = run_cluster(args)
    assert result.get('failed') and result['changed'] is True
    assert len(result['created']) == 1 and result['created'][0] in ('fbg-gpu-6', 'fbg-gpu-7')
    lost = 'fbg-gpu-7' if result['created'] == ['fbg-gpu-6'] else 'fbg-gpu-6'
    assert 'node %s (group gpu) could not be created on any site' % lost in result['msg']
    assert 'site-a: No valid host' in result['msg'] and 'site-b: No valid host' in result['msg']
    servers = cluster_servers(conns, 'fbg')
    assert sorted(servers) == sorted(['fbg-gpu-%d' % i for i in range(1, 6)] + result['created'])
    assert all(s.status == 'ACTIVE' for _site, s in servers.values())
    ok(run_cluster({'name': 'fbg', 'state': 'absent'}))
    assert cluster_servers(conns, 'fbg') == {} and tagged(conns, 'fbg') == {}

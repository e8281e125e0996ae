# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Start and stop real OpenStack "sites" on loopback for the integration tests.

Runs inside the OpenStack venv made by sites.sh (keystone, nova, placement,
neutron, glance, gunicorn, PyMySQL from PyPI).  One MariaDB and one RabbitMQ
(from Debian, started here without systemd) serve all sites: every site has its
own databases and its own RabbitMQ vhost.  Every site is an independent cloud:
its own Keystone on its own loopback address (127.0.0.11, .12, ...).

    sitectl.py start [--sites N]   wipe state, configure, migrate, start, seed
    sitectl.py stop                stop everything this script started
    sitectl.py status              print what runs
    sitectl.py stop-site NAME [SERVICE...]   stop a site's API processes (site down)
    sitectl.py start-site NAME     start the site's API processes that are not running

Nothing listens outside 127.0.0.0/8.
"""
import argparse
import concurrent.futures
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
VENV = os.path.dirname(os.path.dirname(os.path.abspath(sys.executable)))
RUN = os.environ.get('FEDGPU_OS_RUN', os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(HERE))), '.cache', 'openstack-sites'))
ETC = os.path.join(VENV, 'etc')
DB_PORT = 13306
AMQP_PORT = 15682
DIST_PORT = 15683
EPMD_PORT = 14369
PASSWORD = 'fedgpu-test-secret'
DB_USER = 'openstack'
GPUS = [4, 2, 2, 2]
LETTERS = 'abcd'
SERVICES = ('keystone', 'placement', 'glance', 'neutron', 'nova')
PORTS = {'keystone': 5000, 'placement': 8778, 'glance': 9292, 'neutron': 9696, 'nova': 8774}
WORKERS = {'keystone': 2, 'placement': 1, 'glance': 1, 'neutron': 2, 'nova': 2}


def site_def(index):
    letter = LETTERS[index]
    return {
        'name': 'site-%s' % letter,
        'key': 's%s' % letter,
        'ip': '127.0.0.%d' % (11 + index),
        'region': 'Region%s' % letter.upper(),
        'gpus': GPUS[index],
        'dir': os.path.join(RUN, 'site-%s' % letter),
    }


def log(msg):
    sys.stderr.write('[sites %s] %s\n' % (time.strftime('%H:%M:%S'), msg))
    sys.stderr.flush()


def run(cmd, env=None, log_name=None, check=True):
    out = open(os.path.join(RUN, 'logs', log_name), 'ab') if log_name else subprocess.DEVNULL
    try:
        proc = subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.STDOUT if log_name else subprocess.PIPE, check=False)
    finally:
        if log_name:
            out.close()
    if check and proc.returncode != 0:
        raise RuntimeError('command failed (%s): %s; see %s' % (proc.returncode, ' '.join(cmd), log_name or proc.stderr))
    return proc


def spawn(name, cmd, env=None):
    """Start a long-running process in its own session; remember its pid."""
    logf = open(os.path.join(RUN, 'logs', name + '.log'), 'ab')
    proc = subprocess.Popen(cmd, env=env, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    with open(os.path.join(RUN, 'pids', name + '.pid'), 'w') as f:
        f.write(str(proc.pid))
    return proc


def alive(pid):
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().split()[2] != 'Z'
    except OSError:
        return False


def stop_pid(name, timeout=20):
    path = os.path.join(RUN, 'pids', name + '.pid')
    if not os.path.exists(path):
        return
    with open(path) as f:
        pid = int(f.read().strip() or 0)
    if pid and alive(pid):
        try:
            os.killpg(pid, signal.SIGTERM)
        except OSError:
            pass
        deadline = time.time() + timeout
        while alive(pid) and time.time() < deadline:
            time.sleep(0.2)
        if alive(pid):
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
    os.unlink(path)


def wait_http(url, timeout=120, name=None):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        if name:
            pidfile = os.path.join(RUN, 'pids', name + '.pid')
            with open(pidfile) as f:
                if not alive(int(f.read())):
                    raise RuntimeError('%s died; see %s' % (name, os.path.join(RUN, 'logs', name + '.log')))
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                return resp.status
        except urllib.error.HTTPError as exc:
            return exc.code
        except Exception as exc:  # noqa: BLE001 - keep polling
            last = exc
        time.sleep(0.3)
    raise RuntimeError('%s did not answer in %ss: %s' % (url, timeout, last))


# --------------------------------------------------------------- infrastructure

def mysql(sql):
    run(['mariadb', '--socket', os.path.join(RUN, 'mysql', 'mysqld.sock'), '-uroot', '-e', sql])


def start_mariadb():
    base = os.path.join(RUN, 'mysql')
    data = os.path.join(base, 'data')
    if not os.path.isdir(os.path.join(data, 'mysql')):
        os.makedirs(data, exist_ok=True)
        run(['mariadb-install-db', '--user=root', '--datadir=' + data, '--auth-root-authentication-method=socket',
             '--skip-test-db'], log_name='mariadb-install.log')
    spawn('mariadb', ['mariadbd', '--no-defaults', '--user=root', '--datadir=' + data, '--socket=' + os.path.join(base, 'mysqld.sock'),
                      '--port=%d' % DB_PORT, '--bind-address=127.0.0.1', '--pid-file=' + os.path.join(base, 'mysqld.pid'),
                      '--max-connections=3000', '--innodb-buffer-pool-size=256M', '--innodb-flush-log-at-trx-commit=0',
                      '--innodb-doublewrite=0', '--skip-log-bin', '--character-set-server=utf8mb4', '--skip-name-resolve'])
    deadline = time.time() + 60
    while time.time() < deadline:
        if run(['mariadb-admin', '--socket', os.path.join(base, 'mysqld.sock'), '-uroot', 'ping'], check=False).returncode == 0:
            break
        time.sleep(0.3)
    else:
        raise RuntimeError('mariadb did not start; see logs/mariadb.log')
    mysql("CREATE USER IF NOT EXISTS '{u}'@'127.0.0.1' IDENTIFIED BY '{p}'; GRANT ALL ON *.* TO '{u}'@'127.0.0.1'; FLUSH PRIVILEGES;"
          .format(u=DB_USER, p=PASSWORD))


def rabbit_env():
    base = os.path.join(RUN, 'rabbitmq')
    env = dict(os.environ)
    env.update({
        'HOME': os.path.join(base, 'home'),
        'RABBITMQ_NODENAME': 'fedgpu@localhost',
        'RABBITMQ_NODE_IP_ADDRESS': '127.0.0.1',
        'RABBITMQ_NODE_PORT': str(AMQP_PORT),
        'RABBITMQ_DIST_PORT': str(DIST_PORT),
        'ERL_EPMD_PORT': str(EPMD_PORT),
        'ERL_EPMD_ADDRESS': '127.0.0.1',
        'RABBITMQ_MNESIA_BASE': os.path.join(base, 'mnesia'),
        'RABBITMQ_LOG_BASE': os.path.join(base, 'log'),
        'RABBITMQ_PID_FILE': os.path.join(base, 'rabbit.pid'),
        'RABBITMQ_CONFIG_FILE': os.path.join(base, 'rabbitmq'),
        'RABBITMQ_ENABLED_PLUGINS_FILE': os.path.join(base, 'enabled_plugins'),
        'RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS': '-kernel inet_dist_use_interface {127,0,0,1}',
    })
    return env


def start_rabbitmq():
    base = os.path.join(RUN, 'rabbitmq')
    for sub in ('home', 'mnesia', 'log'):
        os.makedirs(os.path.join(base, sub), exist_ok=True)
    with open(os.path.join(base, 'enabled_plugins'), 'w') as f:
        f.write('[].\n')
    with open(os.path.join(base, 'rabbitmq.conf'), 'w') as f:
        f.write('loopback_users = none\n')
    env = rabbit_env()
    spawn('epmd', ['/usr/lib/erlang/bin/epmd', '-address', '127.0.0.1', '-port', str(EPMD_PORT)], env=env)
    time.sleep(0.3)
    spawn('rabbitmq', ['/usr/lib/rabbitmq/bin/rabbitmq-server'], env=env)
    deadline = time.time() + 90
    while time.time() < deadline:
        if run(['/usr/lib/rabbitmq/bin/rabbitmqctl', '-q', 'await_startup', '--timeout', '5'], env=env, check=False).returncode == 0:
            return
        time.sleep(0.5)
    raise RuntimeError('rabbitmq did not start; see logs/rabbitmq.log')


def rabbitmqctl(*args):
    run(['/usr/lib/rabbitmq/bin/rabbitmqctl', '-q'] + list(args), env=rabbit_env(), log_name='rabbitmqctl.log')


# ------------------------------------------------------------------- configs

def db_url(site, name):
    return 'mysql+pymysql://%s:%s@127.0.0.1:%d/%s_%s?charset=utf8' % (DB_USER, PASSWORD, DB_PORT, site['key'], name)


def auth_section(site, name, extra=''):
    return """[{name}]
auth_url = http://{ip}:5000/v3
auth_type = password
username = admin
password = {pw}
project_name = admin
user_domain_name = Default
project_domain_name = Default
region_name = {region}
{extra}
""".format(name=name, ip=site['ip'], pw=PASSWORD, region=site['region'], extra=extra)


def authtoken(site):
    return auth_section(site, 'keystone_authtoken', 'www_authenticate_uri = http://%s:5000\nservice_token_roles_required = true\n' % site['ip'])


# oslo.log's defaults silence keystonemiddleware below WARNING; its INFO lines
# say why a token was refused.
LOG_LEVELS = ('default_log_levels = keystonemiddleware=INFO,keystoneauth=WARN,amqp=WARN,amqplib=WARN,oslo.messaging=WARN,sqlalchemy=WARN,'
              'stevedore=WARN,oslo_policy=WARN,urllib3=WARN,requests=WARN,iso8601=WARN,routes=WARN\n')


def transport(site):
    return 'rabbit://guest:guest@127.0.0.1:%d/%s' % (AMQP_PORT, site['name'])


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write(text)


def write_configs(site):
    d = site['dir']
    ip = site['ip']
    for sub in ('keystone/fernet', 'keystone/credential', 'nova/state', 'nova/provider', 'neutron/state', 'glance/images', 'glance/staging',
                'glance/tasks', 'locks'):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    lock = '[oslo_concurrency]\nlock_path = %s\n' % os.path.join(d, 'locks')
    write(os.path.join(d, 'keystone', 'keystone.conf'), """[DEFAULT]
debug = false
[database]
connection = {db}
[token]
provider = fernet
[fernet_tokens]
key_repository = {d}/keystone/fernet
[fernet_receipts]
key_repository = {d}/keystone/fernet
[credential]
key_repository = {d}/keystone/credential
[cache]
enabled = true
backend = oslo_cache.dict
[identity]
# Test sites only: cheap password hashing (every token costs a bcrypt check).
password_hash_rounds = 4
""".format(db=db_url(site, 'keystone'), d=d))
    write(os.path.join(d, 'placement', 'placement.conf'), """[DEFAULT]
debug = false
[placement_database]
connection = {db}
[api]
auth_strategy = keystone
{at}""".format(db=db_url(site, 'placement'), at=authtoken(site)))
    shutil.copy(os.path.join(ETC, 'glance', 'glance-api-paste.ini'), os.path.join(d, 'glance', 'glance-api-paste.ini'))
    write(os.path.join(d, 'glance', 'glance-api.conf'), """[DEFAULT]
debug = false
enabled_backends = file:file
[glance_store]
default_backend = file
[file]
filesystem_store_datadir = {d}/glance/images
[os_glance_staging_store]
filesystem_store_datadir = {d}/glance/staging
[os_glance_tasks_store]
filesystem_store_datadir = {d}/glance/tasks
[database]
connection = {db}
[paste_deploy]
flavor = keystone
{lock}{at}""".format(d=d, db=db_url(site, 'glance'), at=authtoken(site), lock=lock))
    write(os.path.join(d, 'neutron', 'neutron.conf'), """[DEFAULT]
debug = false
{levels}core_plugin = ml2
service_plugins = router
auth_strategy = keystone
transport_url = {tr}
api_paste_config = {etc}/neutron/api-paste.ini
state_path = {d}/neutron/state
notify_nova_on_port_status_changes = true
notify_nova_on_port_data_changes = true
dhcp_agent_notification = false
allow_overlapping_ips = true
[database]
connection = {db}
[ml2]
type_drivers = flat,vxlan
tenant_network_types = vxlan
mechanism_drivers = fedgpu_fakebind
extension_drivers = port_security
[ml2_type_flat]
flat_networks = public
[ml2_type_vxlan]
vni_ranges = 1:10000
[oslo_messaging_notifications]
driver = noop
{lock}{at}{nova}""".format(levels=LOG_LEVELS, tr=transport(site), etc=ETC, d=d, db=db_url(site, 'neutron'), lock=lock, at=authtoken(site),
                           nova=auth_section(site, 'nova')))
    shutil.copy(os.path.join(ETC, 'nova', 'api-paste.ini'), os.path.join(d, 'nova', 'api-paste.ini'))
    write(os.path.join(d, 'nova', 'provider', 'provider.yaml'), """meta:
  schema_version: '1.0'
providers:
  - identification:
      uuid: '$COMPUTE_NODE'
    inventories:
      additional:
        - CUSTOM_FAKE_GPU:
            total: {gpus}
            max_unit: {gpus}
""".format(gpus=site['gpus']))
    write(os.path.join(d, 'nova', 'nova.conf'), """[DEFAULT]
debug = false
{levels}host = {name}-compute
my_ip = {ip}
transport_url = {tr}
compute_driver = fake.FakeDriver
state_path = {d}/nova/state
instances_path = {d}/nova/state/instances
periodic_fuzzy_delay = 0
update_resources_interval = 10
heal_instance_info_cache_interval = -1
vif_plugging_is_fatal = false
vif_plugging_timeout = 0
[api]
auth_strategy = keystone
[wsgi]
api_paste_config = {d}/nova/api-paste.ini
[api_database]
connection = {apidb}
[database]
connection = {celldb}
[scheduler]
discover_hosts_in_cells_interval = 2
[compute]
provider_config_location = {d}/nova/provider
[oslo_messaging_notifications]
driver = noop
[notifications]
notification_format = unversioned
[oslo_concurrency]
lock_path = {d}/locks
{at}{su}{pl}{ne}{gl}[cinder]
os_region_name = {region}
""".format(levels=LOG_LEVELS, name=site['name'], ip=ip, tr=transport(site), d=d, apidb=db_url(site, 'nova_api'), celldb=db_url(site, 'nova'),
           at=authtoken(site), su=auth_section(site, 'service_user', 'send_service_user_token = true\n'),
           pl=auth_section(site, 'placement'), ne=auth_section(site, 'neutron', 'service_metadata_proxy = false\n'),
           gl=auth_section(site, 'glance'), region=site['region']))


def svc_env(site, service):
    env = dict(os.environ)
    d = site['dir']
    env['FEDGPU_WSGI_SERVICE'] = service
    env['OS_KEYSTONE_CONFIG_DIR'] = os.path.join(d, 'keystone')
    env['OS_PLACEMENT_CONFIG_DIR'] = os.path.join(d, 'placement')
    env['OS_GLANCE_CONFIG_DIR'] = os.path.join(d, 'glance')
    env['OS_NEUTRON_CONFIG_DIR'] = os.path.join(d, 'neutron')
    env['OS_NEUTRON_CONFIG_FILES'] = 'neutron.conf'
    env['OS_NOVA_CONFIG_DIR'] = os.path.join(d, 'nova')
    env['PYTHONPATH'] = HERE
    return env


# ---------------------------------------------------------------- migrations

def migrate(site):
    d = site['dir']
    b = os.path.join(VENV, 'bin')
    key = site['name']
    kconf = ['--config-file', os.path.join(d, 'keystone', 'keystone.conf')]
    nconf = ['--config-file', os.path.join(d, 'nova', 'nova.conf')]

    def keystone():
        run([b + '/keystone-manage'] + kconf + ['db_sync'], log_name=key + '-migrate.log')
        run([b + '/keystone-manage'] + kconf + ['fernet_setup', '--keystone-user', 'root', '--keystone-group', 'root'], log_name=key + '-migrate.log')
        run([b + '/keystone-manage'] + kconf + ['credential_setup', '--keystone-user', 'root', '--keystone-group', 'root'], log_name=key + '-migrate.log')
        run([b + '/keystone-manage'] + kconf + ['bootstrap', '--bootstrap-password', PASSWORD, '--bootstrap-admin-url', 'http://%s:5000/v3' % site['ip'],
                                                '--bootstrap-public-url', 'http://%s:5000/v3' % site['ip'],
                                                '--bootstrap-internal-url', 'http://%s:5000/v3' % site['ip'],
                                                '--bootstrap-region-id', site['region']], log_name=key + '-migrate.log')

    def nova():
        run([b + '/nova-manage'] + nconf + ['api_db', 'sync'], log_name=key + '-migrate.log')
        run([b + '/nova-manage'] + nconf + ['cell_v2', 'map_cell0', '--database_connection', db_url(site, 'nova_cell0')], log_name=key + '-migrate.log')
        run([b + '/nova-manage'] + nconf + ['cell_v2', 'create_cell', '--name', 'cell1', '--verbose'], log_name=key + '-migrate.log')
        run([b + '/nova-manage'] + nconf + ['db', 'sync'], log_name=key + '-migrate.log')

    def placement():
        run([b + '/placement-manage', '--config-file', os.path.join(d, 'placement', 'placement.conf'), 'db', 'sync'], log_name=key + '-migrate.log')

    def neutron():
        run([b + '/neutron-db-manage', '--config-file', os.path.join(d, 'neutron', 'neutron.conf'), 'upgrade', 'heads'], log_name=key + '-migrate.log')

    def glance():
        run([b + '/glance-manage', '--config-file', os.path.join(d, 'glance', 'glance-api.conf'), 'db_sync'], log_name=key + '-migrate.log')

    return [keystone, nova, placement, neutron, glance]


# ----------------------------------------------------------------- processes

def start_wsgi(site, service):
    name = '%s-%s' % (site['name'], service)
    cmd = [os.path.join(VENV, 'bin', 'gunicorn'), '--bind', '%s:%d' % (site['ip'], PORTS[service]), '--workers', str(WORKERS[service]),
           '--worker-class', 'sync', '--timeout', '300', '--graceful-timeout', '5', '--no-control-socket', '--chdir', HERE,
           '--name', name, 'launcher:application']
    spawn(name, cmd, env=svc_env(site, service))


def start_nova_service(site, service):
    name = '%s-%s' % (site['name'], service)
    spawn(name, [os.path.join(VENV, 'bin', service), '--config-file', os.path.join(site['dir'], 'nova', 'nova.conf')], env=svc_env(site, 'nova'))


def conn(site, project='admin', user='admin', password=PASSWORD):
    import openstack
    return openstack.connect(auth_url='http://%s:5000/v3' % site['ip'], username=user, password=password, project_name=project,
                             user_domain_name='Default', project_domain_name='Default', region_name=site['region'], identity_interface='public')


def register_catalog(site):
    c = conn(site)
    ip = site['ip']
    ident = c.identity
    for rname in ('service', 'member', 'reader'):
        if not ident.find_role(rname):
            ident.create_role(name=rname)
    admin_project = ident.find_project('admin')
    admin_user = ident.find_user('admin')
    service_role = ident.find_role('service')
    ident.assign_project_role_to_user(admin_project, admin_user, service_role)
    catalog = [('nova', 'compute', 'http://%s:8774/v2.1' % ip), ('placement', 'placement', 'http://%s:8778' % ip),
               ('neutron', 'network', 'http://%s:9696' % ip), ('glance', 'image', 'http://%s:9292' % ip)]
    for name, stype, url in catalog:
        svc = ident.create_service(name=name, type=stype)
        for iface in ('public', 'internal', 'admin'):
            ident.create_endpoint(service_id=svc.id, interface=iface, url=url, region_id=site['region'])
    domain = ident.find_domain('default')
    project = ident.create_project(name='fedgpu', domain_id=domain.id, description='fedgpu test tenant')
    user = ident.create_user(name='fedgpu', password=PASSWORD, domain_id=domain.id, default_project_id=project.id)
    ident.assign_project_role_to_user(project, user, ident.find_role('member'))
    ident.assign_project_role_to_user(project, admin_user, ident.find_role('admin'))
    return project.id


def wait_compute(site, timeout=120):
    """Wait until the compute node is mapped and reports its GPU inventory."""
    c = conn(site)
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            hyps = list(c.compute.hypervisors())
            if hyps:
                rps = c.placement.get('/resource_providers', microversion='1.14').json()['resource_providers']
                for rp in rps:
                    inv = c.placement.get('/resource_providers/%s/inventories' % rp['uuid']).json()['inventories']
                    if 'CUSTOM_FAKE_GPU' in inv and 'VCPU' in inv:
                        cells = c.compute.get('/os-hypervisors/detail').json()
                        if cells.get('hypervisors'):
                            return
        except Exception:  # noqa: BLE001 - keep polling
            pass
        time.sleep(0.5)
    raise RuntimeError('%s: compute node did not come up; see logs/%s-nova-compute.log' % (site['name'], site['name']))


def seed(site, project_id):
    """Flavors, image, external network and quotas that every test relies on."""
    c = conn(site)
    flavors = [
        ('m1.tiny', 1, 512, 1, {}),
        ('m1.small', 2, 2048, 10, {}),
        ('m1.large', 8, 16384, 20, {}),
        ('g1.a100', 8, 32768, 20, {'resources:CUSTOM_FAKE_GPU': '1', 'gpu:model': 'A100'}),
        ('g2.a100', 16, 65536, 20, {'resources:CUSTOM_FAKE_GPU': '2', 'gpu:model': 'A100'}),
    ]
    for name, vcpus, ram, disk, specs in flavors:
        fl = c.compute.create_flavor(name=name, vcpus=vcpus, ram=ram, disk=disk, is_public=True)
        if specs:
            c.compute.create_flavor_extra_specs(fl, specs)
    img = c.image.create_image(name='fedgpu-test-image', disk_format='raw', container_format='bare', visibility='public', data=b'\0' * 1024,
                               validate_checksum=False, use_import=False)
    c.image.wait_for_status(img, status='active', wait=60)
    net = c.network.create_network(name='public', is_router_external=True, is_shared=False, provider_network_type='flat',
                                   provider_physical_network='public')
    index = int(site['ip'].rsplit('.', 1)[1])
    c.network.create_subnet(network_id=net.id, name='public-subnet', ip_version=4, cidr='172.24.%d.0/24' % index, gateway_ip='172.24.%d.1' % index,
                            is_dhcp_enabled=False)
    c.set_compute_quotas(project_id, instances=100, cores=400, ram=1024000)
    c.set_network_quotas(project_id, floatingip=50, port=500, network=20, subnet=20, router=10, security_group=20, security_group_rule=200)


def bring_up(site):
    d = site['dir']
    start_wsgi(site, 'keystone')
    wait_http('http://%s:5000/v3' % site['ip'], name=site['name'] + '-keystone')
    project_id = register_catalog(site)
    # Keystone's cache (oslo_cache.dict) lives in each worker: a worker that
    # cached the admin's role assignments before register_catalog gave it the
    # `service` role keeps answering without it (default 600 s), and then
    # neutron rejects nova's service token now and then (401 on server
    # create, seen in CI). Restarting keystone starts every worker's cache
    # from the finished identity setup.
    stop_pid(site['name'] + '-keystone')
    start_wsgi(site, 'keystone')
    wait_http('http://%s:5000/v3' % site['ip'], name=site['name'] + '-keystone')
    for service in ('placement', 'glance', 'neutron', 'nova'):
        start_wsgi(site, service)
    for service in ('placement', 'glance', 'neutron', 'nova'):
        wait_http('http://%s:%d/' % (site['ip'], PORTS[service]), name='%s-%s' % (site['name'], service))
    for service in ('nova-conductor', 'nova-scheduler', 'nova-compute'):
        start_nova_service(site, service)
    seed(site, project_id)
    wait_compute(site)
    with open(os.path.join(d, 'ready'), 'w') as f:
        f.write(project_id)
    return project_id


def clouds_yaml(sites):
    lines = ['# Written by tests/integration/openstack/sitectl.py: loopback test sites.', 'clouds:']
    for site in sites:
        for suffix, user, project in (('', 'fedgpu', 'fedgpu'), ('-admin', 'admin', 'admin')):
            lines += ['  %s%s:' % (site['name'], suffix),
                      '    auth:',
                      '      auth_url: http://%s:5000/v3' % site['ip'],
                      '      username: %s' % user,
                      '      password: %s' % PASSWORD,
                      '      project_name: %s' % project,
                      '      user_domain_name: Default',
                      '      project_domain_name: Default',
                      '    region_name: %s' % site['region'],
                      '    identity_api_version: 3',
                      '    interface: public']
    path = os.path.join(RUN, 'clouds.yaml')
    write(path, '\n'.join(lines) + '\n')
    os.chmod(path, 0o600)
    return path


# ------------------------------------------------------------------ commands

def pids():
    d = os.path.join(RUN, 'pids')
    return sorted(f[:-4] for f in os.listdir(d) if f.endswith('.pid')) if os.path.isdir(d) else []


def cmd_stop(_args):
    names = pids()
    # API and nova services first, then the broker and the database.
    order = [n for n in names if n.startswith('site-')] + [n for n in ('rabbitmq', 'epmd', 'mariadb') if n in names]
    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(stop_pid, [n for n in order if n.startswith('site-')]))
    if 'rabbitmq' in names:
        run(['/usr/lib/rabbitmq/bin/rabbitmqctl', '-q', 'stop'], env=rabbit_env(), check=False)
        stop_pid('rabbitmq')
    for name in ('epmd', 'mariadb'):
        if name in names:
            stop_pid(name, timeout=60)
    log('stopped %d processes' % len(names))


def cmd_status(_args):
    rc = 0
    for name in pids():
        with open(os.path.join(RUN, 'pids', name + '.pid')) as f:
            pid = int(f.read())
        state = 'running' if alive(pid) else 'DEAD'
        if state != 'running':
            rc = 1
        print('%-28s %-8s %s' % (name, pid, state))
    if not pids():
        print('not running')
        rc = 3
    return rc


def cmd_start(args):
    t0 = time.time()
    if pids():
        cmd_stop(args)
    if os.path.isdir(RUN):
        shutil.rmtree(RUN)
    for sub in ('logs', 'pids'):
        os.makedirs(os.path.join(RUN, sub))
    sites = [site_def(i) for i in range(args.sites)]
    with open(os.path.join(RUN, 'sites.json'), 'w') as f:
        json.dump(sites, f, indent=2)
    log('starting mariadb and rabbitmq')
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        futs = [pool.submit(start_mariadb), pool.submit(start_rabbitmq)]
        for fut in futs:
            fut.result()
    for site in sites:
        dbs = ['keystone', 'nova_api', 'nova', 'nova_cell0', 'placement', 'neutron', 'glance']
        mysql(' '.join('CREATE DATABASE %s_%s CHARACTER SET utf8;' % (site['key'], db) for db in dbs))
        rabbitmqctl('add_vhost', site['name'])
        rabbitmqctl('set_permissions', '-p', site['name'], 'guest', '.*', '.*', '.*')
        write_configs(site)
    log('infrastructure up after %.1fs; migrating databases' % (time.time() - t0))
    tasks = [task for site in sites for task in migrate(site)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(tasks)) as pool:
        for fut in [pool.submit(t) for t in tasks]:
            fut.result()
    log('migrations done after %.1fs; starting services' % (time.time() - t0))
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(sites)) as pool:
        for fut in [pool.submit(bring_up, s) for s in sites]:
            fut.result()
    path = clouds_yaml(sites)
    log('%d sites ready after %.1fs; clouds.yaml: %s' % (len(sites), time.time() - t0, path))
    print(path)


def find_site(name):
    with open(os.path.join(RUN, 'sites.json')) as f:
        for site in json.load(f):
            if site['name'] == name:
                return site
    raise SystemExit('unknown site %s' % name)


def cmd_stop_site(args):
    site = find_site(args.name)
    unknown = set(args.services) - set(SERVICES)
    if unknown:
        raise SystemExit('unknown services: %s' % ', '.join(sorted(unknown)))
    for service in args.services or SERVICES:
        stop_pid('%s-%s' % (site['name'], service))


def cmd_start_site(args):
    """Start the site's API services that are not running."""
    site = find_site(args.name)
    running = set(pids())
    started = []
    for service in SERVICES:
        if '%s-%s' % (site['name'], service) not in running:
            start_wsgi(site, service)
            started.append(service)
    for service in started:
        wait_http('http://%s:%d/' % (site['ip'], PORTS[service]), name='%s-%s' % (site['name'], service))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest='command', required=True)
    p = sub.add_parser('start')
    p.add_argument('--sites', type=int, default=int(os.environ.get('FEDGPU_OS_SITES', '2')), choices=range(1, 5))
    sub.add_parser('stop')
    sub.add_parser('status')
    p = sub.add_parser('stop-site')
    p.add_argument('name')
    p.add_argument('services', nargs='*', help='some of %s (default: all API services of the site)' % ', '.join(SERVICES))
    p = sub.add_parser('start-site')
    p.add_argument('name')
    args = parser.parse_args()
    func = {'start': cmd_start, 'stop': cmd_stop, 'status': cmd_status, 'stop-site': cmd_stop_site, 'start-site': cmd_start_site}[args.command]
    try:
        return func(args) or 0
    except Exception as exc:  # noqa: BLE001 - print a one-line reason and fail
        log('FAILED: %s' % exc)
        return 1


if __name__ == '__main__':
    sys.exit(main())

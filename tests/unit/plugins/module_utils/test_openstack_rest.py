# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The thin OpenStack client (openstack_rest) reads clouds.yaml and talks to Keystone as openstacksdk does."""
import os
import sys

import pytest
import yaml

from ansible_collections.fedgpu.platform.plugins.module_utils import openstack_federation as of
from ansible_collections.fedgpu.platform.plugins.module_utils import openstack_rest as rest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))
from fake_openstack_api import PASSWORD, FakeCloud, nova_server  # noqa: E402 pylint: disable=wrong-import-position

AUTH = {'auth_url': 'https://keystone.example.org:5000/v3/', 'username': 'alice', 'password': 'pw', 'project_name': 'ml',
        'user_domain_name': 'Default', 'project_domain_name': 'Default'}
# Entries the thin client reads: it must see what openstacksdk sees.
FAST = {
    'plain': {'auth': AUTH, 'region_name': 'RegionOne', 'identity_api_version': 3, 'interface': 'public'},
    'ids': {'auth_type': 'v3password', 'insecure': True, 'interface': 'internal',
            'auth': {'auth_url': 'http://k:5000/v3', 'user_id': 'u1', 'password': 'pw', 'project_id': 1234}},
    'appcred': {'auth_type': 'v3applicationcredential', 'cacert': '~/ca.pem', 'region_name': 'R2', 'image_api_version': '2',
                'auth': {'auth_url': 'http://k:5000/v3', 'application_credential_id': 'ac', 'application_credential_secret': 's'}},
    'override': {'auth': AUTH, 'compute_endpoint_override': 'http://nova:8774/v2.1', 'cert': '/c.pem', 'key': '/k.pem',
                 'network_endpoint_override': 'http://neutron:9696'},
    'secret': {'auth': dict((k, v) for k, v in AUTH.items() if k != 'password'), 'region_name': 'RegionOne'},
    'noregion': {'auth': AUTH},
}
# Entries it leaves to openstacksdk.
SLOW = {
    'profile': {'profile': 'vexxhost', 'auth': AUTH},
    'regions': {'auth': AUTH, 'regions': ['R1', 'R2']},
    'csv_regions': {'auth': AUTH, 'region_name': 'R1,R2'},
    'oidc': {'auth_type': 'v3oidcpassword', 'auth': AUTH},
    'unversioned': {'auth': dict(AUTH, auth_url='https://keystone.example.org:5000')},
    'no_domain': {'auth': dict((k, v) for k, v in AUTH.items() if k != 'project_domain_name')},
    'domain_once': {'auth': dict(AUTH, domain_name='Default')},
    'templated': {'auth': AUTH, 'compute_endpoint_override': 'http://nova/v2.1/{project_id}'},
    'compute_interface': {'auth': AUTH, 'compute_interface': 'internal'},
    'v2': {'auth': AUTH, 'identity_api_version': 2},
}


@pytest.fixture
def clouds_yaml(tmp_path, monkeypatch):
    for key in list(os.environ):
        if key.startswith('OS_'):
            monkeypatch.delenv(key)
    monkeypatch.setenv('HOME', str(tmp_path))
    monkeypatch.delenv('XDG_CONFIG_HOME', raising=False)
    monkeypatch.chdir(tmp_path)
    path = tmp_path / 'clouds.yaml'
    path.write_text(yaml.safe_dump({'clouds': dict(FAST, **SLOW)}))
    secure = tmp_path / 'secure.yaml'
    secure.write_text(yaml.safe_dump({'clouds': {'secret': {'auth': {'password': 'from-secure'}}}}))
    monkeypatch.setenv('OS_CLIENT_SECURE_FILE', str(secure))
    return str(path)


@pytest.mark.parametrize('name, region', [(n, None) for n in sorted(FAST)] + [('noregion', 'R9'), ('plain', 'RegionOne')])
def test_fast_settings_are_what_openstacksdk_reads(clouds_yaml, name, region):
    settings = rest.cloud_settings(name, region, clouds_yaml)
    assert settings, name
    sdk = of.load_cloud_config(name, region, clouds_yaml)
    assert settings['region'] == sdk.get_region_name()
    assert settings['interface'] == sdk.get_interface()
    assert (settings['verify'], settings['cert']) == sdk.get_requests_verify_args()
    assert settings['compute_endpoint_override'] == sdk.config.get('compute_endpoint_override')
    sdk_auth = dict((k, v) for k, v in sdk.config['auth'].items() if v is not None)
    assert dict(settings['auth'], auth_url=settings['auth']['auth_url']) == sdk_auth
    assert settings['auth_url'] == sdk_auth['auth_url'].rstrip('/')
    assert settings['auth_type'] == {'password': 'password', 'v3password': 'password'}.get(sdk.config['auth_type'], sdk.config['auth_type'])


@pytest.mark.parametrize('name', sorted(SLOW))
def test_other_shapes_are_left_to_openstacksdk(clouds_yaml, name):
    assert rest.cloud_settings(name, None, clouds_yaml) is None


def test_a_region_the_cloud_does_not_have_is_left_to_openstacksdk(clouds_yaml):
    assert rest.cloud_settings('plain', 'Elsewhere', clouds_yaml) is None
    with pytest.raises(of.FederationError, match='not a valid region name'):
        of.load_cloud_config('plain', 'Elsewhere', clouds_yaml)


def test_files_are_found_as_openstacksdk_finds_them(clouds_yaml, tmp_path, monkeypatch):
    # The clouds_yaml option, then OS_CLIENT_CONFIG_FILE before it; same names as openstacksdk.
    assert sorted(rest.read_clouds(clouds_yaml)) == of.cloud_names(clouds_yaml)
    other = tmp_path / 'other.yaml'
    other.write_text(yaml.safe_dump({'clouds': {'solo': FAST['plain']}}))
    monkeypatch.setenv('OS_CLIENT_CONFIG_FILE', str(other))
    assert sorted(rest.read_clouds(clouds_yaml)) == of.cloud_names(clouds_yaml) == ['secret', 'solo']  # secure.yaml adds to it
    # Without the option: the search path (here the current directory).
    monkeypatch.delenv('OS_CLIENT_CONFIG_FILE')
    assert sorted(rest.read_clouds()) == sorted(rest.read_clouds(clouds_yaml))
    # A cloud made from OS_* variables: openstacksdk's business.
    monkeypatch.setenv('OS_AUTH_URL', 'http://k:5000/v3')
    assert rest.read_clouds(clouds_yaml) is None
    assert 'envvars' in of.cloud_names(clouds_yaml)


def test_token_requests_are_keystoneauths(clouds_yaml, tmp_path, monkeypatch):
    """The thin client asks Keystone for a token with the body keystoneauth sends."""
    with FakeCloud([]) as fake:
        entries = {
            'pw': fake.cloud(),
            'ids': fake.cloud(auth={'auth_url': fake.url + '/v3', 'user_id': 'u1', 'password': PASSWORD, 'project_id': 'p1'}),
            'appcred': fake.cloud(auth_type='v3applicationcredential', auth={
                'auth_url': fake.url + '/v3', 'application_credential_id': 'ac', 'application_credential_secret': 's'}),
        }
        path = tmp_path / 'fake.yaml'
        path.write_text(yaml.safe_dump({'clouds': entries}))
        for name in entries:
            del fake.requests[:]
            client = rest.Client(rest.cloud_settings(name, None, str(path)), 5)
            try:
                client.authenticate()
            except rest.OpenStackHTTPError:
                pass  # the fake only knows passwords
            sdk = of.load_cloud_config(name, None, str(path), auth_type=None if name == 'appcred' else 'v3password')
            try:
                sdk.get_session().get_token()
            except Exception:  # pylint: disable=broad-except
                pass
            posts = [body for method, _path, _headers, body in fake.requests if method == 'POST']
            assert len(posts) == 2 and posts[0] == posts[1], name


def test_client_token_catalog_pages_and_errors(tmp_path):
    servers = [nova_server('ml-gpu-%d' % i, index=i) for i in range(1, 6)]
    with FakeCloud(servers, page=2) as fake:
        path = tmp_path / 'fake.yaml'
        path.write_text(yaml.safe_dump({'clouds': {'a': fake.cloud(), 'b': fake.cloud(region_name='R2'),
                                                   'bad': fake.cloud(auth=dict(fake.cloud()['auth'], password='wrong'))}}))
        clouds = rest.read_clouds(str(path))
        tokens = rest.Tokens()
        client = rest.Client(rest.cloud_settings('a', None, clouds=clouds), 5, tokens)
        client.authenticate()
        assert client.endpoint('compute') == fake.url + '/v2.1'  # public, region R1 (not internal)
        assert [s['name'] for s in client.servers()] == [s['name'] for s in servers]  # three pages
        gets = [(p, h) for m, p, h, _b in fake.requests if m == 'GET']
        assert len(gets) == 3 and all(h['openstack-api-version'] == 'compute 2.47' for _p, h in gets)
        # Same identity, other region: no second token request.
        other = rest.Client(rest.cloud_settings('b', None, clouds=clouds), 5, tokens)
        other.authenticate()
        assert other.endpoint('compute') == fake.url + '/r2/v2.1'
        assert len([r for r in fake.requests if r[0] == 'POST']) == 1
        bad = rest.Client(rest.cloud_settings('bad', None, clouds=clouds), 5, tokens)
        with pytest.raises(rest.OpenStackHTTPError, match=r'POST .*/v3/auth/tokens: HTTP 401: The request you have made requires auth'):
            bad.authenticate()
        client.settings = dict(client.settings, compute_endpoint_override=fake.url + '/nowhere')
        with pytest.raises(rest.OpenStackHTTPError, match='HTTP 404: nothing at /nowhere/servers/detail'):
            client.servers()
    # The cloud is gone: connection refused, said with the URL.
    with pytest.raises(rest.FederationError, match=r'GET http://127\.0\.0\.1:\d+/nowhere/servers/detail: .*refused'):
        client.servers()


def test_catalog_endpoint():
    catalog = [{'type': 'compute', 'endpoints': [{'interface': 'public', 'region_id': 'A', 'url': 'a'},
                                                 {'interface': 'public', 'region': 'B', 'url': 'b'}]}]
    assert rest.catalog_endpoint(catalog, 'compute') == 'a'
    assert rest.catalog_endpoint(catalog, 'compute', 'public', 'B') == 'b'
    assert rest.catalog_endpoint(catalog, 'compute', 'internal') is None
    assert rest.catalog_endpoint(catalog, 'network') is None

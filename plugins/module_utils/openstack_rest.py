# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A thin OpenStack client for the read-only calls of the inventory plugin.

openstacksdk costs about half a second to import (keystoneauth and requests
with it), more than the two requests the inventory makes per cloud.  This
module reads the common shapes of ``clouds.yaml`` the way openstacksdk reads
them (:func:`cloud_settings`), gets a Keystone v3 token with its service
catalog and makes JSON GETs with the standard library only.  For any other
shape (vendor profiles, region lists, other auth types, an unversioned auth
URL that needs discovery, clouds from ``OS_*`` variables...) it answers None
and the caller uses openstacksdk through
:func:`openstack_federation.load_cloud_config`, the shared source of cloud
configuration: the fast path never guesses.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import threading

from ansible_collections.fedgpu.platform.plugins.module_utils.openstack_federation import FederationError

# openstacksdk's config search path (openstack.config.loader), Linux only.
_SUFFIXES = ('.yaml', '.yml', '.json')
# Variables that only select or locate a cloud: others make openstacksdk add a cloud of its own (``envvars``).
_SELECTORS = ('OS_CLOUD', 'OS_REGION_NAME', 'OS_CLIENT_CONFIG_FILE', 'OS_CLIENT_SECURE_FILE', 'OS_CLOUD_NAME')
# Cloud keys the fast path understands; other keys of other services are ignored, anything else means openstacksdk.
_CLOUD_KEYS = frozenset(('auth', 'auth_type', 'region_name', 'interface', 'identity_api_version', 'verify', 'cacert', 'cert', 'key',
                         'insecure', 'api_timeout', 'compute_api_version', 'compute_endpoint_override', 'identity_interface',
                         'floating_ip_source', 'image_format', 'image_api_use_tasks', 'networks', 'nat_destination', 'force_ipv4',
                         'prefer_ipv6', 'disable_vendor_agent', 'requires_floating_ip', 'split_loggers', 'secgroup_source'))
_OTHER_SERVICE_SUFFIXES = ('_api_version', '_endpoint_override', '_interface', '_service_type', '_service_name', '_endpoint')
_AUTH_KEYS = {
    'password': frozenset(('auth_url', 'username', 'user_id', 'password', 'user_domain_name', 'user_domain_id', 'project_name',
                           'project_id', 'project_domain_name', 'project_domain_id', 'system_scope')),
    'v3applicationcredential': frozenset(('auth_url', 'application_credential_id', 'application_credential_secret',
                                          'application_credential_name', 'username', 'user_id', 'user_domain_name', 'user_domain_id')),
    'token': frozenset(('auth_url', 'token', 'project_name', 'project_id', 'project_domain_name', 'project_domain_id', 'system_scope')),
}
_AUTH_TYPES = {'password': 'password', 'v3password': 'password', 'v3applicationcredential': 'v3applicationcredential',
               'token': 'token', 'v3token': 'token'}
COMPUTE_MICROVERSION = '2.47'
# Compute 2.47 embeds each server's flavor, with its extra specs, in the server.
SERVERS_HEADERS = {'OpenStack-API-Version': 'compute ' + COMPUTE_MICROVERSION, 'X-OpenStack-Nova-API-Version': COMPUTE_MICROVERSION,
                   'Accept': 'application/json'}


def next_page(body):
    """The ``next`` link of a page of ``GET /servers/detail``, or None on the last page."""
    return next((link['href'] for link in body.get('servers_links') or [] if link.get('rel') == 'next'), None)


def _search_path():
    """openstacksdk's CONFIG_SEARCH_PATH: the current directory, the user's and the site's config directories."""
    home = os.environ.get('XDG_CONFIG_HOME') or os.path.expanduser(os.path.join('~', '.config'))
    site = (os.environ.get('XDG_CONFIG_DIRS') or '/etc/xdg').split(os.pathsep)[0]
    dirs = [os.getcwd(), os.path.join(home, 'openstack'), os.path.expanduser(os.path.join('~', '.config', 'openstack')),
            os.path.join(site, 'openstack'), '/etc/openstack']
    return dirs


def _first_file(candidates):
    """(path, data) of the first candidate that exists and parses, as openstacksdk picks it."""
    for path in candidates:
        if not path or not os.path.exists(path):
            continue
        try:
            with open(path) as f:
                if path.endswith('json'):
                    return path, json.load(f)
                import yaml  # pylint: disable=import-outside-toplevel
                return path, yaml.safe_load(f)
        except (IOError, OSError):
            continue  # not readable: openstacksdk goes on to the next one
        except ValueError:
            return path, None  # openstacksdk warns and goes on: leave that to it
        except Exception:  # pylint: disable=broad-except
            return path, None  # YAML error
    return None, {}


def _merge(old, new):
    """openstacksdk's merge of secure.yaml into clouds.yaml (nested dict update)."""
    out = dict(old)
    for key, value in new.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def read_clouds(clouds_yaml=None):
    """The ``clouds`` of ``clouds.yaml`` merged with ``secure.yaml``, as openstacksdk finds them.

    Returns None where openstacksdk would see something else (a cloud made
    from ``OS_*`` variables, a file it would skip or refuse, a snap's home):
    the caller then asks openstacksdk.
    """
    env = os.environ
    if env.get('SNAP_REAL_HOME') or [k for k in env if k.startswith('OS_') and not k.startswith(('OS_TEST', 'OS_STD', 'OS_LOG'))
                                     and k not in _SELECTORS]:
        return None
    dirs = _search_path()
    files = [env.get('OS_CLIENT_CONFIG_FILE')] + ([clouds_yaml] if clouds_yaml else [os.path.join(d, 'clouds' + s) for d in dirs for s in _SUFFIXES])
    _path, config = _first_file(files)
    _secure_path, secure = _first_file([env.get('OS_CLIENT_SECURE_FILE')] + [os.path.join(d, 'secure' + s) for d in dirs for s in _SUFFIXES])
    if config is None or secure is None or not isinstance(config, dict) or not isinstance(secure, dict):
        return None
    if secure:
        config = _merge(config, secure)
    clouds = config.get('clouds') or {}
    return clouds if isinstance(clouds, dict) else None


def _other_service_key(key):
    return key.endswith(_OTHER_SERVICE_SUFFIXES) and not key.startswith(('compute_', 'identity_'))


def cloud_settings(cloud, region=None, clouds_yaml=None, clouds=None):
    """What the fast path needs to query ``cloud`` (in ``region``), or None for openstacksdk.

    A dict: ``name``, ``region`` (as openstacksdk names it: the one asked
    for, else the cloud's ``region_name``, else ''), ``auth_url``,
    ``auth_type`` (password, v3applicationcredential or token), ``auth``,
    ``interface``, ``compute_endpoint_override``, ``verify`` (False, True or
    a CA file) and ``cert`` (None, a path or (cert, key)).  ``clouds``: what
    :func:`read_clouds` returned, to read the files once.
    """
    if clouds is None:
        clouds = read_clouds(clouds_yaml)
    if clouds is None or not isinstance(clouds.get(cloud), dict):
        return None  # openstacksdk says what is wrong
    config = clouds[cloud]
    for key, value in config.items():
        if key not in _CLOUD_KEYS and not _other_service_key(key):
            return None  # profile, cloud, regions, auth_methods, compute_interface, ...
        if isinstance(value, str) and '{' in value:
            return None  # openstacksdk formats these
    region_name = config.get('region_name')
    if region_name is not None and (not isinstance(region_name, str) or ',' in region_name):
        return None
    if region and region_name and region != region_name:
        return None  # openstacksdk refuses it, with its message
    auth_type = _AUTH_TYPES.get(config.get('auth_type') or 'password')
    auth = config.get('auth')
    if not auth_type or not isinstance(auth, dict) or str(config.get('identity_api_version', '3')) not in ('3', '3.0'):
        return None
    if set(auth) - _AUTH_KEYS[auth_type] or not all(isinstance(v, (str, int)) for v in auth.values()):
        return None
    auth = dict((k, str(v)) for k, v in auth.items())
    if not auth.get('auth_url', '').rstrip('/').endswith('/v3'):
        return None  # an unversioned URL needs version discovery
    if ((auth.get('username') and not (auth.get('user_domain_name') or auth.get('user_domain_id')))
            or (auth.get('project_name') and not (auth.get('project_domain_name') or auth.get('project_domain_id')))):
        return None  # openstacksdk's defaults for the domains apply
    verify = config.get('verify', True)
    if config.get('insecure') in (True, 'true', 'True', 'yes'):
        verify = False
    if verify and config.get('cacert'):
        verify = os.path.expanduser(str(config['cacert']))
    cert = config.get('cert')
    if cert and config.get('key'):
        cert = (os.path.expanduser(str(cert)), os.path.expanduser(str(config['key'])))
    elif cert:
        cert = os.path.expanduser(str(cert))
    return {
        'name': cloud,
        'region': region or region_name or '',
        'auth_url': auth['auth_url'].rstrip('/'),
        'auth_type': auth_type,
        'auth': auth,
        'interface': str(config.get('interface') or 'public').replace('URL', ''),
        'compute_endpoint_override': config.get('compute_endpoint_override'),
        'verify': verify,
        'cert': cert or None,
    }


def _domain(auth, prefix):
    if auth.get(prefix + '_domain_id'):
        return {'id': auth[prefix + '_domain_id']}
    return {'name': auth[prefix + '_domain_name']}


def token_request(settings):
    """The body of ``POST /v3/auth/tokens`` for ``settings`` (see :func:`cloud_settings`)."""
    auth = settings['auth']
    if settings['auth_type'] == 'v3applicationcredential':
        cred = {'secret': auth.get('application_credential_secret')}
        if auth.get('application_credential_id'):
            cred['id'] = auth['application_credential_id']
        else:
            cred['name'] = auth.get('application_credential_name')
            cred['user'] = {'id': auth['user_id']} if auth.get('user_id') else {'name': auth.get('username'), 'domain': _domain(auth, 'user')}
        return {'auth': {'identity': {'methods': ['application_credential'], 'application_credential': cred}}}
    if settings['auth_type'] == 'token':
        identity = {'methods': ['token'], 'token': {'id': auth.get('token')}}
    else:
        user = {'id': auth['user_id']} if auth.get('user_id') else {'name': auth.get('username'), 'domain': _domain(auth, 'user')}
        user['password'] = auth.get('password')
        identity = {'methods': ['password'], 'password': {'user': user}}
    body = {'identity': identity}
    if auth.get('project_id'):
        body['scope'] = {'project': {'id': auth['project_id']}}
    elif auth.get('project_name'):
        body['scope'] = {'project': {'name': auth['project_name'], 'domain': _domain(auth, 'project')}}
    elif auth.get('system_scope'):
        body['scope'] = {'system': {auth['system_scope']: True}}
    return {'auth': body}


def catalog_endpoint(catalog, service_type, interface='public', region=''):
    """The URL of ``service_type`` in a v3 service catalog, as keystoneauth picks it (first match)."""
    for service in catalog or []:
        if service.get('type') != service_type:
            continue
        for endpoint in service.get('endpoints') or []:
            if endpoint.get('interface') != interface:
                continue
            if region and region not in (endpoint.get('region_id'), endpoint.get('region')):
                continue
            return endpoint.get('url')
    return None


class OpenStackHTTPError(FederationError):
    """An API answered with an HTTP error."""

    def __init__(self, method, url, status, body):
        detail = body
        try:
            data = json.loads(body)
            # {"error": {"message": ...}} (Keystone) or {"itemNotFound": {"message": ...}} (Nova)
            inner = next(iter(data.values())) if isinstance(data, dict) and len(data) == 1 else data
            detail = inner.get('message') or detail if isinstance(inner, dict) else detail
        except (ValueError, AttributeError, StopIteration):
            pass
        super(OpenStackHTTPError, self).__init__('%s %s: HTTP %s: %s' % (method, url, status, str(detail).strip()[:300]))
        self.status = status


class Tokens(object):
    """Tokens shared by the clouds of one query: one token request per identity (auth URL and credentials).

    Several cloud entries that differ only in region (or name) then cost one
    token, not one each; concurrent asks for the same identity wait for one request.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._entries = {}

    def get(self, key, fetch):
        with self._lock:
            entry = self._entries.setdefault(key, {'lock': threading.Lock()})
        with entry['lock']:
            if 'value' not in entry:
                entry['value'] = fetch()
            return entry['value']


class Client(object):
    """Keystone v3 token and JSON GETs for one cloud (see :func:`cloud_settings`); standard library only."""

    def __init__(self, settings, timeout, tokens=None):
        import urllib.request  # pylint: disable=import-outside-toplevel
        self.settings = settings
        self.timeout = timeout
        self.tokens = tokens or Tokens()
        handlers = []
        verify, cert = settings['verify'], settings['cert']
        if verify is not True or cert:
            import ssl  # pylint: disable=import-outside-toplevel
            context = ssl.create_default_context(cafile=verify if isinstance(verify, str) else None)
            if verify is False:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            if cert:
                context.load_cert_chain(*(cert if isinstance(cert, tuple) else (cert,)))
            handlers.append(urllib.request.HTTPSHandler(context=context))
        self._opener = urllib.request.build_opener(*handlers)
        self.token = None
        self.catalog = None

    def request(self, method, url, body=None, headers=None):
        """(headers, decoded JSON body) of one request; OpenStackHTTPError on an HTTP error, FederationError on others."""
        import urllib.error  # pylint: disable=import-outside-toplevel
        import urllib.request  # pylint: disable=import-outside-toplevel
        all_headers = {'Accept': 'application/json', 'User-Agent': 'fedgpu.platform-openstack-federation'}
        if body is not None:
            all_headers['Content-Type'] = 'application/json'
        if self.token:
            all_headers['X-Auth-Token'] = self.token
        all_headers.update(headers or {})
        req = urllib.request.Request(url, data=json.dumps(body).encode('utf-8') if body is not None else None, headers=all_headers,
                                     method=method)
        try:
            with self._opener.open(req, timeout=self.timeout) as resp:
                data = resp.read()
                return resp.headers, json.loads(data.decode('utf-8')) if data else {}
        except urllib.error.HTTPError as exc:
            raise OpenStackHTTPError(method, url, exc.code, exc.read().decode('utf-8', 'replace'))
        except urllib.error.URLError as exc:  # refused, unknown host, TLS
            raise FederationError('%s %s: %s' % (method, url, exc.reason))
        except (OSError, ValueError) as exc:  # timed out, reset; not JSON
            raise FederationError('%s %s: %s' % (method, url, exc or type(exc).__name__))

    def _fetch_token(self):
        url = self.settings['auth_url'] + '/auth/tokens'
        headers, body = self.request('POST', url, token_request(self.settings))
        return headers.get('X-Subject-Token'), (body.get('token') or {}).get('catalog') or []

    def authenticate(self):
        key = json.dumps([self.settings['auth_url'], token_request(self.settings), str(self.settings['verify']), self.settings['cert']],
                         sort_keys=True)
        self.token, self.catalog = self.tokens.get(key, self._fetch_token)
        if not self.token:
            raise FederationError('%s: Keystone gave no token' % self.settings['auth_url'])

    def endpoint(self, service_type):
        override = self.settings.get('%s_endpoint_override' % service_type)
        if override:
            return override
        url = catalog_endpoint(self.catalog, service_type, self.settings['interface'], self.settings['region'])
        if not url:
            raise FederationError('no %s endpoint (interface %s%s) in the service catalog' % (
                service_type, self.settings['interface'], ', region %s' % self.settings['region'] if self.settings['region'] else ''))
        return url

    def servers(self):
        """Every server of the project, detailed, with its flavor's extra specs embedded (compute 2.47)."""
        url = self.endpoint('compute').rstrip('/') + '/servers/detail'
        servers = []
        while url:
            _headers, body = self.request('GET', url, headers=SERVERS_HEADERS)
            servers.extend(body.get('servers') or [])
            url = next_page(body)
        return servers

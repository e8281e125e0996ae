# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A loopback HTTP stand-in for Keystone v3 and Nova: what the inventory plugin asks of a cloud.

``POST /v3/auth/tokens`` checks the password and answers a token with a
service catalog (compute in two regions); ``GET /v2.1/servers/detail`` answers
the servers, ``page`` at a time with a ``next`` link, and 401 without the
token; each answer comes ``delay`` seconds late (a far-away cloud).
``requests`` records (method, path, headers with lower-case names, JSON
body) of every request.
"""
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOKEN = 'fake-token'
PASSWORD = 'secret'


class FakeCloud(object):

    def __init__(self, servers, page=2, delay=0):
        self.servers = servers
        self.page = page
        self.delay = delay
        self.requests = []
        cloud = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self, status, body, headers=None):
                if cloud.delay:
                    time.sleep(cloud.delay)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):  # noqa: N802 pylint: disable=invalid-name
                length = int(self.headers.get('Content-Length') or 0)
                body = json.loads(self.rfile.read(length) or b'{}')
                cloud.requests.append(('POST', self.path, dict((k.lower(), v) for k, v in self.headers.items()), body))
                identity = body.get('auth', {}).get('identity', {})
                password = identity.get('password', {}).get('user', {}).get('password')
                if self.path != '/v3/auth/tokens' or password != PASSWORD:
                    return self._answer(401, {'error': {'code': 401, 'title': 'Unauthorized', 'message': 'The request you have made requires '
                                                        'authentication.'}})
                base = 'http://%s:%d' % self.server.server_address[:2]
                catalog = [{'type': 'identity', 'endpoints': [{'interface': 'public', 'region_id': 'R1', 'url': base + '/v3'}]},
                           {'type': 'compute', 'endpoints': [
                               {'interface': 'internal', 'region_id': 'R1', 'region': 'R1', 'url': 'http://192.0.2.1/v2.1'},
                               {'interface': 'public', 'region_id': 'R1', 'region': 'R1', 'url': base + '/v2.1'},
                               {'interface': 'public', 'region_id': 'R2', 'region': 'R2', 'url': base + '/r2/v2.1'}]}]
                domain = {'id': 'default', 'name': 'Default'}
                token = {'catalog': catalog, 'methods': identity.get('methods'), 'expires_at': '2999-01-01T00:00:00.000000Z',
                         'issued_at': '2026-01-01T00:00:00.000000Z', 'user': {'id': 'u1', 'name': 'u', 'domain': domain},
                         'project': {'id': 'p1', 'name': 'p', 'domain': domain}, 'roles': [{'id': 'r1', 'name': 'member'}]}
                return self._answer(201, {'token': token}, {'X-Subject-Token': TOKEN})

            def do_GET(self):  # noqa: N802 pylint: disable=invalid-name
                cloud.requests.append(('GET', self.path, dict((k.lower(), v) for k, v in self.headers.items()), None))
                if self.headers.get('X-Auth-Token') != TOKEN:
                    return self._answer(401, {'error': {'message': 'no token'}})
                path, _sep, query = self.path.partition('?')
                if not path.endswith('/v2.1/servers/detail'):
                    return self._answer(404, {'itemNotFound': {'code': 404, 'message': 'nothing at %s' % path}})
                start = int(query.split('=', 1)[1]) if query.startswith('start=') else 0
                chunk = cloud.servers[start:start + cloud.page]
                body = {'servers': chunk}
                if start + cloud.page < len(cloud.servers):
                    body['servers_links'] = [{'rel': 'next', 'href': 'http://%s:%d%s?start=%d' % (
                        self.server.server_address[:2] + (path, start + cloud.page))}]
                return self._answer(200, body)

        self.httpd = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.url = 'http://127.0.0.1:%d' % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    def cloud(self, **extra):
        """A clouds.yaml entry for this cloud (password, project scope, region R1)."""
        entry = {'auth': {'auth_url': self.url + '/v3', 'username': 'u', 'password': PASSWORD, 'project_name': 'p',
                          'user_domain_name': 'Default', 'project_domain_name': 'Default'},
                 'region_name': 'R1', 'identity_api_version': 3}
        entry.update(extra)
        return entry


def nova_server(name, cluster='ml', group='gpu', index=1, fixed='10.42.1.11', specs=None):
    return {'id': 'id-' + name, 'name': name, 'status': 'ACTIVE', 'tenant_id': 'p1', 'key_name': None,
            'OS-EXT-AZ:availability_zone': 'nova', 'image': {'id': 'img'},
            'metadata': {'fedgpu_cluster': cluster, 'fedgpu_group': group, 'fedgpu_index': str(index), 'fedgpu_frontend': 'false'},
            'addresses': {'fedgpu-%s' % cluster: [{'version': 4, 'addr': fixed, 'OS-EXT-IPS:type': 'fixed'}]},
            'flavor': {'original_name': 'g1.a100', 'vcpus': 8, 'ram': 32768, 'extra_specs': specs or {'resources:VGPU': '1', 'gpu:model': 'A100'}}}

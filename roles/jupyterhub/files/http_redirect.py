# Managed by fedgpu.platform.jupyterhub: answers plain HTTP with a permanent
# redirect to the same path over HTTPS (JupyterHub's proxy serves one port).
"""Redirect every HTTP request to HTTPS."""
import argparse
import http.server


class Redirect(http.server.BaseHTTPRequestHandler):
    https_port = 443
    server_version = "fedgpu-redirect"
    sys_version = ""

    def _redirect(self):
        host = (self.headers.get("Host") or self.server.server_name).strip()
        if host.startswith("["):
            host = host[: host.index("]") + 1]
        else:
            host = host.split(":")[0]
        port = "" if self.https_port == 443 else ":%d" % self.https_port
        self.send_response(301)
        self.send_header("Location", "https://%s%s%s" % (host, port, self.path))
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_OPTIONS = do_PATCH = _redirect

    def log_message(self, format, *args):  # noqa: A002 - journald has the requests' times
        pass


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ip", default="")
    parser.add_argument("--port", type=int, default=80)
    parser.add_argument("--https-port", type=int, default=443)
    args = parser.parse_args()
    Redirect.https_port = args.https_port
    http.server.ThreadingHTTPServer((args.ip, args.port), Redirect).serve_forever()


if __name__ == "__main__":
    main()

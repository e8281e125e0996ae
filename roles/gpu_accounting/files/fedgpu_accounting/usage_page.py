# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The researchers' usage page: a JupyterHub service that shows the logged-in user their own GPU usage, and only theirs.

The hub proxies /services/<name>/ to this process; JupyterHub's OAuth (the
service library's HubOAuthenticated) tells it who the browser's user is, and
every figure is then read with report.fetch(user=<that name>) through the
read-only reporting role (a standby preferred): there is no parameter that
names another user. The figures are report.py's (same definitions, same
roll-ups): totals, by flavour or MIG profile, each session and job, and the
CPU and memory rightsizing of the user's single-GPU workloads.

Optionally (``--stop-idle-after SECONDS``, off by default) the same process
stops a notebook server that has held a GPU or MIG device without using it
for that long: it reads the node's collector (``--metrics-url``, the
``fedgpu_gpu_allocated_idle_seconds`` of workloads of kind jupyter), stops the
user's server through the hub's API and leaves the user a notice
(``--notices DIR/<user>.json``) that the hub shows on its pages until their
next server runs.

Pure parts (page_data, render_html, idle_servers, notice) are unit-tested;
make_app() and main() need tornado and JupyterHub's service library (the
hub's Python) and psycopg2.
"""

import argparse
import asyncio
import html
import json
import logging
import os
import re
import sys
import time
import urllib.error
import urllib.request

from . import report

PERIODS = (1, 7, 30, 90)
LOG = logging.getLogger("fedgpu-usage-page")

_CSS = """body{font-family:sans-serif;margin:2em;max-width:80em;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em}th,td{border:1px solid #ccc;padding:0.3em 0.6em}
td.n{text-align:right}th{background:#f3f3f3;text-align:left}.note{color:#555;font-size:90%}
nav a{margin-right:1em}"""


# ----------------------------------------------------------------------------------------------- figures


def page_data(data):
    """The page's figures from report.fetch()'s result for one user (a JSON-able dict)."""
    total = report.summarise(data["hourly"], "user")[1]
    by_flavour = report.summarise(data["hourly"], "flavour")[0]
    by_workload = report.summarise(data["hourly"], "workload")[0]
    first = {}
    for row in data["hourly"]:
        wid = row.get("workload_id")
        if wid and wid not in first:
            first[wid] = row
        if wid and row["hour"] < first[wid]["hour"]:
            first[wid] = row
    workloads = []
    for item in by_workload:
        row = first.get(item["workload"], {})
        entry = {"workload_id": item["workload"], "kind": row.get("kind"), "community": row.get("community"),
                 "flavour": row.get("flavour") or row.get("mig_profile") or row.get("model"),
                 "first_hour": report.iso(row["hour"]) if row else None}
        entry.update({k: item[k] for k in ("allocated_gpu_hours", "busy_gpu_hours", "idle_fraction", "gpus")})
        workloads.append(entry)
    workloads.sort(key=lambda w: (w["first_hour"] or "", w["workload_id"]), reverse=True)
    total = {k: v for k, v in total.items() if k not in ("user", "free_gpu_hours")}
    return {"user": data["user"], "from": report.iso(data["start"]), "to": report.iso(data["end"]),
            "total": total, "by_flavour": [{k: v for k, v in f.items() if k != "free_gpu_hours"} for f in by_flavour],
            "workloads": workloads, "rightsizing": report.rightsizing(data["usage"])}


def load(conn, user, days, now=None):
    """page_data() of ``user`` for the last ``days`` days, read from ``conn``."""
    end = time.time() if now is None else now
    return page_data(report.fetch(conn, end - days * 86400, end, user=user, rightsizing=True))


# ----------------------------------------------------------------------------------------------- HTML


def _fmt(value, digits=3):
    if value is None:
        return "-"
    if isinstance(value, float):
        return "%.*f" % (digits, value)
    return str(value)


def _table(columns, rows):
    """An HTML table: columns = [(key, heading, numeric)]; every cell escaped."""
    out = ["<table><tr>" + "".join("<th>%s</th>" % html.escape(column[1]) for column in columns) + "</tr>"]
    for row in rows:
        out.append("<tr>" + "".join('<td%s>%s</td>' % (' class="n"' if num else "", html.escape(_fmt(row.get(k))))
                                    for k, _heading, num in columns) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def _period(days):
    return "last day" if days == 1 else "last %d days" % days


def render_html(figures, days, prefix="/"):
    """The page of one user's figures (page_data()); ``prefix`` is the service's URL prefix."""
    esc = html.escape
    total = figures["total"]
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             "<title>GPU usage of %s</title><style>%s</style></head><body>" % (esc(figures["user"]), _CSS),
             "<h1>GPU usage of %s</h1>" % esc(figures["user"]),
             "<nav>%s<a href=\"%s\">back to the hub</a></nav>" % (
                 "".join('<a href="%s?days=%d">%s</a>' % (esc(prefix), d, _period(d)) for d in PERIODS),
                 esc(re.sub(r"services/[^/]+/?$", "hub/home", prefix)))]
    parts.append("<p>From %s to %s (UTC, %s).</p>" % (esc(figures["from"]), esc(figures["to"]), _period(days)))
    if not figures["workloads"]:
        parts.append("<p>No GPU or MIG device was held by your notebooks or jobs in this period.</p>")
    parts.append("<h2>Total</h2>")
    parts.append(_table([("allocated_gpu_hours", "GPU-hours allocated", True), ("busy_gpu_hours", "GPU-hours busy", True),
                         ("idle_gpu_hours", "GPU-hours idle", True), ("idle_fraction", "idle fraction", True),
                         ("gpus", "GPUs (MIG slices as fractions)", True), ("sessions", "notebook sessions", True),
                         ("jobs", "HTCondor jobs", True)], [total]))
    parts.append("<h2>By flavour or MIG profile</h2>")
    parts.append(_table([("flavour", "flavour", False), ("allocated_gpu_hours", "GPU-hours allocated", True),
                         ("busy_gpu_hours", "GPU-hours busy", True), ("idle_fraction", "idle fraction", True),
                         ("devices", "devices", True)], figures["by_flavour"]))
    parts.append("<h2>Sessions and jobs</h2>")
    parts.append(_table([("workload_id", "session or job", False), ("kind", "kind", False),
                         ("community", "community", False), ("flavour", "flavour or device", False),
                         ("first_hour", "first hour", False), ("allocated_gpu_hours", "GPU-hours allocated", True),
                         ("busy_gpu_hours", "GPU-hours busy", True), ("idle_fraction", "idle fraction", True)],
                        figures["workloads"]))
    parts.append("<h2>CPU and memory: requested against used</h2>")
    parts.append(_table([("workload_id", "session or job", False), ("requested_cpus", "CPUs requested", True),
                         ("cpu_p95", "CPUs used (p95)", True), ("suggested_cpus", "CPUs suggested", True),
                         ("requested_mem_mib", "memory requested (MiB)", True),
                         ("mem_p95_mib", "memory used (p95, MiB)", True),
                         ("suggested_mem_mib", "memory suggested (MiB)", True)], figures["rightsizing"]))
    parts.append('<p class="note">GPU-hours count MIG slices as fractions of a GPU (a 1g.10gb slice of an A100 is 1/7). '
                 "Busy: the device reported utilisation above 0, or, where it reports none (MIG), a process ran on "
                 "it. Suggested: the 95th percentile with 25%% headroom. The same figures as the platform's "
                 'accounting reports; <a href="%s?days=%d&amp;format=json">as JSON</a>.</p>' % (esc(prefix), days))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def parse_days(text, default):
    """The period asked for (?days=): one of PERIODS, else ``default``."""
    try:
        days = int(text)
    except (TypeError, ValueError):
        return default
    return days if days in PERIODS else default


# ----------------------------------------------------------------------------------------------- idle servers


_METRIC = re.compile(r'^fedgpu_gpu_allocated_idle_seconds\{(?P<labels>[^}]*)\}\s+(?P<value>\S+)\s*$')
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def idle_servers(metrics_text, threshold):
    """{user: {"seconds", "device", "mig_profile", "workload"}}: notebook servers whose device has been held idle
    for ``threshold`` seconds or more, from the collector's Prometheus text (the longest per user)."""
    out = {}
    for line in metrics_text.splitlines():
        m = _METRIC.match(line)
        if not m:
            continue
        labels = {k: v.encode().decode("unicode_escape") for k, v in _LABEL.findall(m.group("labels"))}
        try:
            seconds = float(m.group("value"))
        except ValueError:
            continue
        user = labels.get("user")
        if labels.get("kind") != "jupyter" or not user or seconds < threshold:
            continue
        if user not in out or seconds > out[user]["seconds"]:
            out[user] = {"seconds": seconds, "device": labels.get("device", ""),
                         "mig_profile": labels.get("mig_profile", ""), "workload": labels.get("workload", "")}
    return out


def duration(seconds):
    """'45 seconds', '75 minutes', '3.5 hours'."""
    if seconds < 120:
        return "%d seconds" % seconds
    if seconds < 3 * 3600:
        return "%d minutes" % (seconds // 60)
    return "%.1f hours" % (seconds / 3600.0)


def notice(user, idle, now=None):
    """The notice left for ``user`` whose server was stopped: {"user", "at", "message", ...idle}."""
    now = time.time() if now is None else now
    what = "MIG %s slice" % idle["mig_profile"] if idle.get("mig_profile") else "GPU"
    message = ("Your notebook server was stopped at %s UTC: its %s had been allocated and idle for %s. "
               "Start it again when you need the GPU; your files are kept."
               % (time.strftime("%Y-%m-%d %H:%M", time.gmtime(now)), what, duration(idle["seconds"])))
    out = {"user": user, "at": now, "message": message}
    out.update({k: idle.get(k) for k in ("seconds", "device", "mig_profile", "workload")})
    return out


def write_notice(directory, entry):
    """Write ``entry`` as <directory>/<user>.json atomically (readable by the hub, which runs as root)."""
    path = os.path.join(directory, os.path.basename(entry["user"]) + ".json")
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(entry, f)
    os.replace(tmp, path)
    return path


class IdleStopper:
    """Stops notebook servers idle on a GPU past a threshold (one pass per call of run_once).

    ``fetch_metrics()`` returns the collector's text; ``stop(user)`` stops the user's default server and returns
    True when the hub accepted it (a server already stopped: False); stopped servers are noted in ``directory``.
    """

    def __init__(self, threshold, fetch_metrics, stop, directory, clock=time.time):
        self.threshold = threshold
        self.fetch_metrics = fetch_metrics
        self.stop = stop
        self.directory = directory
        self.clock = clock

    def run_once(self):
        stopped = []
        for user, idle in sorted(idle_servers(self.fetch_metrics(), self.threshold).items()):
            if self.stop(user):
                entry = notice(user, idle, self.clock())
                write_notice(self.directory, entry)
                LOG.warning("stopped %s's notebook server: %s", user, entry["message"])
                stopped.append(user)
        return stopped


# ----------------------------------------------------------------------------------------------- service


def _hub_request(method, path, token, api_url):
    req = urllib.request.Request(api_url.rstrip("/") + path, method=method,
                                 headers={"Authorization": "token " + token})
    with urllib.request.urlopen(req, timeout=30) as resp:  # the hub's API on this node
        return resp.status


def hub_stop(user, token, api_url):
    """DELETE /users/<user>/server: True when the hub stopped it or is stopping it (202/204)."""
    try:
        return _hub_request("DELETE", "/users/%s/server" % urllib.request.quote(user, safe=""), token, api_url) in (202, 204)
    except urllib.error.HTTPError as e:
        if e.code in (400, 404):  # not running (any more), or no such user
            return False
        raise


def make_app(dsn, prefix, default_days=30, connect=None):
    """The tornado application (JupyterHub's HubOAuth identifies the user)."""
    # pylint: disable=import-outside-toplevel,import-error
    from tornado import web
    from jupyterhub.services.auth import HubOAuthCallbackHandler, HubOAuthenticated

    if connect is None:
        import psycopg2
        connect = psycopg2.connect

    def query(user, days):
        conn = connect(dsn)
        try:
            return load(conn, user, days)
        finally:
            conn.close()

    class UsageHandler(HubOAuthenticated, web.RequestHandler):  # pylint: disable=abstract-method
        def set_default_headers(self):
            self.set_header("Cache-Control", "private, no-store")
            self.set_header("X-Content-Type-Options", "nosniff")
            self.set_header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")

        @web.authenticated
        async def get(self):
            user = self.get_current_user()["name"]
            days = parse_days(self.get_argument("days", ""), default_days)
            try:
                figures = await asyncio.get_running_loop().run_in_executor(None, query, user, days)
            except Exception as e:  # pylint: disable=broad-except
                LOG.error("reading %s's usage: %s", user, str(e).strip())
                self.set_status(503)
                self.finish("<!DOCTYPE html><p>The accounting database cannot be read just now; try again in a minute.</p>")
                return
            if self.get_argument("format", "") == "json":
                self.set_header("Content-Type", "application/json")
                self.finish(json.dumps(figures))
                return
            self.finish(render_html(figures, days, prefix))

    return web.Application([
        (prefix + "oauth_callback", HubOAuthCallbackHandler),
        (prefix, UsageHandler),
        (prefix.rstrip("/"), web.RedirectHandler, {"url": prefix}),
    ], cookie_secret=os.urandom(32))


def parser():
    p = argparse.ArgumentParser(prog="fedgpu-usage-page", description=__doc__.split("\n", 1)[0])
    p.add_argument("--dsn-file", default="", help="a file holding the reporting role's libpq connection string")
    p.add_argument("--address", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9480)
    p.add_argument("--days", type=int, default=30, choices=PERIODS, help="the period shown first")
    p.add_argument("--notices", default="", help="directory of the notices left for users (idle servers stopped)")
    p.add_argument("--stop-idle-after", type=int, default=0,
                   help="stop a notebook server idle on a GPU this many seconds (0: never)")
    p.add_argument("--check-every", type=int, default=60, help="seconds between checks for idle servers")
    p.add_argument("--metrics-url", default="http://127.0.0.1:9477/metrics", help="the node's collector")
    p.add_argument("--stop-idle-now", action="store_true",
                   help="check for idle servers once (--stop-idle-after), print the users stopped (JSON) and exit")
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(levelname)s %(message)s",
                        stream=sys.stderr if args.stop_idle_now else sys.stdout)
    token = os.environ.get("JUPYTERHUB_API_TOKEN", "")
    api_url = os.environ.get("JUPYTERHUB_API_URL", "http://127.0.0.1:8081/hub/api")

    def metrics():
        with urllib.request.urlopen(args.metrics_url, timeout=10) as resp:  # the collector on this node
            return resp.read().decode("utf-8", "replace")
    stopper = IdleStopper(args.stop_idle_after, metrics, lambda user: hub_stop(user, token, api_url), args.notices)
    if args.stop_idle_now:
        if args.stop_idle_after <= 0:
            sys.stderr.write("fedgpu-usage-page: --stop-idle-now needs --stop-idle-after SECONDS\n")
            return 2
        print(json.dumps(stopper.run_once()))
        return 0
    from tornado import ioloop  # pylint: disable=import-outside-toplevel,import-error
    with open(args.dsn_file, encoding="utf-8") as f:
        dsn = f.read().strip()
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/usage/")
    app = make_app(dsn, prefix, args.days)
    app.listen(args.port, args.address, xheaders=True)
    LOG.info("serving %s on %s:%d", prefix, args.address, args.port)
    if args.stop_idle_after > 0:
        async def check():
            try:
                await asyncio.get_running_loop().run_in_executor(None, stopper.run_once)
            except Exception as e:  # pylint: disable=broad-except
                LOG.error("checking for idle servers: %s", e)
        ioloop.PeriodicCallback(check, args.check_every * 1000).start()
        LOG.info("stopping notebook servers idle on a GPU for %d s (checked every %d s)",
                 args.stop_idle_after, args.check_every)
    ioloop.IOLoop.current().start()
    return 0


if __name__ == "__main__":
    sys.exit(main())

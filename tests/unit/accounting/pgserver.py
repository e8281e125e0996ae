# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A throwaway PostgreSQL server for the accounting tests and benchmarks.

Debian's PostgreSQL binaries (postgresql-15, installed by tools/bootstrap-host.sh)
run from a temporary directory: ``initdb`` as the ``postgres`` user (it refuses
root), TLS on with a self-signed certificate, listening on 127.0.0.1 only at a
free port. The accounting database is made as the platform makes it: an owner
role ``accounting`` applying the collection's migrations
(roles/accounting_db/files/migrations) and a read-only reporting role.
"""

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
MIGRATIONS = os.path.join(ROOT, "roles", "accounting_db", "files", "migrations")
OWNER_PASSWORD = "owner-test-password"
REPORTING_PASSWORD = "reporting-test-password"


def binaries():
    """The newest Debian PostgreSQL bin directory, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return os.path.dirname(found[-1]) if found else None


def missing_reason():
    """Why no server can run here, or None."""
    if not binaries():
        return "no PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb; Debian package postgresql-15)"
    try:
        import psycopg2  # noqa: F401  pylint: disable=unused-import,import-outside-toplevel
    except ImportError:
        return "psycopg2 is not installed (requirements.txt: psycopg2-binary)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no postgres user to run initdb as"
    return None


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``with Server() as srv: srv.dsn(...)``"""

    def __init__(self):
        self.bindir = binaries()
        self.dir = tempfile.mkdtemp(prefix="fedgpu-pg-")
        self.data = os.path.join(self.dir, "data")
        self.port = _free_port()
        self.user = None

    def _run(self, *argv):
        if os.geteuid() == 0:
            argv = ("runuser", "-u", "postgres", "--") + argv
        subprocess.run(argv, check=True, capture_output=True, text=True)

    def start(self):
        if os.geteuid() == 0:
            os.chown(self.dir, pwd.getpwnam("postgres").pw_uid, -1)
        self._run(os.path.join(self.bindir, "initdb"), "-D", self.data, "-U", "postgres", "--auth=trust",
                  "--no-sync", "-E", "UTF8", "--locale=C.UTF-8")
        self._run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                  "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", os.path.join(self.data, "server.key"),
                  "-out", os.path.join(self.data, "server.crt"))
        with open(os.path.join(self.data, "postgresql.auto.conf"), "a", encoding="utf-8") as conf:
            conf.write("listen_addresses = '127.0.0.1'\nport = %d\nunix_socket_directories = '%s'\nssl = on\n"
                       "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n" % (self.port, self.dir))
        with open(os.path.join(self.data, "pg_hba.conf"), "w", encoding="utf-8") as hba:
            hba.write("local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\n")
        self._run(os.path.join(self.bindir, "pg_ctl"), "-D", self.data, "-l", os.path.join(self.dir, "log"), "-w", "start")
        self._setup()
        return self

    def _setup(self):
        import psycopg2  # pylint: disable=import-outside-toplevel
        conn = psycopg2.connect(host=self.dir, port=self.port, user="postgres", dbname="postgres")
        conn.autocommit = True
        cur = conn.cursor()
        cur.execute("CREATE ROLE accounting LOGIN PASSWORD %s", (OWNER_PASSWORD,))
        cur.execute("CREATE ROLE accounting_reporting LOGIN PASSWORD %s", (REPORTING_PASSWORD,))
        cur.execute("CREATE DATABASE accounting OWNER accounting")
        conn.close()
        self.migrate()

    def migrate(self):
        """Apply every migration as the owner (what accounting_db's migrations.yml does)."""
        import psycopg2  # pylint: disable=import-outside-toplevel
        conn = psycopg2.connect(host=self.dir, port=self.port, user="postgres", dbname="accounting")
        with conn:
            cur = conn.cursor()
            cur.execute("ALTER DEFAULT PRIVILEGES FOR ROLE accounting IN SCHEMA public "
                        "GRANT SELECT ON TABLES TO accounting_reporting")
            cur.execute("GRANT USAGE ON SCHEMA public TO accounting_reporting")
            cur.execute("GRANT CREATE ON SCHEMA public TO accounting")
            for path in sorted(glob.glob(os.path.join(MIGRATIONS, "*.sql"))):
                with open(path, encoding="utf-8") as sql:
                    cur.execute("SET LOCAL ROLE accounting;\n" + sql.read())
        conn.close()

    def dsn(self, user="accounting", tls=True, **extra):
        """A libpq connection string: over TLS to 127.0.0.1 (as the platform's clients), or the local socket."""
        password = {"accounting": OWNER_PASSWORD, "accounting_reporting": REPORTING_PASSWORD}.get(user, "")
        parts = {"dbname": "accounting", "user": user, "port": self.port}
        if tls:
            parts.update(host="127.0.0.1", sslmode="require", password=password)
        else:
            parts.update(host=self.dir)
        parts.update(extra)
        return " ".join("%s=%s" % kv for kv in parts.items())

    def stop(self):
        try:
            self._run(os.path.join(self.bindir, "pg_ctl"), "-D", self.data, "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def wait_for(predicate, timeout=10.0, step=0.1):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return predicate()

# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The accounting tests import the collector's package as the nodes do (from
roles/gpu_accounting/files) and share one throwaway PostgreSQL server."""

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "roles", "gpu_accounting", "files"))

import pgserver  # noqa: E402  pylint: disable=wrong-import-position


@pytest.fixture(scope="session")
def pg_server():
    reason = pgserver.missing_reason()
    if reason:
        pytest.skip("SKIPPED: the accounting database tests need a PostgreSQL server: " + reason)
    srv = pgserver.Server().start()
    yield srv
    srv.stop()


@pytest.fixture
def pg(pg_server):
    """The server with empty accounting tables; a connection as the owner over TLS."""
    import psycopg2  # pylint: disable=import-outside-toplevel
    conn = psycopg2.connect(pg_server.dsn())
    with conn:
        conn.cursor().execute("TRUNCATE device, workload, allocation, gpu_sample, process_sample, workload_sample, "
                              "gpu_hourly")
    yield conn
    conn.close()

# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collector's durable local spool: samples wait here until the database has them.

A SQLite file (stdlib ``sqlite3``) in WAL mode with ``synchronous=FULL``: a
record that ``put`` returned for is on disk and survives a crash or a power
cut. ``take`` hands out the oldest records, ``ack`` deletes them once the
database committed them; a crash between the two ships them again, which the
database's unique keys make harmless. Past ``max_bytes`` the oldest records are
dropped first, and the count of dropped records is kept (a metric and a log
line say so).
"""

import json
import logging
import os
import sqlite3

LOG = logging.getLogger("fedgpu.spool")


class Spool:
    """Records (kind, row dict) in arrival order."""

    def __init__(self, path, max_bytes=256 * 1024 * 1024):
        self.path = path
        self.max_bytes = int(max_bytes)
        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, mode=0o700, exist_ok=True)
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("CREATE TABLE IF NOT EXISTS record (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, "
                        "payload TEXT NOT NULL)")
        self.db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)")
        self.db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('dropped', 0)")
        # Summed once here, then kept up to date, so that a put need not sum a large spool.
        self._bytes = self.db.execute("SELECT coalesce(sum(length(payload)), 0) FROM record").fetchone()[0]

    def close(self):
        self.db.close()

    def put(self, records):
        """Append [(kind, dict), ...] in one transaction; then enforce the size limit."""
        rows = [(kind, json.dumps(row, separators=(",", ":"), sort_keys=True)) for kind, row in records]
        if not rows:
            return 0
        with _transaction(self.db):
            self.db.executemany("INSERT INTO record (kind, payload) VALUES (?, ?)", rows)
        self._bytes += sum(len(payload) for _kind, payload in rows)
        if self._bytes > self.max_bytes:
            self._shrink()
        return len(rows)

    def _shrink(self):
        """Drop the oldest records until the spool is under 90 % of its limit."""
        target = int(self.max_bytes * 0.9)
        dropped = 0
        with _transaction(self.db):
            cursor = self.db.execute("SELECT id, length(payload) FROM record ORDER BY id")
            cut, size = None, self._bytes
            for rid, length in cursor:
                if size <= target:
                    break
                size -= length
                cut = rid
                dropped += 1
            if cut is not None:
                self.db.execute("DELETE FROM record WHERE id <= ?", (cut,))
                self.db.execute("UPDATE meta SET value = value + ? WHERE key = 'dropped'", (dropped,))
                self._bytes = size
        if dropped:
            LOG.warning("spool %s over its limit of %d bytes: dropped the %d oldest records", self.path,
                        self.max_bytes, dropped)
        return dropped

    def take(self, limit):
        """The oldest ``limit`` records: [(id, kind, dict), ...]."""
        cursor = self.db.execute("SELECT id, kind, payload FROM record ORDER BY id LIMIT ?", (int(limit),))
        return [(rid, kind, json.loads(payload)) for rid, kind, payload in cursor]

    def ack(self, last_id):
        """Forget every record up to ``last_id`` (the database has them)."""
        with _transaction(self.db):
            size = self.db.execute("SELECT coalesce(sum(length(payload)), 0) FROM record WHERE id <= ?",
                                   (last_id,)).fetchone()[0]
            self.db.execute("DELETE FROM record WHERE id <= ?", (last_id,))
        self._bytes -= size

    def count(self):
        return self.db.execute("SELECT count(*) FROM record").fetchone()[0]

    def size_bytes(self):
        return self._bytes

    def dropped(self):
        return self.db.execute("SELECT value FROM meta WHERE key = 'dropped'").fetchone()[0]


class _transaction:
    def __init__(self, db):
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type, exc, tb):
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")
        return False

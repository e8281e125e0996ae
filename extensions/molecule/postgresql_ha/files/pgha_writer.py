"""Failover probe for the accounting database.

write DSN ACKFILE FIRST_ID: insert numbered rows (FIRST_ID, FIRST_ID+1, ...) one
commit each, forever; after every acknowledged commit append "id epoch" to
ACKFILE. A failed commit is retried with the same id (ON CONFLICT DO NOTHING),
so a commit whose outcome was unknown is never counted twice.

check DSN ACKFILE KILL_EPOCH: print JSON with the acknowledged rows, the ones
missing from the database (lost), and the recovery time: the first
acknowledged commit after the longest pause following KILL_EPOCH, minus
KILL_EPOCH.
"""
import json
import signal
import sys
import time

import psycopg2

STOP = False


def _stop(*_):
    global STOP
    STOP = True


def write(dsn, ackfile, first_id):
    signal.signal(signal.SIGTERM, _stop)
    row = first_id
    conn = None
    with open(ackfile, 'a', buffering=1) as acks:
        while not STOP:
            try:
                if conn is None:
                    conn = psycopg2.connect(dsn)
                    conn.autocommit = True
                with conn.cursor() as cur:
                    cur.execute('INSERT INTO failover_probe (id, writer) VALUES (%s, %s) ON CONFLICT DO NOTHING',
                                (row, 'pgha_writer'))
                acks.write('%d %.6f\n' % (row, time.time()))
                row += 1
            except psycopg2.Error:
                try:
                    if conn is not None:
                        conn.close()
                except psycopg2.Error:
                    pass
                conn = None
                time.sleep(0.1)


def check(dsn, ackfile, kill_epoch):
    acked = []
    with open(ackfile) as acks:
        for line in acks:
            parts = line.split()
            if len(parts) == 2:
                acked.append((int(parts[0]), float(parts[1])))
    ids = [a[0] for a in acked]
    conn = psycopg2.connect(dsn)
    with conn.cursor() as cur:
        cur.execute('SELECT id FROM failover_probe WHERE id = ANY(%s)', (ids,))
        present = {r[0] for r in cur.fetchall()}
    conn.close()
    after = [t for _ack_id, t in acked if t > kill_epoch]
    before = [t for _ack_id, t in acked if t <= kill_epoch]
    # A commit answered just before the kill may be recorded just after it:
    # writes resume after the longest pause that follows the kill.
    resumed = None
    if after:
        times = sorted(before[-1:] + after)
        gaps = [(times[i] - times[i - 1], times[i]) for i in range(1, len(times))]
        resumed = max(gaps)[1] if gaps else after[0]
    print(json.dumps({
        'acked': len(ids),
        'acked_before_kill': len(before),
        'acked_after_kill': len(after),
        'lost': len(set(ids) - present),
        'lost_ids': sorted(set(ids) - present)[:20],
        'recovery_s': round(resumed - kill_epoch, 3) if resumed else None,
        'last_ack_before_kill_s': round(kill_epoch - max(before), 3) if before else None,
    }))


if __name__ == '__main__':
    if sys.argv[1] == 'write':
        write(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        check(sys.argv[2], sys.argv[3], float(sys.argv[4]))

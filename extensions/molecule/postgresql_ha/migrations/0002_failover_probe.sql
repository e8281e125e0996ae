-- Test schema: the failover and point-in-time tests write numbered rows here.
CREATE TABLE failover_probe (
    id bigint PRIMARY KEY,
    writer text NOT NULL DEFAULT 'test',
    written_at timestamptz NOT NULL DEFAULT clock_timestamp()
)

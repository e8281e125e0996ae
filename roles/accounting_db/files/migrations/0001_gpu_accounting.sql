-- fedgpu.platform GPU accounting schema (applied once by the accounting_db role).
-- Written by the collectors (roles/gpu_accounting) as the owner; read by the
-- reports through the read-only reporting role.
--
-- Raw samples (gpu_sample, process_sample, workload_sample) are partitioned by
-- month and expire after retention_days (fedgpu_expire); the hourly roll-up
-- gpu_hourly, the workloads, devices and allocations stay.
-- A sample's key is (device or workload, ts): a batch shipped twice adds no row.

CREATE TABLE device (
    uuid         text PRIMARY KEY,            -- GPU-... or MIG-...
    host         text NOT NULL,
    parent_uuid  text,                        -- the physical GPU of a MIG device
    model        text NOT NULL,
    mig_profile  text,                        -- e.g. 1g.10gb; NULL for a whole GPU
    gpu_fraction double precision NOT NULL CHECK (gpu_fraction > 0 AND gpu_fraction <= 1),
    first_seen   timestamptz NOT NULL,
    last_seen    timestamptz NOT NULL
);

CREATE TABLE workload (
    workload_id       text PRIMARY KEY,       -- jupyter:<host>:<invocation id> | condor:<GlobalJobId> | other:<host>:<uid>
    kind              text NOT NULL CHECK (kind IN ('jupyter', 'condor', 'other')),
    host              text NOT NULL,
    username          text,
    uid               integer,
    community         text,
    flavour           text,
    requested_cpus    double precision,
    requested_mem_mib double precision,
    requested_gpus    double precision,
    started           timestamptz,
    ended             timestamptz,            -- set from HTCondor's history; else last_seen
    first_seen        timestamptz NOT NULL,
    last_seen         timestamptz NOT NULL,
    cpu_seconds       double precision,       -- cumulative CPU time of the workload's cgroup
    mem_peak_mib      double precision,
    wall_seconds      double precision,
    source            text NOT NULL DEFAULT 'collector'   -- collector | history
);
CREATE INDEX workload_user_idx ON workload (username);
CREATE INDEX workload_community_idx ON workload (community);

-- A device held by a workload from started to ended (seen by the collectors
-- every interval; re-shipping only widens to the same bounds).
CREATE TABLE allocation (
    workload_id text NOT NULL,
    device_uuid text NOT NULL,
    host        text NOT NULL,
    started     timestamptz NOT NULL,
    ended       timestamptz NOT NULL,
    PRIMARY KEY (workload_id, device_uuid)
);
CREATE INDEX allocation_time_idx ON allocation (started, ended);

CREATE TABLE gpu_sample (
    ts           timestamptz NOT NULL,
    host         text NOT NULL,
    device_uuid  text NOT NULL,
    workload_id  text,                        -- the holder at ts (NULL: free)
    util_pct     real,                        -- NULL: the device does not report it (MIG devices)
    mem_used_mib real,
    power_w      real,
    processes    smallint NOT NULL DEFAULT 0,
    interval_s   real NOT NULL CHECK (interval_s > 0),
    PRIMARY KEY (device_uuid, ts)
) PARTITION BY RANGE (ts);

CREATE TABLE process_sample (
    ts           timestamptz NOT NULL,
    host         text NOT NULL,
    device_uuid  text NOT NULL,
    pid          integer NOT NULL,
    uid          integer,
    username     text,
    workload_id  text,
    used_mem_mib real,
    PRIMARY KEY (device_uuid, ts, pid)
) PARTITION BY RANGE (ts);

CREATE TABLE workload_sample (
    ts           timestamptz NOT NULL,
    workload_id  text NOT NULL,
    cpu_seconds  double precision,            -- cumulative
    mem_mib      real,
    interval_s   real NOT NULL CHECK (interval_s > 0),
    PRIMARY KEY (workload_id, ts)
) PARTITION BY RANGE (ts);

-- What the reports read: per hour, device and holder ('' = free).
-- busy: utilisation > 0 where the device reports it, else a process on it.
CREATE TABLE gpu_hourly (
    hour               timestamptz NOT NULL,
    host               text NOT NULL,
    device_uuid        text NOT NULL,
    workload_id        text NOT NULL DEFAULT '',
    samples            integer NOT NULL,
    seconds            double precision NOT NULL,
    busy_seconds       double precision NOT NULL,
    util_known_seconds double precision NOT NULL,
    util_pct_seconds   double precision NOT NULL,   -- sum(util_pct * interval) where known
    mem_max_mib        real,
    PRIMARY KEY (hour, device_uuid, workload_id)
);
CREATE INDEX gpu_hourly_workload_idx ON gpu_hourly (workload_id, hour);

-- Monthly partitions of the raw tables covering [lo, hi].
CREATE FUNCTION fedgpu_ensure_partitions(lo timestamptz, hi timestamptz) RETURNS integer
LANGUAGE plpgsql AS $fn$
DECLARE
    m date := date_trunc('month', lo AT TIME ZONE 'UTC')::date;
    made integer := 0;
    t text;
    part text;
BEGIN
    WHILE m <= (hi AT TIME ZONE 'UTC')::date LOOP
        FOREACH t IN ARRAY ARRAY['gpu_sample', 'process_sample', 'workload_sample'] LOOP
            part := format('%s_%s', t, to_char(m, 'YYYYMM'));
            IF to_regclass(part) IS NULL THEN
                EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                               part, t, (m::timestamp AT TIME ZONE 'UTC'),
                               ((m + interval '1 month')::timestamp AT TIME ZONE 'UTC'));
                made := made + 1;
            END IF;
        END LOOP;
        m := (m + interval '1 month')::date;
    END LOOP;
    RETURN made;
END
$fn$;

-- Raw samples older than retention_days go: whole months are dropped, the
-- month on the boundary loses its older rows. The roll-ups stay.
CREATE FUNCTION fedgpu_expire(retention_days integer) RETURNS bigint
LANGUAGE plpgsql AS $fn$
DECLARE
    cutoff timestamptz := now() - make_interval(days => retention_days);
    r record;
    n bigint := 0;
    c bigint;
BEGIN
    FOR r IN
        SELECT c.relname AS part, p.relname AS parent,
               (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz AS upper
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
        WHERE p.relname IN ('gpu_sample', 'process_sample', 'workload_sample')
    LOOP
        IF r.upper <= cutoff THEN
            EXECUTE format('DROP TABLE %I', r.part);
        ELSE
            EXECUTE format('DELETE FROM %I WHERE ts < %L', r.part, cutoff);
            GET DIAGNOSTICS c = ROW_COUNT;
            n := n + c;
        END IF;
    END LOOP;
    RETURN n;
END
$fn$;

SELECT fedgpu_ensure_partitions(now() - interval '1 month', now() + interval '1 month');

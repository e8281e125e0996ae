"""The researcher's journeys on the local platform (`make demo`), end to end.

Run from the Docker host after `make demo`:  python tests/integration/demo/journeys.py
(the venv's Python: Selenium; Debian's chromium and chromium-driver).

Each journey is a list of steps; a step that fails prints
``JOURNEY FAILED: <journey> / <step>: <why>`` and ends its journey, the
others still run. The exit status is the number of failed journeys (0: all
passed). What the containers cannot show is printed as ``SKIPPED: ...`` with
its reason, and is never counted as passed.

  notebook   alice logs in to JupyterHub in headless Chromium through the local
             identity provider, picks the MIG flavour; JupyterLab opens, her
             server sees exactly one MIG device; in a JupyterLab terminal she
             writes a file in her private area, one in her community's
             collaborative area and one in her shared area
  batch      alice submits a GPU job from the front end; it runs on the GPU
             worker on a MIG device (not one of the notebooks'), reads her
             notebook's file, writes a result that she reads in her notebook
  sharing    bob (cms, like alice) reads her collaborative file, not her
             private one; dave (ml-infn only) reads neither, and reads her
             shared area
  refusal    carol (no community) is refused at login
  software   the CVMFS client's configuration names the site squid; the squid
             serves platform nodes (a miss, then a hit) and refuses others
  database   the accounting database takes writes from the front end through
             the multi-host TLS connection string, before and after its
             primary is killed; pg_rejoin.yml brings the old primary back
  accounting the GPU accounting collectors recorded alice's notebook on her MIG
             slice (user, community, flavour) and her job on its slice, to
             within one interval; a process in her server on the slice is
             attributed to her and makes it busy; through the database
             journey's two failovers no sample was lost or counted twice and
             the spools are empty; fedgpu-report (the read-only reporting
             role, from a standby) shows her idle allocation as idle
  monitoring Prometheus scrapes every exporter and collector; alice's idle slice,
             a stopped collector and the database's new primary are alerted
             by webhook and e-mail (the test receiver on fg-idp)
  usage      the hub's usage page: nothing without a login; alice sees her own
             sessions and jobs (the report's figures), bob none of hers; the
             idle check stops alice's idle server and the hub tells her why

Traffic stays on the project's Docker network (fedgpu-local) and loopback.
"""
import argparse
import calendar
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BROWSER = os.path.join(ROOT, "tests", "integration", "jupyterhub", "browser.py")
SECRETS = os.path.join(ROOT, ".cache", "local-secrets")
ARTIFACTS = os.path.join(ROOT, ".cache", "test-artifacts", "demo")
MIG_ID = re.compile(r"MIG-[0-9a-fA-F-]{36}")


class StepFailed(Exception):
    pass


def log(text):
    print(text, flush=True)


def check(condition, why):
    if not condition:
        raise StepFailed(why)


def sh(node, command, user=None, check_rc=True, timeout=120):
    """Run a shell command in a node (as a user, with that user's groups)."""
    argv = ["docker", "exec", node]
    argv += ["runuser", "-u", user, "--", "bash", "-c", command] if user else ["bash", "-c", command]
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=timeout,
                          check=False)
    if check_rc and proc.returncode != 0:
        raise StepFailed("%s%s: `%s` exited %d: %s" % (node, " as " + user if user else "", command, proc.returncode,
                                                       (proc.stderr or proc.stdout).strip()[-600:]))
    return proc


def wait_for(what, probe, timeout, delay=2):
    """Call probe() until it returns something true; that value, or StepFailed after timeout seconds."""
    end = time.time() + timeout
    last = None
    while True:
        try:
            value = probe()
            if value:
                return value
        except StepFailed as exc:
            last = exc
        if time.time() > end:
            raise StepFailed("%s: nothing after %d s%s" % (what, timeout, " (%s)" % last if last else ""))
        time.sleep(delay)


class Platform:
    """What the journeys need to know of the local inventory."""

    def __init__(self):
        out = subprocess.run(["ansible-inventory", "-i", os.path.join(ROOT, "inventories", "local"), "--list"],
                             stdout=subprocess.PIPE, universal_newlines=True, check=True, cwd=ROOT).stdout
        inv = json.loads(out)
        self.hostvars = inv["_meta"]["hostvars"]
        self.groups = {name: self._hosts(inv, name) for name in inv if name != "_meta"}

    def _hosts(self, inv, group):
        hosts = list(inv.get(group, {}).get("hosts", []))
        for child in inv.get(group, {}).get("children", []):
            hosts += [h for h in self._hosts(inv, child) if h not in hosts]
        return hosts

    def first(self, group):
        return self.groups[group][0]

    def address(self, host):
        return self.hostvars[host]["local_host_ipv4"]

    def password(self, user):
        return self.secret("idp-" + user)

    def secret(self, name):
        with open(os.path.join(SECRETS, name)) as handle:
            return handle.read().split()[0]


def browse(platform, user, *extra, timeout=240):
    hub = platform.first("jupyterhub")
    idp = platform.first("oidc_test_provider")
    rules = "MAP %s %s,MAP %s %s" % (hub, platform.address(hub), idp, platform.address(idp))
    argv = [sys.executable, BROWSER, "--hub", "https://" + hub, "--user", user, "--host-rules", rules,
            "--screenshots", os.path.join(ARTIFACTS, user), "--spawn-timeout", "90"] + list(extra)
    env = dict(os.environ, FEDGPU_TEST_PASSWORD=platform.password(user))
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                          env=env, timeout=timeout, check=False)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise StepFailed("browser.py exited %d: %s" % (proc.returncode, proc.stderr.strip()[-800:]))
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_output(result, index):
    runs = result.get("runs") or []
    check(len(runs) > index, "the terminal command %d did not run: %s" % (index, result))
    run = runs[index]
    check(run["rc"] == 0, "`%s` in the notebook's terminal exited %s: %s" % (run["command"], run["rc"], run["output"][-600:]))
    return run["output"]


def reporting_dsn(platform, node):
    """fedgpu-report's connection string on ``node`` (a node with the collector's CA): the reporting role, a
    standby preferred, its password in root's passfile there (written now)."""
    data = platform.groups["db_data"]
    subprocess.run(["docker", "exec", "-i", node, "sh", "-c", "umask 077; cat > /root/.fedgpu-report-pgpass"],
                   input="*:*:accounting:accounting_reporting:%s\n" % platform.secret("accounting-reporting"),
                   universal_newlines=True, check=True)
    return ("host=%s port=%s dbname=accounting user=accounting_reporting sslmode=verify-full "
            "sslrootcert=/etc/fedgpu/accounting/ca.crt target_session_attrs=prefer-standby connect_timeout=2 "
            "passfile=/root/.fedgpu-report-pgpass" % (",".join(data), ",".join(["5432"] * len(data))))


# ------------------------------------------------------------------ journeys

def journey_notebook(p, state):
    state["notebook_at"] = time.time()
    hub = p.first("jupyterhub")
    settings = json.loads(sh(hub, "cat /etc/jupyterhub/fedgpu_hub.json").stdout)
    notebook_ids = [g["id"] for g in settings["gpus"]]
    state["notebook_ids"] = notebook_ids
    yield "the hub hands out MIG slices (%d)" % len(notebook_ids)
    check(notebook_ids and all(i.startswith("MIG-") for i in notebook_ids), "the hub's devices: %s" % settings["gpus"])

    commands = [
        'echo "CVD=[$CUDA_VISIBLE_DEVICES]"; nvidia-smi -L',
        'echo "written by alice in her notebook" > ~/note.txt && echo "for cms, from alice" > ~/collab-cms/from-alice.txt'
        ' && echo "for everyone, from alice" > ~/shared/hello.txt && ls ~',
    ]
    result = browse(p, "alice", "--fresh", "--flavour", "mig-1g", *sum((["--run", c] for c in commands), []))
    state["alice_browser"] = result
    yield "alice logs in through the identity provider"
    check(result["login"] == "ok", "login: %s" % result)
    yield "her spawn form offers her community's MIG flavour"
    check("mig-1g" in result["flavours"], "flavours offered: %s" % result["flavours"])
    yield "JupyterLab opens on her server"
    check(result["spawned"] is True and not result.get("spawn_error"), "spawn: %s" % result)
    yield "her server sees exactly one MIG device, one of the notebooks' slices"
    out = run_output(result, 0)
    cvd = re.search(r"CVD=\[([^\]]*)\]", out)
    check(cvd, "no CUDA_VISIBLE_DEVICES line in: %s" % out)
    ids = [x for x in cvd.group(1).split(",") if x]
    check(len(ids) == 1 and MIG_ID.fullmatch(ids[0]), "CUDA_VISIBLE_DEVICES=%r" % cvd.group(1))
    check(ids[0] in notebook_ids, "%s is not one of the hub's slices %s" % (ids[0], notebook_ids))
    listed = re.findall(r"MIG (\S+)\s+Device\s+\d+: \(UUID: (MIG-[^)]+)\)", out)
    check((u"1g.10gb", ids[0]) in listed, "nvidia-smi -L as alice does not list %s as 1g.10gb: %s" % (ids[0], out))
    state["alice_device"] = ids[0]
    yield "she writes in her private, collaborative and shared areas"
    run_output(result, 1)
    nfs = p.first("nfs")
    stat = sh(nfs, "stat -c '%n %u' /srv/nfs/private/alice/note.txt /srv/nfs/collab/cms/from-alice.txt "
                   "/srv/nfs/shared/alice/hello.txt").stdout.split()
    check(stat[1::2] == ["3001"] * 3, "the NFS server's copies: %s" % stat)


def journey_batch(p, state):
    front = p.first("htcondor_access_point")
    gpu = p.first("gpu_workers")
    check("alice_device" in state, "needs the notebook journey's file and device")
    job = r"""#!/bin/sh
set -e
note=$(cat /nfs/private/alice/note.txt)
{
  echo "host=$(hostname) cuda=[$CUDA_VISIBLE_DEVICES] read=[$note]"
  nvidia-smi -L
} > /nfs/private/alice/job/result.txt
# long enough for the GPU accounting collector (every 5 s here) to see it hold its slice
sleep 15
"""
    submit = """universe = vanilla
executable = job.sh
request_gpus = 1
require_gpus = MIGProfile == "1g.10gb"
request_cpus = 1
request_memory = 128
output = job.out
error = job.err
log = job.log
should_transfer_files = YES
when_to_transfer_output = ON_EXIT
queue
"""
    yield "the GPU worker's slots advertise the slices the notebooks do not use"

    def slots():
        return sh(front, "condor_status -af Machine DetectedGPUs").stdout.strip()
    status = wait_for("condor_status on %s" % gpu, slots, 60)
    advertised = MIG_ID.findall(" ".join(line for line in status.splitlines() if line.startswith(gpu)))
    check(advertised, "no GPU slot of %s in: %s" % (gpu, status))
    check(not set(advertised) & set(state["notebook_ids"]), "HTCondor advertises notebook slices: %s" % advertised)
    facts = MIG_ID.findall(sh(gpu, "nvidia-smi -L").stdout)
    check(sorted(advertised + state["notebook_ids"]) == sorted(facts),
          "HTCondor's %d and the hub's %d slices are not the node's %d" % (len(advertised), len(state["notebook_ids"]), len(facts)))
    state["htcondor_ids"] = advertised
    yield "alice submits a job that needs a MIG slice, from the front end"
    sh(front, "mkdir -p ~/job && rm -f ~/job/result.txt ~/job/job.log && printf %%s %s > ~/job/job.sh && chmod 755 ~/job/job.sh"
              " && printf %%s %s > ~/job/job.sub" % (shlex.quote(job), shlex.quote(submit)), user="alice")
    cluster = sh(front, "cd ~/job && condor_submit -terse job.sub", user="alice").stdout.split(".")[0].strip()
    check(cluster.isdigit(), "condor_submit printed %r" % cluster)
    yield "the job runs on the GPU worker and ends"

    def done():
        out = sh(front, "condor_history %s -limit 1 -af JobStatus ExitCode LastRemoteHost AcctGroup" % cluster).stdout.split()
        return out if out and out[0] == "4" else None
    history = wait_for("job %s to complete" % cluster, done, 240, delay=3)
    check(history[1] == "0", "job %s: exit code %s" % (cluster, history))
    check(gpu in history[2], "job %s ran on %s, not on %s" % (cluster, history[2], gpu))
    yield "it was charged to alice's community (AcctGroup %s)" % history[3]
    check("cms" in history[3], "AcctGroup %s is not alice's community cms" % history[3])
    yield "it got one of HTCondor's slices and read her notebook's file"
    result = sh(front, "cat ~/job/result.txt", user="alice").stdout
    got = re.search(r"host=(\S+) cuda=\[([^\]]*)\] read=\[(.*)\]", result)
    check(got, "result.txt: %s" % result)
    check(got.group(2) in state["htcondor_ids"], "the job's device %r is not one of HTCondor's %s" % (got.group(2), state["htcondor_ids"]))
    state["job_device"], state["job_cluster"] = got.group(2), cluster
    check(got.group(3) == "written by alice in her notebook", "the job read %r" % got.group(3))
    check("MIG 1g.10gb" in result, "nvidia-smi -L in the job (as alice) failed: %s" % result)
    yield "alice reads the job's result in her notebook"
    back = browse(p, "alice", "--run", "cat ~/job/result.txt")
    out = run_output(back, 0)
    check("read=[written by alice in her notebook]" in out and got.group(2) in out, "the notebook read: %s" % out)


def journey_sharing(p, state):
    front = p.first("frontend")
    check("alice_device" in state, "needs the notebook journey's files")
    yield "bob (cms) reads alice's collaborative file"
    check(sh(front, "cat /nfs/collab/cms/from-alice.txt", user="bob").stdout.strip() == "for cms, from alice", "bob's read")
    yield "bob cannot read alice's private file"
    denied = sh(front, "cat /nfs/private/alice/note.txt", user="bob", check_rc=False)
    check(denied.returncode != 0 and "Permission denied" in denied.stderr, "bob read it: %s" % denied.stdout)
    yield "dave (ml-infn only) reads neither"
    for path in ("/nfs/collab/cms/from-alice.txt", "/nfs/private/alice/note.txt"):
        denied = sh(front, "cat " + path, user="dave", check_rc=False)
        check(denied.returncode != 0 and "Permission denied" in denied.stderr, "dave read %s: %s" % (path, denied.stdout))
    yield "dave reads alice's shared area"
    check(sh(front, "cat /nfs/shared/alice/hello.txt", user="dave").stdout.strip() == "for everyone, from alice", "dave's read")


def journey_refusal(p, state):
    yield "carol, in no community, is refused at login"
    result = browse(p, "carol", "--no-spawn")
    check(result["login"] == "refused", "carol: %s" % result)


def journey_software(p, state):
    worker = p.first("workers")
    squid = p.first("squid")
    origin = p.first("nfs")
    outsider = p.first("oidc_test_provider")
    yield "the CVMFS client on %s goes through the site squid" % worker
    conf = sh(worker, "set -a; . /etc/cvmfs/default.local; echo \"$CVMFS_HTTP_PROXY\"").stdout.strip()
    check("%s:3128" % p.address(squid) in conf or "%s:3128" % squid in conf, "CVMFS_HTTP_PROXY=%s" % conf)
    log("SKIPPED: mounting /cvmfs needs the CVMFS client from CERN's repository, which these machines "
        "cannot reach (cvmfs_install: false); its configuration is checked instead.")
    yield "the squid caches for platform nodes (a miss, then a hit)"
    nonce = str(int(time.time()))
    sh(origin, "mkdir -p /var/tmp/journey-origin && head -c 65536 /dev/urandom > /var/tmp/journey-origin/blob-%s.bin"
               " && systemd-run --unit journey-origin --property=Type=simple python3 -m http.server 8000"
               " --directory /var/tmp/journey-origin >/dev/null" % nonce)
    try:
        fetch = ("python3 -c \"import hashlib, urllib.request; o = urllib.request.build_opener("
                 "urllib.request.ProxyHandler({'http': 'http://%s:3128'})); "
                 "r = o.open('http://%s:8000/blob-%s.bin', timeout=20); c = r.headers.get('Cache-Status', '') + r.headers.get('X-Cache', ''); "
                 "print(r.status, hashlib.sha256(r.read()).hexdigest(), 'HIT' if ';hit' in c or 'HIT from' in c else 'MISS')\""
                 % (squid, origin, nonce))
        wait_for("the origin on %s" % origin, lambda: sh(origin, "python3 -c \"import urllib.request; "
                 "urllib.request.urlopen('http://127.0.0.1:8000/', timeout=2)\"", check_rc=False).returncode == 0, 20, delay=1)
        want = sh(origin, "sha256sum /var/tmp/journey-origin/blob-%s.bin" % nonce).stdout.split()[0]
        first = sh(worker, fetch).stdout.split()
        check(first == ["200", want, "MISS"], "first fetch: %s" % first)

        def hit_fetch():
            got = sh(worker, fetch).stdout.split()
            return got if got[2] == "HIT" else None
        hit = wait_for("a cache hit", hit_fetch, 20)
        check(hit[:2] == ["200", want], "second fetch: %s" % hit)
        yield "a host outside the platform (%s) gets nothing through it" % outsider
        # The front end's firewall drops it before squid (which would answer 403).
        refused = sh(outsider, fetch.replace("timeout=20", "timeout=5"), check_rc=False)
        check(refused.returncode != 0 and not refused.stdout.startswith("200"), "outside fetch: %s" % refused.stdout)
        check(re.search(r"403|timed out|refused|unreachable", refused.stderr), "outside fetch failed oddly: %s" % refused.stderr[-300:])
    finally:
        sh(origin, "systemctl stop journey-origin; rm -rf /var/tmp/journey-origin", check_rc=False)


def journey_database(p, state):
    state["database_at"] = time.time()
    front = p.first("frontend")
    data = p.groups["db_data"]
    pki = os.path.join(ROOT, ".cache", "local-pki", "ca.crt")
    dsn = ("host=%s port=%s dbname=accounting user=accounting sslmode=verify-full sslrootcert=/root/.fedgpu-db-ca.crt "
           "target_session_attrs=read-write connect_timeout=2 tcp_user_timeout=1000" % (",".join(data), ",".join(["5432"] * len(data))))
    yield "the front end gets a PostgreSQL client, the cluster CA and the owner's password"
    sh(front, "command -v psql >/dev/null || (apt-get install -y -qq postgresql-client >/dev/null 2>&1 "
              "|| (apt-get update -qq && apt-get install -y -qq postgresql-client >/dev/null))", timeout=300)
    subprocess.run(["docker", "cp", pki, "%s:/root/.fedgpu-db-ca.crt" % front], check=True)
    password = p.secret("accounting-owner")
    subprocess.run(["docker", "exec", "-i", front, "sh", "-c", "umask 077; cat > /root/.pgpass"],
                   input="*:*:accounting:accounting:%s\n" % password, universal_newlines=True, check=True)

    def psql(sql, check_rc=True):
        return sh(front, "psql -X -At %s -c %s" % (shlex.quote(dsn), shlex.quote(sql)), check_rc=check_rc, timeout=30)

    yield "a write through the multi-host TLS connection string"
    psql("CREATE TABLE IF NOT EXISTS journey_probe (id serial PRIMARY KEY, note text NOT NULL, at timestamptz DEFAULT now())")
    psql("INSERT INTO journey_probe (note) VALUES ('before failover')")
    ssl = psql("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").stdout.strip()
    check(ssl == "t", "the connection is not TLS: %r" % ssl)

    def rejoin(node):
        proc = subprocess.run(["ansible-playbook", "playbooks/pg_rejoin.yml", "-e", "pg_rejoin_node=" + node],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                              timeout=600, check=False)
        check(proc.returncode == 0, "pg_rejoin.yml failed:\n%s" % "\n".join(proc.stdout.splitlines()[-30:]))
        standby = sh(node, "su postgres -c \"psql -X -At -c 'SELECT pg_is_in_recovery()'\"").stdout.strip()
        check(standby == "t", "%s is not a standby after the rejoin (%r)" % (node, standby))

    def primary():
        for node in data:
            got = sh(node, "su postgres -c \"psql -X -At -c 'SELECT pg_is_in_recovery()'\"", check_rc=False)
            if got.stdout.strip() == "f":
                return node
        return None
    victim = wait_for("the primary", primary, 30)
    yield "the primary (%s) is killed" % victim
    sh(victim, "kill -9 $(head -1 /var/lib/postgresql/17/main/postmaster.pid)")
    yield "writes go on through the same connection string on the new primary"
    wait_for("a write after the failover",
             lambda: psql("INSERT INTO journey_probe (note) VALUES ('after failover') RETURNING id", check_rc=False).returncode == 0,
             90, delay=2)
    notes = psql("SELECT note FROM journey_probe ORDER BY id").stdout.split("\n")
    check("before failover" in notes and "after failover" in notes, "rows: %s" % notes)
    new = wait_for("the new primary", primary, 30)
    check(new != victim, "%s is primary again before any rejoin" % victim)
    yield "pg_rejoin.yml brings %s back as a standby" % victim
    rejoin(victim)
    psql("INSERT INTO journey_probe (note) VALUES ('after rejoin')")

    # Host loss: the address answers nothing any more (not one packet leaves the
    # cut host), while its name still resolves through the /etc/hosts that the
    # common role writes on every node.
    lost = wait_for("the primary", primary, 30)
    networks = json.loads(subprocess.run(["docker", "inspect", "--format", "{{json .NetworkSettings.Networks}}", lost],
                                         stdout=subprocess.PIPE, universal_newlines=True, check=True).stdout)
    network, settings = sorted(networks.items())[0]
    yield "the primary's host (%s) disappears: cut from %s, then killed" % (lost, network)
    lost_at = time.time()
    subprocess.run(["docker", "network", "disconnect", "--force", network, lost], check=True)
    try:
        subprocess.run(["docker", "kill", lost], stdout=subprocess.DEVNULL, check=True)
        wait_for("a write after the host loss",
                 lambda: psql("INSERT INTO journey_probe (note) VALUES ('after host loss') RETURNING id",
                              check_rc=False).returncode == 0,
                 90, delay=1)
        yield "writes go on through the same connection string, %.1f s after the host loss" % (time.time() - lost_at)
    finally:
        subprocess.run(["docker", "network", "connect", "--ip", settings["IPAddress"], network, lost], check=False)
        subprocess.run(["docker", "start", lost], stdout=subprocess.DEVNULL, check=False)
    wait_for("systemd on the host that came back",
             lambda: sh(lost, "systemctl is-system-running --wait", check_rc=False).stdout.strip() in ("running", "degraded"),
             120)
    check(sh(lost, "systemctl is-active postgresql@17-main", check_rc=False).stdout.strip() != "active",
          "%s came back with PostgreSQL running before any rejoin (fence)" % lost)
    yield "pg_rejoin.yml brings %s back as a standby" % lost
    rejoin(lost)
    notes = psql("SELECT note FROM journey_probe ORDER BY id").stdout.split("\n")
    check("after host loss" in notes, "rows: %s" % notes)
    state["primary_after_failovers"] = wait_for("the primary", primary, 30)


def journey_accounting(p, state):
    gpu = p.first("gpu_workers")
    front = p.first("frontend")
    check("alice_device" in state and "job_device" in state, "needs the notebook and batch journeys")
    config = json.loads(sh(gpu, "cat /etc/fedgpu/accounting/collector.json").stdout)
    interval = float(config["interval"])
    data = p.groups["db_data"]
    owner = ("host=%s port=%s dbname=accounting user=accounting sslmode=verify-full sslrootcert=/root/.fedgpu-db-ca.crt "
             "target_session_attrs=read-write connect_timeout=2" % (",".join(data), ",".join(["5432"] * len(data))))

    def sql(query):
        # The front end's client, CA and owner's passfile: the database journey put them there.
        return sh(front, "psql -X -At -F '|' %s -c %s" % (shlex.quote(owner), shlex.quote(query)), timeout=30).stdout.strip()

    def metrics(node):
        text = sh(node, "curl -sf http://127.0.0.1:9477/metrics").stdout
        return {m.group(1): float(m.group(2)) for m in re.finditer(r"^fedgpu_collector_(\w+)\{[^}]*\} (\S+)$", text, re.M)}

    yield "a collector runs on every worker and reads the GPU worker's devices through nvidia-smi"
    for node in p.groups["workers"]:
        check(sh(node, "systemctl is-active fedgpu-collector", check_rc=False).stdout.strip() == "active",
              "fedgpu-collector is not active on %s" % node)
    devices = 1 + len(MIG_ID.findall(sh(gpu, "nvidia-smi -L").stdout))
    check(metrics(gpu).get("devices") == devices, "the collector of %s does not read its %d GPUs and MIG devices: %s"
          % (gpu, devices, metrics(gpu)))
    yield "alice's notebook holds her MIG slice in the database: her, cms, mig-1g, within one interval of its start"
    row = sql("SELECT w.username, w.community, w.flavour, extract(epoch FROM a.started) - extract(epoch FROM w.started) "
              "FROM allocation a JOIN workload w USING (workload_id) "
              "WHERE a.device_uuid = '%s' AND w.kind = 'jupyter' ORDER BY a.started DESC LIMIT 1" % state["alice_device"])
    check(row, "no jupyter allocation of %s in the database" % state["alice_device"])
    user, community, flavour, lag = row.split("|")
    check((user, community, flavour) == ("alice", "cms", "mig-1g"), "recorded as %s" % row)
    check(0 <= float(lag) <= interval + 1, "first seen %.1f s after the server started (interval %g s)" % (float(lag), interval))
    yield "her job %s held its own slice, charged to alice and cms" % state["job_cluster"]
    row = sql("SELECT w.username, w.community, w.workload_id FROM allocation a JOIN workload w USING (workload_id) "
              "WHERE a.device_uuid = '%s' AND w.kind = 'condor' AND w.workload_id LIKE '%%#%s.0#%%'"
              % (state["job_device"], state["job_cluster"]))
    check(row and row.split("|")[:2] == ["alice", "cms"], "the job's allocation: %r" % row)
    yield "the access point's history adds her finished job once: its end, wall and CPU time, peak memory"
    like = "condor:%%#%s.0#%%" % state["job_cluster"]
    row = wait_for("her job from HTCondor's history", lambda: sql(
        "SELECT count(*) OVER (), extract(epoch FROM ended - started), wall_seconds, cpu_seconds IS NOT NULL, "
        "mem_peak_mib > 0 FROM workload WHERE workload_id LIKE '%s' AND source = 'history'" % like), 6 * interval + 90)
    rows, span, wall, cpu, mem = row.split("|")
    check(rows == "1" and float(wall) >= 15 and abs(float(span) - float(wall)) <= 2 and cpu == "t" and mem == "t",
          "her job as the history recorded it: %s" % row)
    yield "a process in her server on the slice is attributed to her and makes the slice busy"
    pid = sh(gpu, "systemctl show -p MainPID --value jupyter-alice-singleuser").stdout.strip()
    check(pid.isdigit() and pid != "0", "alice's server has no main process (%r)" % pid)
    dump = json.loads(sh(gpu, "nvidia-smi --emulator-dump").stdout)
    where = [(g["index"], gi["id"], ci["id"]) for g in dump["gpus"] for gi in g.get("gpu_instances", [])
             for ci in gi["compute_instances"] if ci["uuid"] == state["alice_device"]]
    check(len(where) == 1, "%s is not one MIG device of the emulator's state" % state["alice_device"])
    since = time.time()
    sh(gpu, "nvidia-smi --emulator-add-process %d:%d:%d:%s:python:2048" % (where[0] + (pid,)))
    try:
        got = wait_for("a process sample of alice's server",
                       lambda: sql("SELECT username, workload_id FROM process_sample WHERE device_uuid = '%s' AND pid = %s "
                                   "AND ts >= to_timestamp(%f) LIMIT 1" % (state["alice_device"], pid, since)),
                       6 * interval + 30)
    finally:
        sh(gpu, "nvidia-smi --emulator-remove-process %s" % pid, check_rc=False)
    check(got.split("|")[0] == "alice" and got.split("|")[1].startswith("jupyter:%s:" % gpu), "attributed as %s" % got)
    busy = sql("SELECT coalesce(sum(busy_seconds), 0) FROM gpu_hourly WHERE device_uuid = '%s'" % state["alice_device"])
    check(float(busy) > 0, "her slice was never busy in the roll-up")
    yield "through the two failovers no sample was lost or counted twice, and every spool is empty"
    for node in p.groups["workers"]:
        def drained(n=node):
            figures = metrics(n)
            return figures if figures.get("spool_records") == 0 else None
        m = wait_for("an empty spool on %s" % node, drained, 120, delay=2)
        check(m["ship_errors_total"] >= 0 and m.get("spool_dropped_records_total") == 0, "%s dropped records: %s" % (node, m))
        if node == gpu:
            n = int(sql("SELECT count(*) FROM gpu_sample WHERE device_uuid = '%s' AND ts >= to_timestamp(%f) "
                        "AND ts <= to_timestamp(%f) + interval '1 ms'"
                        % (state["alice_device"], m["started_timestamp_seconds"], m["last_sample_timestamp_seconds"])))
            check(n == int(m["samples_total"]), "%s took %d samples, the database holds %d of its slice"
                  % (node, m["samples_total"], n))
            yield "%s: %d samples taken, %d in the database (%d failed shipments retried)" % (
                node, m["samples_total"], n, m["ship_errors_total"])
    yield "fedgpu-report (reporting role, a standby preferred) shows alice's allocation, mostly idle"
    report_dsn = reporting_dsn(p, gpu)
    out = sh(gpu, "fedgpu-report --dsn %s --by user --format json --from %s" % (
        shlex.quote(report_dsn), time.strftime("%Y-%m-%dT00:00:00Z", time.gmtime(time.time() - 86400)))).stdout
    rows = {r["user"]: r for r in json.loads(out)["rows"]}
    check("alice" in rows, "no row of alice in the report: %s" % out[-600:])
    alice = rows["alice"]
    check(alice["allocated_gpu_hours"] > 0 and alice["idle_fraction"] is not None and 0.5 < alice["idle_fraction"] < 1,
          "alice: %s GPU-hours allocated, idle fraction %s" % (alice["allocated_gpu_hours"], alice["idle_fraction"]))
    check(alice["sessions"] >= 1 and alice["jobs"] >= 1, "alice: %d sessions, %d jobs" % (alice["sessions"], alice["jobs"]))
    yield "accounting_report.yml saves the report on the control node: JSON, CSV, table, fair share and three plots"
    dest = os.path.join(ARTIFACTS, "accounting-report")
    shutil.rmtree(dest, ignore_errors=True)
    proc = subprocess.run(["ansible-playbook", "playbooks/accounting_report.yml", "-e", "gpu_accounting_report_by=user",
                           "-e", "gpu_accounting_report_dest=" + dest], cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True, timeout=600, check=False)
    check(proc.returncode == 0, "accounting_report.yml failed:\n%s" % "\n".join(proc.stdout.splitlines()[-30:]))
    check(p.secret("accounting-reporting") not in proc.stdout, "the reporting role's password is in the playbook's output")
    with open(os.path.join(dest, "report.json")) as handle:
        saved = json.load(handle)
    check(any(r["user"] == "alice" and r["allocated_gpu_hours"] > 0 for r in saved["rows"]), "report.json: %s" % saved)
    shares = {r["community"]: r for r in saved.get("fairshare", [])}
    check({"physics", "cms", "ml-infn"} <= set(shares), "fair share rows: %s" % saved.get("fairshare"))
    with open(os.path.join(dest, "report.csv")) as handle:
        check("alice" in handle.read(), "report.csv has no row of alice")
    for name in ("usage.png", "idle.png", "heatmap.png"):
        with open(os.path.join(dest, name), "rb") as handle:
            check(handle.read(8) == b"\x89PNG\r\n\x1a\n", "%s is not a PNG" % name)
    first = p.first("workers")
    left = sh(first, "ls -d /tmp/*.fedgpu-report 2>/dev/null || true").stdout.strip()
    check(not left, "the report's working directory (with its passfile) is left on %s: %s" % (first, left))


def journey_monitoring(p, state):
    front = p.first("prometheus")
    receiver = p.first("alert_test_receiver")
    check("notebook_at" in state and "primary_after_failovers" in state,
          "needs the notebook, database and accounting journeys")

    def prom(path, query=None):
        command = "curl -sfG http://127.0.0.1:9090/api/v1/%s" % path
        if query:
            command += " --data-urlencode %s" % shlex.quote("query=" + query)
        out = json.loads(sh(front, command).stdout)
        check(out.get("status") == "success", "Prometheus answered %s" % out)
        return out["data"]

    def received(alertname, since, **labels):
        """Webhook alerts and e-mails of alertname received after since whose labels include labels (firing)."""
        records = [r for r in json.loads(sh(receiver, "curl -sf http://127.0.0.1:9095/received").stdout)
                   if r["received"] >= since]
        hooks = [a for r in records if r["via"] == "webhook" for a in r["payload"]["alerts"]
                 if a["status"] == "firing" and a["labels"].get("alertname") == alertname
                 and all(a["labels"].get(k) == v for k, v in labels.items())]
        mails = [r for r in records if r["via"] == "email" and (r.get("subject") or "").startswith("[FIRING")
                 and alertname in r["subject"]
                 and all(v in r.get("text", "") for v in labels.values())]
        return (hooks, mails) if hooks and mails else None

    def firing_since(alertname, **labels):
        for alert in prom("alerts")["alerts"]:
            if alert["state"] == "firing" and alert["labels"].get("alertname") == alertname and all(
                    alert["labels"].get(k) == v for k, v in labels.items()):
                return calendar.timegm(time.strptime(alert["activeAt"][:19], "%Y-%m-%dT%H:%M:%S"))
        return None

    def notified(alertname, timeout, **labels):
        """Prometheus fires the alert; the webhook and the mail server got it, since it became active (an alert
        that goes on firing across a second run of the journeys, as the same slice idle or the same node
        promoted again within 15 minutes, was notified once, when it began)."""
        active = wait_for("%s%s firing in Prometheus" % (alertname, labels), lambda: firing_since(alertname, **labels),
                          timeout, delay=5)
        got = wait_for("%s%s at the receiver" % (alertname, labels), lambda: received(alertname, active - 1, **labels),
                       90, delay=5)
        return active, got

    # A target gone: the CPU worker's collector stops (while the idle alert, below, ripens).
    cpu = [n for n in p.groups["workers"] if n not in p.groups["gpu_workers"]][0]
    stopped_at = time.time()
    sh(cpu, "systemctl stop fedgpu-collector")
    try:
        yield "Prometheus on %s scrapes every node's exporter, both data nodes' PostgreSQL and the collectors" % front
        expected = {("node", n) for n in p.groups["platform"]} | {("postgres", n) for n in p.groups["db_data"]}
        expected |= {("fedgpu_collector", n) for n in p.groups["workers"] + p.groups["htcondor_access_point"]}

        def all_up():
            targets = prom("targets")["activeTargets"]
            health = {(t["labels"]["job"], t["labels"]["instance"]): t["health"] for t in targets}
            missing = expected - set(health)
            check(not missing, "not scraped: %s" % sorted(missing))
            down = sorted(k for k in expected if health[k] != "up" and k != ("fedgpu_collector", cpu))
            return None if down else health
        wait_for("every target up", all_up, 90, delay=3)
        yield "the collectors' metrics name alice, cms and her MIG profile as the holder of her slice"
        series = prom("query", 'fedgpu_gpu_allocated{device="%s"}' % state["alice_device"])
        check(series["result"], "no fedgpu_gpu_allocated series for %s" % state["alice_device"])
        metric = series["result"][0]["metric"]
        check((metric.get("user"), metric.get("community"), metric.get("mig_profile"), metric.get("kind"))
              == ("alice", "cms", "1g.10gb", "jupyter"), "labels: %s" % metric)
        yield "her slice, held and idle, is alerted to the site's webhook and by e-mail, with her name"
        dummy, (hooks, mails) = notified("FedgpuGpuAllocatedIdle", 240, device=state["alice_device"], user="alice")
        yield "   %s (webhook), \"%s\" (e-mail to %s)" % (
            hooks[0]["annotations"]["summary"], mails[0]["subject"], ", ".join(mails[0]["to"]))
        yield "the stopped collector on %s is alerted as a target down" % cpu
        active, dummy = notified("FedgpuTargetDown", 240, job="fedgpu_collector", instance=cpu)
        check(active >= stopped_at - 1, "FedgpuTargetDown for %s was active before its collector stopped" % cpu)
    finally:
        sh(cpu, "systemctl start fedgpu-collector", check_rc=False)
    primary = state["primary_after_failovers"]
    yield "the database journey's failovers are alerted: FedgpuPrimaryChanged for %s, primary since" % primary
    active, got = notified("FedgpuPrimaryChanged", 120, instance=primary)
    check(active >= state["database_at"] - 900, "the alert is older than the database journey's failovers")
    yield "   %s" % got[0][-1]["annotations"]["summary"]


def journey_usage(p, state):
    hub = p.first("jupyterhub")
    prefix = "/services/usage/"
    yield "without a login the usage page sends the browser to the hub's login, and shows nothing"
    out = sh(hub, "curl -sk -o /dev/null -w '%%{http_code} %%{redirect_url}' https://%s%s" % (hub, prefix)).stdout.split()
    check(out[0] == "302" and "/hub/" in out[1], "anonymous request: %s" % out)

    report_dsn = reporting_dsn(p, hub)

    def workloads_of(user):
        out = sh(hub, "fedgpu-report --dsn %s --by workload --user %s --format json --from %s" % (
            shlex.quote(report_dsn), user, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 30 * 86400)))).stdout
        return {r["workload"] for r in json.loads(out)["rows"]}

    yield "alice opens it from the hub: her own sessions and jobs, the report's figures"
    result = browse(p, "alice", "--only-visit", "--visit", "/hub/home", "--visit", prefix,
                    "--visit", prefix + "?days=30&format=json")
    check(result["login"] == "ok" and len(result["visits"]) == 3, "alice's visits: %s" % result)
    home, page, raw = result["visits"]
    check(any(link.rstrip("/").endswith(prefix.rstrip("/")) for link in home["links"]),
          "the hub's home page links no usage page: %s" % home["links"])
    check(page["url"].split("?")[0].endswith(prefix) and "GPU usage of alice" in page["text"], "her page: %s" % page["text"][:400])
    figures = json.loads(raw["text"])
    mine = workloads_of("alice")
    shown = {w["workload_id"] for w in figures["workloads"]}
    check(figures["user"] == "alice" and shown and shown == mine,
          "her page shows %s; the report of her workloads: %s" % (sorted(shown), sorted(mine)))
    check(figures["total"]["sessions"] >= 1 and figures["total"]["jobs"] >= 1 and figures["total"]["allocated_gpu_hours"] > 0,
          "her totals: %s" % figures["total"])
    check(any(f["flavour"] == "mig-1g" for f in figures["by_flavour"]), "her flavours: %s" % figures["by_flavour"])
    check(all(w in page["text"] for w in shown), "a workload of hers is missing from the HTML page")
    yield "   %d sessions, %d jobs, %.4f GPU-hours allocated, idle fraction %.2f" % (
        figures["total"]["sessions"], figures["total"]["jobs"], figures["total"]["allocated_gpu_hours"],
        figures["total"]["idle_fraction"] or 0)
    yield "bob's page shows only his usage: none of alice's sessions and jobs"
    result = browse(p, "bob", "--only-visit", "--visit", prefix + "?days=30&format=json")
    check(result["login"] == "ok" and result["visits"], "bob's visit: %s" % result)
    bobs = {w["workload_id"] for w in json.loads(result["visits"][0]["text"])["workloads"]}
    check(json.loads(result["visits"][0]["text"])["user"] == "bob" and not bobs & mine and bobs == workloads_of("bob"),
          "bob's page shows %s (alice's: %s)" % (sorted(bobs), sorted(mine)))

    yield "alice's server, idle on its MIG slice, is stopped by the idle check, and she is told so on the hub"
    running = sh(hub, "systemctl is-active jupyter-alice-singleuser", check_rc=False).stdout.strip()
    check(running == "active", "alice's server is not running (%s): the notebook journey starts it" % running)

    def idle_for():
        text = sh(hub, "curl -sf http://127.0.0.1:9477/metrics").stdout
        found = [float(m.group(2)) for m in re.finditer(r'^fedgpu_gpu_allocated_idle_seconds\{([^}]*)\} (\S+)$', text, re.M)
                 if 'kind="jupyter"' in m.group(1) and 'user="alice"' in m.group(1)]
        return found and max(found) >= 30 and max(found)
    idle = wait_for("alice's slice idle for 30 s", idle_for, 120)
    stopped = json.loads(sh(hub, "fedgpu-stop-idle-servers 30").stdout.strip().splitlines()[-1])
    check("alice" in stopped, "fedgpu-stop-idle-servers 30 stopped %s (alice's slice idle for %.0f s)" % (stopped, idle))

    def alice_stopped():
        return sh(hub, "systemctl is-active jupyter-alice-singleuser", check_rc=False).stdout.strip() != "active"
    wait_for("alice's server stopped", alice_stopped, 60)
    result = browse(p, "alice", "--only-visit", "--visit", "/hub/home")
    text = result["visits"][0]["text"] if result.get("visits") else ""
    check("Your notebook server was stopped" in text and "MIG 1g.10gb slice" in text,
          "the hub's home page tells alice nothing: %s" % text[:500])
    yield "   " + re.search(r"Your notebook server was stopped[^\n]*", text).group(0)


JOURNEYS = [
    ("notebook", journey_notebook),
    ("batch", journey_batch),
    ("sharing", journey_sharing),
    ("refusal", journey_refusal),
    ("software", journey_software),
    ("database", journey_database),
    ("accounting", journey_accounting),
    ("monitoring", journey_monitoring),
    ("usage", journey_usage),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    names = [journey[0] for journey in JOURNEYS]
    parser.add_argument("journeys", nargs="*", help="journeys to run (default: all, in order): %s" % ", ".join(names))
    args = parser.parse_args()
    wanted = args.journeys or names
    unknown = set(wanted) - set(names)
    if unknown:
        parser.error("unknown journeys: %s" % ", ".join(sorted(unknown)))
    os.makedirs(ARTIFACTS, exist_ok=True)
    platform = Platform()
    state = {}
    failed = []
    for name, journey in JOURNEYS:
        if name not in wanted:
            continue
        start = time.time()
        step = "start"
        log("\n== journey %s" % name)
        try:
            for step in journey(platform, state):
                log("   - %s" % step)
            log("== journey %s: ok (%.0f s)" % (name, time.time() - start))
        except (StepFailed, subprocess.TimeoutExpired, subprocess.CalledProcessError, OSError, ValueError, KeyError) as exc:
            failed.append(name)
            log("JOURNEY FAILED: %s / %s: %s" % (name, step, exc))
    summary = " (%s)" % ", ".join(failed) if failed else ""
    log("\njourneys: %d passed, %d failed%s" % (len(wanted) - len(failed), len(failed), summary))
    log("screenshots: %s" % ARTIFACTS)
    return len(failed)


if __name__ == "__main__":
    sys.exit(main())

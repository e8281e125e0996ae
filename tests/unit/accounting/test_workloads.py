# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""fedgpu_accounting.workloads: JupyterHub units, HTCondor jobs, process attribution and cgroup figures.

Everything runs on hand-built trees in tmp_path: a fake /proc, cgroup v1 and v2 hierarchies, an
HTCondor execute directory, and systemctl answered by an injected runner. Every figure below is worked
out by hand in the comments next to it.
"""

import calendar
import logging
import os
import sys
import types

import pytest

FILES = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "roles", "gpu_accounting", "files"))
if FILES not in sys.path:
    sys.path.insert(0, FILES)

from fedgpu_accounting import workloads as wl  # noqa: E402  pylint: disable=wrong-import-position

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "workloads")
HOST = "node1"
NOW = 1768050000.0

GPU0 = "GPU-1a2b3c4d-0000-1111-2222-333344445555"
GPU1 = "GPU-5e6f7a8b-0000-1111-2222-333344445555"
GPU2 = "GPU-1a2b3c4e-9999-8888-7777-666655554444"
MIG1 = "MIG-9c8d7e6f-aaaa-bbbb-cccc-ddddeeeeffff"
DEVICES = [
    {"uuid": GPU0, "index": 0},
    {"uuid": GPU1, "index": 1},
    {"uuid": MIG1, "parent_uuid": GPU1, "index": 1},
    {"uuid": GPU2, "index": 2},
]

USERS = {"root": 0, "alice": 1001, "bob": 1002, "carol": 1003, "dave": 1004}
ALICE_CG = "/system.slice/jupyter-alice-singleuser.service"
BOB_CG = "/htcondor/condor_var_lib_condor_execute_slot1_1@node1.example.org"
BOB_GLOBAL = "ap1.example.org#123.0#1767000000"
ALICE_INVOCATION = "0a1b2c3d4e5f46a7b8c9d0e1f2a3b4c5"
# 2026-01-10 12:34:56 UTC: 20454 days to 2026-01-01 (56 years, 14 leap days) + 9 days = 20463 days
# = 1768003200 s, + 12 h 34 min 56 s (45296 s) = 1768048496.
ALICE_STARTED = 1768048496


def fixture(name):
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as handle:
        return handle.read()


@pytest.fixture(autouse=True)
def fake_pwd(monkeypatch):
    """The passwd database of the fake node (the test machine's own users are not used)."""
    names = dict((uid, name) for name, uid in USERS.items())

    def getpwuid(uid):
        if uid not in names:
            raise KeyError(uid)
        return types.SimpleNamespace(pw_name=names[uid], pw_uid=uid)

    def getpwnam(name):
        if name not in USERS:
            raise KeyError(name)
        return types.SimpleNamespace(pw_name=name, pw_uid=USERS[name])

    monkeypatch.setattr(wl, "pwd", types.SimpleNamespace(getpwuid=getpwuid, getpwnam=getpwnam))
    wl._WARNED.clear()  # pylint: disable=protected-access


def write(path, text, mode="w"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, mode) as handle:  # pylint: disable=unspecified-encoding
        handle.write(text)


def make_proc(root, pid, uids, ppid=1, cgroup=(), environ=None, name="python3"):
    """A /proc/<pid> with status (Uid: real effective saved fs), cgroup lines and a NUL-separated environ."""
    if isinstance(uids, int):
        uids = (uids,) * 4
    status = ("Name:\t%s\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t%d\nNgid:\t0\nPid:\t%d\nPPid:\t%d\nTracerPid:\t0\n"
              "Uid:\t%s\nGid:\t%s\nFDSize:\t64\nVmRSS:\t  102400 kB\nThreads:\t4\n"
              % (name, pid, pid, ppid, "\t".join(str(u) for u in uids), "\t".join(str(u) for u in uids)))
    write(os.path.join(root, str(pid), "status"), status)
    write(os.path.join(root, str(pid), "cgroup"), "".join(line + "\n" for line in cgroup))
    if isinstance(environ, dict):
        environ = b"".join(("%s=%s" % item).encode() + b"\0" for item in environ.items())
    write(os.path.join(root, str(pid), "environ"), environ or b"", "wb")


def v1_lines(path):
    """The /proc/<pid>/cgroup of a process in a v1 (hybrid) hierarchy: memory and cpuacct at ``path``."""
    return ["12:memory:" + path, "11:pids:/system.slice/condor.service", "4:cpu,cpuacct:" + path,
            "1:name=systemd:/system.slice/condor.service", "0::/system.slice/condor.service"]


@pytest.fixture
def node(tmp_path):
    """A node: fake /proc, an execute directory with bob's job, alice's unit env file, a systemctl runner."""
    proc = str(tmp_path / "proc")
    execute = str(tmp_path / "execute")
    run = tmp_path / "run" / "jupyter-alice-singleuser"
    env_file = str(run / "jupyter-alice-singleuser.env")
    write(env_file, fixture("alice.env"))

    # bob's job: starter 4242 (dir_4242), its child 4250 (the job), a grandchild 4251 in the same cgroup.
    job_dir = os.path.join(execute, "dir_4242")
    write(os.path.join(job_dir, ".job.ad"), fixture("bob.job.ad"))
    write(os.path.join(job_dir, ".machine.ad"), fixture("bob.machine.ad"))
    job_env = {"_CONDOR_JOB_AD": os.path.join(job_dir, ".job.ad"), "_CONDOR_MACHINE_AD": os.path.join(job_dir, ".machine.ad"),
               "_CONDOR_SCRATCH_DIR": job_dir, "_CONDOR_AssignedGPUs": "GPU-1a2b3c4d", "CUDA_VISIBLE_DEVICES": "GPU-1a2b3c4d",
               "BATCH_SYSTEM": "HTCondor"}
    make_proc(proc, 4242, 0, ppid=800, cgroup=v1_lines("/system.slice/condor.service"), name="condor_starter")
    make_proc(proc, 4250, 1002, ppid=4242, cgroup=v1_lines(BOB_CG), environ=job_env, name="train.sh")
    make_proc(proc, 4251, 1002, ppid=4250, cgroup=v1_lines(BOB_CG), environ=job_env)
    # A process of bob's job that left the job's cgroup: only its environ tells.
    make_proc(proc, 4260, 1002, ppid=1, cgroup=["0::/user.slice/user-1002.slice/session-3.scope"], environ=job_env)

    # alice's server: main process 3000, a kernel 3001 in a sub-cgroup; 3002 outside (environ only).
    alice_env = {"JUPYTERHUB_USER": "alice", "CUDA_VISIBLE_DEVICES": GPU0, "HOME": "/home/alice"}
    make_proc(proc, 3000, 1001, cgroup=["0::" + ALICE_CG], environ=alice_env, name="jupyterhub-sing")
    make_proc(proc, 3001, 1001, ppid=3000, cgroup=["0::" + ALICE_CG + "/kernels"], environ=alice_env)
    make_proc(proc, 3002, 1001, cgroup=["0::/user.slice/user-1001.slice/session-9.scope"], environ=alice_env)
    # carol's server 3100 (MainPID): its environ carries the flavour that the unit does not show.
    make_proc(proc, 3100, 1003, cgroup=["0::/system.slice/jupyter-carol-singleuser.service"],
              environ={"JUPYTERHUB_USER": "carol", "FEDGPU_FLAVOUR": "cpu-small", "FEDGPU_COMMUNITY": "ml-infn"})
    # A root daemon, and a setuid process (real uid 1004, effective 0).
    make_proc(proc, 900, 0, cgroup=["0::/system.slice/cron.service"], name="cron")
    make_proc(proc, 950, (1004, 0, 0, 0), cgroup=["0::/user.slice/user-1004.slice/session-1.scope"])

    shows = {
        "jupyter-alice-singleuser.service": fixture("show_alice.txt").replace("@ENVFILE@", env_file),
        # carol: environment as systemd-run --setenv shows it (old systemdspawner), no limits.
        "jupyter-carol-singleuser.service": (
            "Id=jupyter-carol-singleuser.service\nMainPID=3100\nControlGroup=/system.slice/jupyter-carol-singleuser.service\n"
            "CPUQuotaPerSecUSec=infinity\nMemoryMax=infinity\nMemoryLimit=infinity\n"
            "Environment=JUPYTERHUB_USER=carol CUDA_VISIBLE_DEVICES= \"JUPYTERHUB_ACTIVITY_URL=http://hub/x y\"\n"
            "User=carol\nInvocationID=11112222333344445555666677778888\n"
            "ActiveEnterTimestamp=Sat 2026-01-10 12:00:00 UTC\n"),
    }
    calls = []

    def runner(argv):
        calls.append(list(argv))
        if argv[1] == "list-units":
            return 0, fixture("list_units.txt")
        if argv[1] == "show" and argv[-1] in shows:
            return 0, shows[argv[-1]]
        return 1, ""  # dave's unit stopped between list-units and show

    return types.SimpleNamespace(proc=proc, execute=execute, job_dir=job_dir, runner=runner, calls=calls, env_file=env_file,
                                 cgroup_root=str(tmp_path / "cgroup"))


# ------------------------------------------------------------------------------------------ parse_classad


def test_parse_classad_values():
    ad = wl.parse_classad(fixture("bob.job.ad"))
    assert ad["GlobalJobId"] == BOB_GLOBAL
    assert ad["ClusterId"] == 123 and ad["ProcId"] == 0
    assert ad["RequestMemory"] == 8192 and isinstance(ad["RequestMemory"], int)
    assert ad["Args"] == '--epochs 10 --name "run 1"'  # \" unescaped
    assert ad["LeaveJobInQueue"] is False and ad["WantCheckpoint"] is False
    assert ad["RequestDisk"] == "DiskUsage"  # an expression stays raw
    assert ad["MemoryUsage"] == "((ResidentSetSize + 1023) / 1024)"
    assert ad["Requirements"] == '(TARGET.Arch == "X86_64") && (TARGET.HasFileTransfer)'
    machine = wl.parse_classad(fixture("bob.machine.ad"))
    assert machine["LoadAvg"] == 0.25 and machine["Start"] is True
    assert machine["AssignedGPUs"] == "GPU-1a2b3c4d"


def test_parse_classad_edge_cases():
    text = ('\n# comment\nA = -7\nB = 1.5e3\nC = "x\\\\y"\nD = undefined\nE = TRUE\nF = "a" + "b"\n'
            'G = { "l1", "l2" }\nnot a line\nH=""\nI = "eq = inside"\n')
    ad = wl.parse_classad(text)
    assert ad == {"A": -7, "B": 1500.0, "C": "x\\y", "D": "undefined", "E": True, "F": '"a" + "b"',
                  "G": '{ "l1", "l2" }', "H": "", "I": "eq = inside"}
    assert wl.parse_classad("") == {} and wl.parse_classad(None) == {}


@pytest.mark.parametrize("group, community", [
    ("group_cms.alice", "cms"),
    ("group_physics.cms.alice", "cms"),
    ("group_a.b.c.bob", "c"),
    ("cms.alice", "cms"),
    ("group_cms", "cms"),
    ("", None),
    (None, None),
])
def test_community_of_accounting_group(group, community):
    assert wl.community_of(group) == community


def test_community_of_acct_group_has_no_user():
    assert wl.community_of("group_physics.atlas", with_user=False) == "atlas"
    assert wl.community_of("group_cms", with_user=False) == "cms"


# ---------------------------------------------------------------------------------------- systemd values


@pytest.mark.parametrize("text, seconds", [
    ("2s", 2.0), ("1.500000s", 1.5), ("200ms", 0.2), ("1min 30s", 90.0), ("250us", 0.00025),
    ("infinity", None), ("", None), (None, None), ("2 apples", None),
])
def test_parse_timespan(text, seconds):
    assert wl.parse_timespan(text) == (pytest.approx(seconds) if seconds is not None else None)


def test_parse_bytes_and_timestamps():
    assert wl.parse_bytes("4294967296") == 4096.0  # 4 GiB
    assert wl.parse_bytes("536870912") == 512.0
    assert wl.parse_bytes("infinity") is None and wl.parse_bytes("") is None
    assert wl.parse_bytes("18446744073709551615") is None  # UINT64_MAX
    assert wl.parse_timestamp("Sat 2026-01-10 12:34:56 UTC") == ALICE_STARTED
    assert wl.parse_timestamp("Sat 2026-01-10 13:34:56 +0100") == ALICE_STARTED
    assert wl.parse_timestamp("@1768048496") == ALICE_STARTED
    assert wl.parse_timestamp("n/a") is None and wl.parse_timestamp("") is None
    local = wl.parse_timestamp("Sat 2026-01-10 12:34:56 CET")
    assert local == pytest.approx(calendar.timegm((2026, 1, 10, 12, 34, 56)) - _utc_offset_at(ALICE_STARTED), abs=3600)


def _utc_offset_at(epoch):
    import time  # pylint: disable=import-outside-toplevel
    return calendar.timegm(time.localtime(epoch)) - epoch


def test_environment_parsers():
    assert wl.parse_environment_property('A=1 "B=two words" C= D=x=y') == {"A": "1", "B": "two words", "C": "", "D": "x=y"}
    env = wl.parse_environment_file(fixture("alice.env") + "# c\n; c\nexport X=1\nbroken line\n")
    assert env["CUDA_VISIBLE_DEVICES"] == GPU0 and env["FEDGPU_FLAVOUR"] == "a100"
    assert env["SOME_NOTE"] == "two words" and env["JUPYTERHUB_SERVER_NAME"] == "" and env["X"] == "1"
    assert "broken line" not in env


# -------------------------------------------------------------------------------------- list_jupyter_units


def test_list_jupyter_units(node):
    units = wl.list_jupyter_units(node.runner, proc_root=node.proc)
    assert node.calls[0] == ["systemctl", "list-units", "--type=service", "--state=active", "--plain", "--no-legend",
                             "jupyter-*-singleuser.service"]
    show = node.calls[1]
    assert show[:3] == ["systemctl", "show", "-p"] and show[-1] == "jupyter-alice-singleuser.service"
    for prop in ("Id", "User", "InvocationID", "Environment", "ControlGroup", "CPUQuotaPerSecUSec", "MemoryMax",
                 "ActiveEnterTimestamp", "EnvironmentFiles"):
        assert prop in show[3].split(",")
    assert [u["unit"] for u in units] == ["jupyter-alice-singleuser.service", "jupyter-carol-singleuser.service"]  # dave gone
    alice, carol = units
    assert alice["username"] == "alice" and alice["uid"] == 1001  # User=1001 (systemd-run --uid)
    assert alice["invocation_id"] == ALICE_INVOCATION and alice["cgroup"] == ALICE_CG
    assert alice["cpus"] == 2.0 and alice["mem_mib"] == 4096.0 and alice["started"] == ALICE_STARTED
    assert alice["environment"]["FEDGPU_COMMUNITY"] == "ml-infn"  # from the EnvironmentFile
    assert alice["main_pid"] == 3000
    assert carol["uid"] == 1003 and carol["cpus"] is None and carol["mem_mib"] is None
    assert carol["environment"]["JUPYTERHUB_ACTIVITY_URL"] == "http://hub/x y"
    assert carol["environment"]["FEDGPU_FLAVOUR"] == "cpu-small"  # from /proc/3100/environ
    assert carol["environment"]["CUDA_VISIBLE_DEVICES"] == ""  # the unit's value wins over the process's


def test_list_jupyter_units_systemctl_fails():
    assert wl.list_jupyter_units(lambda argv: (1, "")) == []


# ---------------------------------------------------------------------------------------- list_condor_jobs


def test_list_condor_jobs(node):
    # A leftover directory whose starter is gone, and one whose job has not started (no .job.ad).
    write(os.path.join(node.execute, "dir_7777", ".job.ad"), fixture("bob.job.ad"))
    os.makedirs(os.path.join(node.execute, "dir_4300"))
    make_proc(node.proc, 4300, 0, ppid=800, name="condor_starter")
    write(os.path.join(node.execute, "not_a_job"), "")
    jobs = wl.list_condor_jobs(node.execute, proc_root=node.proc, cgroup_root=node.cgroup_root)
    assert len(jobs) == 1
    job = jobs[0]
    assert job["dir"] == node.job_dir and job["starter_pid"] == 4242 and job["job_pid"] == 4250
    assert job["uid"] == 1002 and job["cgroup"] == BOB_CG  # from the memory line of /proc/4250/cgroup
    assert job["job_ad"]["GlobalJobId"] == BOB_GLOBAL and job["machine_ad"]["Name"] == "slot1_1@node1.example.org"
    assert job["assigned_gpus"] == "GPU-1a2b3c4d"


def test_condor_job_cgroup_named_when_no_process(node, tmp_path):
    """No live child of the starter: the documented cgroup name is looked up under the cgroup root (v2)."""
    execute = str(tmp_path / "var" / "lib" / "condor" / "execute")
    job_dir = os.path.join(execute, "dir_5000")
    write(os.path.join(job_dir, ".job.ad"), 'GlobalJobId = "ap1#7.1#1"\nOwner = "carol"\nRequestCpus = 1\n')
    write(os.path.join(job_dir, ".machine.ad"), 'Name = "slot1_2@node1"\n')
    make_proc(node.proc, 5000, 0, ppid=800, name="condor_starter")
    write(os.path.join(node.cgroup_root, "cgroup.controllers"), "cpu memory\n")
    # The starter names it after its execute directory, slashes as underscores, and the slot.
    name = "condor" + execute.replace("/", "_") + "_slot1_2@node1"
    os.makedirs(os.path.join(node.cgroup_root, "system.slice", "htcondor", name))
    jobs = wl.list_condor_jobs(execute, proc_root=node.proc, cgroup_root=node.cgroup_root)
    assert [(j["cgroup"], j["job_pid"], j["uid"]) for j in jobs] == [("/system.slice/htcondor/" + name, None, 1003)]
    assert jobs[0]["assigned_gpus"] is None


@pytest.mark.parametrize("paths, cgroup", [
    (["/system.slice/htcondor/condor_var_lib_condor_execute_slot1_3@h/job"], "/system.slice/htcondor/condor_var_lib_condor_execute_slot1_3@h"),
    (["/htcondor/condor_var_lib_condor_execute_slot1_1@h"], "/htcondor/condor_var_lib_condor_execute_slot1_1@h"),
    (["/system.slice/htcondor/slot1_4/sub"], "/system.slice/htcondor/slot1_4"),
    (["/system.slice/condor.service"], None),
    ([], None),
])
def test_job_cgroup_from_paths(paths, cgroup):
    assert wl.job_cgroup_from_paths(paths) == cgroup


# ------------------------------------------------------------------------------------------------ devices


@pytest.mark.parametrize("names, uuids", [
    ([GPU0], [GPU0]),                         # full uuid
    ([GPU0.lower()], [GPU0]),                 # case does not matter
    (["GPU-1a2b3c4d"], [GPU0]),               # condor_gpu_discovery -short-uuid
    (["GPU-5e6f7a8b"], [GPU1]),
    (["CUDA2"], [GPU2]),                      # -by-index, index among whole GPUs
    (["1"], [GPU1]),                          # plain CUDA_VISIBLE_DEVICES index
    ([MIG1], [MIG1]),                         # MIG device by uuid
    (["CUDA0", "GPU-1a2b3c4d", GPU0], [GPU0]),  # the same device once
    (["GPU-1a2b3c4"], ["GPU-1a2b3c4"]),       # ambiguous prefix (GPU0 and GPU2): kept
    (["CUDA7", "GPU-deadbeef"], ["CUDA7", "GPU-deadbeef"]),  # unknown: kept
])
def test_resolve_devices(names, uuids):
    assert wl.resolve_devices(names, DEVICES) == uuids


def test_resolve_devices_logs_unknown_once(caplog):
    with caplog.at_level(logging.WARNING, logger="fedgpu.workloads"):
        wl.resolve_devices(["CUDA7"], DEVICES, "condor:x")
        wl.resolve_devices(["CUDA7"], DEVICES, "condor:x")
    assert len([r for r in caplog.records if "CUDA7" in r.getMessage()]) == 1


def test_resolve_devices_without_index_uses_position():
    assert wl.resolve_devices(["CUDA1"], [{"uuid": GPU0}, {"uuid": MIG1, "parent_uuid": GPU0}, {"uuid": GPU1}]) == [GPU1]
    assert wl.split_device_names("GPU-1a2b3c4d, CUDA1,2") == ["GPU-1a2b3c4d", "CUDA1", "2"]
    assert wl.split_device_names("") == [] and wl.split_device_names(None) == []


# -------------------------------------------------------------------------------------------- allocations


def test_allocations(node):
    out = wl.allocations(HOST, DEVICES, runner=node.runner, execute_dir=node.execute, now=NOW, proc_root=node.proc,
                         cgroup_root=node.cgroup_root)
    by_kind = {}
    for item in out:
        by_kind.setdefault(item["kind"], []).append(item)
    alice, carol = by_kind["jupyter"]
    assert alice == {
        "workload_id": "jupyter:node1:" + ALICE_INVOCATION, "kind": "jupyter", "host": HOST,
        "username": "alice", "uid": 1001, "community": "ml-infn", "flavour": "a100",
        "requested_cpus": 2.0, "requested_mem_mib": 4096.0, "requested_gpus": 1.0, "devices": [GPU0],
        "started": ALICE_STARTED, "cgroup": ALICE_CG,
    }
    assert carol["workload_id"] == "jupyter:node1:11112222333344445555666677778888"
    assert carol["devices"] == [] and carol["requested_gpus"] == 0.0  # CUDA_VISIBLE_DEVICES set, empty
    assert carol["flavour"] == "cpu-small" and carol["community"] == "ml-infn"
    assert carol["requested_cpus"] is None and carol["requested_mem_mib"] is None
    assert carol["started"] == ALICE_STARTED - 2096  # 12:00:00 is 34 min 56 s earlier
    (bob,) = by_kind["condor"]
    assert bob == {
        "workload_id": "condor:" + BOB_GLOBAL, "kind": "condor", "host": HOST,
        "username": "bob", "uid": 1002, "community": "cms", "flavour": None,
        "requested_cpus": 4.0, "requested_mem_mib": 8192.0, "requested_gpus": 1.0, "devices": [GPU0],
        "started": 1768040000.0, "cgroup": BOB_CG,
    }
    assert set(by_kind) == {"jupyter", "condor"}


def test_allocations_condor_fallbacks(node):
    """Expressions for the requests: the slot's provisioned figures; no GPUs; a start in the future is clamped."""
    job_dir = os.path.join(node.execute, "dir_6000")
    write(os.path.join(job_dir, ".job.ad"),
          'Owner = "dave"\nClusterId = 9\nProcId = 2\nRequestCpus = ifThenElse(x, 1, 2)\n'
          'RequestMemory = ifthenelse(MemoryUsage =!= undefined, MemoryUsage, 2048)\nAcctGroup = "group_physics.atlas"\n'
          'JobCurrentStartDate = %d\n' % (NOW + 600))
    write(os.path.join(job_dir, ".machine.ad"), 'Name = "slot1_5@node1"\nCpus = 2\nMemory = 3072\n')
    make_proc(node.proc, 6000, 0, ppid=800, name="condor_starter")
    make_proc(node.proc, 6001, 65534, ppid=6000, cgroup=["0::/system.slice/htcondor/slot1_5"],
              environ={"CUDA_VISIBLE_DEVICES": "10000"})
    out = wl.allocations(HOST, DEVICES, runner=lambda argv: (0, ""), execute_dir=node.execute, now=NOW,
                         proc_root=node.proc, cgroup_root=node.cgroup_root)
    dave = [w for w in out if w["username"] == "dave"][0]
    assert dave["workload_id"] == "condor:node1#9.2#6000"  # no GlobalJobId
    assert dave["uid"] == 65534  # the job runs as nobody (no shared UID_DOMAIN): the process's uid
    assert dave["requested_cpus"] == 2.0 and dave["requested_mem_mib"] == 3072.0
    assert dave["requested_gpus"] == 0.0 and dave["devices"] == []
    assert dave["community"] == "atlas" and dave["cgroup"] == "/system.slice/htcondor/slot1_5"
    assert dave["started"] == NOW


def test_allocations_condor_devices_from_job_environ(node):
    """No AssignedGPUs in the slot ad: the job's _CONDOR_AssignedGPUs names them (all name forms)."""
    write(os.path.join(node.job_dir, ".machine.ad"), 'Name = "slot1_1@node1.example.org"\n')
    env = {"_CONDOR_AssignedGPUs": "CUDA1, GPU-1a2b3c4e,%s,GPU-0badf00d" % MIG1}
    make_proc(node.proc, 4250, 1002, ppid=4242, cgroup=v1_lines(BOB_CG), environ=env)
    (bob,) = wl.allocations(HOST, DEVICES, runner=lambda argv: (0, ""), execute_dir=node.execute, now=NOW,
                            proc_root=node.proc, cgroup_root=node.cgroup_root)
    assert bob["devices"] == [GPU1, GPU2, MIG1, "GPU-0badf00d"]
    assert bob["requested_gpus"] == 1.0  # RequestGPUs of the job ad


# ---------------------------------------------------------------------------------------------- attribute


@pytest.fixture
def workloads(node):
    return wl.allocations(HOST, DEVICES, runner=node.runner, execute_dir=node.execute, now=NOW, proc_root=node.proc,
                          cgroup_root=node.cgroup_root)


@pytest.mark.parametrize("pid, uid, username, workload_id, kind", [
    (3000, 1001, "alice", "jupyter:node1:" + ALICE_INVOCATION, "jupyter"),   # in the unit's cgroup (v2)
    (3001, 1001, "alice", "jupyter:node1:" + ALICE_INVOCATION, "jupyter"),   # below it
    (3002, 1001, "alice", "jupyter:node1:" + ALICE_INVOCATION, "jupyter"),   # outside: JUPYTERHUB_USER
    (4250, 1002, "bob", "condor:" + BOB_GLOBAL, "condor"),                   # the job's cgroup (v1 lines)
    (4251, 1002, "bob", "condor:" + BOB_GLOBAL, "condor"),
    (4260, 1002, "bob", "condor:" + BOB_GLOBAL, "condor"),                   # outside: _CONDOR_JOB_AD
    (900, 0, "root", "other:node1:0", "other"),                              # a root daemon
    (950, 1004, "dave", "other:node1:1004", "other"),                        # real uid, not effective
])
def test_attribute(node, workloads, pid, uid, username, workload_id, kind):
    assert wl.attribute(pid, workloads, HOST, proc_root=node.proc) == {
        "pid": pid, "uid": uid, "username": username, "workload_id": workload_id, "kind": kind}


def test_attribute_vanished_and_unknown_user(node, workloads):
    assert wl.attribute(99999, workloads, HOST, proc_root=node.proc) is None
    make_proc(node.proc, 960, 4321, cgroup=["0::/system.slice/foo.service"],
              environ=b"JUPYTERHUB_USER=nobody-here\0A=b=c\0\0NOEQUALS\0")
    assert wl.attribute(960, workloads, HOST, proc_root=node.proc) == {
        "pid": 960, "uid": 4321, "username": None, "workload_id": "other:node1:4321", "kind": "other"}


def test_attribute_environ_with_nul_separators(node):
    make_proc(node.proc, 970, 1001, environ=b"A=b=c\0JUPYTERHUB_USER=alice\0EMPTY=\0")
    assert wl._proc_environ(970, node.proc) == {"A": "b=c", "JUPYTERHUB_USER": "alice", "EMPTY": ""}  # pylint: disable=protected-access


def test_attribute_prefers_deepest_cgroup(node):
    outer = {"workload_id": "jupyter:node1:x", "kind": "jupyter", "cgroup": "/system.slice"}
    inner = {"workload_id": "jupyter:node1:y", "kind": "jupyter", "cgroup": ALICE_CG}
    root = {"workload_id": "bad", "kind": "other", "cgroup": "/"}
    assert wl.attribute(3001, [root, outer, inner], HOST, proc_root=node.proc)["workload_id"] == "jupyter:node1:y"
    # A cgroup name that only shares a prefix is not a parent.
    twin = {"workload_id": "twin", "kind": "jupyter", "cgroup": ALICE_CG[:-len(".service")]}
    assert wl.attribute(3000, [twin], HOST, proc_root=node.proc)["workload_id"] == "other:node1:1001"


# -------------------------------------------------------------------------------------------- cgroup_usage


def test_cgroup_usage_v2(tmp_path):
    root = str(tmp_path / "v2")
    write(os.path.join(root, "cgroup.controllers"), "cpuset cpu io memory pids\n")
    unit = os.path.join(root, ALICE_CG.lstrip("/"))
    write(os.path.join(unit, "cpu.stat"), "usage_usec 123456789\nuser_usec 100000000\nsystem_usec 23456789\n"
                                          "nr_periods 0\nnr_throttled 0\nthrottled_usec 0\n")
    write(os.path.join(unit, "memory.current"), "1610612736\n")  # 1.5 GiB = 1536 MiB
    write(os.path.join(unit, "memory.peak"), "2147483648\n")     # 2 GiB = 2048 MiB
    assert wl.cgroup_usage(ALICE_CG, root=root) == {"cpu_seconds": 123.456789, "mem_mib": 1536.0, "mem_peak_mib": 2048.0,
                                                    "version": 2}
    # A kernel before 5.19 has no memory.peak.
    old = os.path.join(root, "system.slice", "jupyter-carol-singleuser.service")
    write(os.path.join(old, "cpu.stat"), "usage_usec 500000\n")   # 0.5 s
    write(os.path.join(old, "memory.current"), "104857600\n")     # 100 MiB
    assert wl.cgroup_usage("/system.slice/jupyter-carol-singleuser.service", root=root) == {
        "cpu_seconds": 0.5, "mem_mib": 100.0, "mem_peak_mib": None, "version": 2}
    assert wl.cgroup_usage("/system.slice/gone.service", root=root) is None
    assert wl.cgroup_usage(None, root=root) is None and wl.cgroup_usage("/", root=root) is None


@pytest.mark.parametrize("cpu_mount", ["cpu,cpuacct", "cpuacct"])
def test_cgroup_usage_v1(tmp_path, cpu_mount):
    root = str(tmp_path / "v1")
    os.makedirs(os.path.join(root, "unified"))  # hybrid: no cgroup.controllers at the root
    rel = BOB_CG.lstrip("/")
    write(os.path.join(root, cpu_mount, rel, "cpuacct.usage"), "7500000000\n")               # 7.5 s
    write(os.path.join(root, "memory", rel, "memory.usage_in_bytes"), "536870912\n")          # 512 MiB
    write(os.path.join(root, "memory", rel, "memory.max_usage_in_bytes"), "805306368\n")      # 768 MiB
    assert wl.cgroup_usage(BOB_CG, root=root) == {"cpu_seconds": 7.5, "mem_mib": 512.0, "mem_peak_mib": 768.0, "version": 1}
    assert wl.cgroup_usage("/htcondor/condor_gone", root=root) is None


def test_cgroup_usage_v1_memory_only(tmp_path):
    root = str(tmp_path / "v1")
    write(os.path.join(root, "memory", "x", "memory.usage_in_bytes"), "1048576\n")
    assert wl.cgroup_usage("/x", root=root) == {"cpu_seconds": None, "mem_mib": 1.0, "mem_peak_mib": None, "version": 1}

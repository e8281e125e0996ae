# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Who holds and uses the GPUs of a node: JupyterHub servers, HTCondor jobs, everything else.

Stdlib only; the collector runs it as root every 15 s. What it relies on, and where that is documented:

JupyterHub servers (jupyterhub-systemdspawner, pinned 1.0.2 by the jupyterhub role)
    * Each server is a transient service made with ``systemd-run --unit <name>``, the name from
      ``SystemdSpawner.unit_name_template``, default ``jupyter-{USERNAME}-singleuser`` (systemdspawner.py,
      github.com/jupyterhub/systemdspawner). It runs with ``--uid <uid>``, so ``systemctl show -p User``
      may be a number.
    * The server's environment (``CUDA_VISIBLE_DEVICES``, ``JUPYTERHUB_USER``, and the hub's
      ``FEDGPU_FLAVOUR``, ``FEDGPU_COMMUNITY``) is NOT passed with ``--setenv`` since systemdspawner 0.15
      (CHANGELOG, advisory GHSA-cg54-gpgr-4rm6): systemd.py writes it, values ``shlex.quote``-d, to
      ``/run/<unit>/<unit>.env`` and passes ``--property=EnvironmentFile=<file>``. So the unit's
      ``Environment`` property is read first, then its ``EnvironmentFiles`` (root may read the 0400 file),
      then, for what is still missing, ``/proc/<MainPID>/environ``.
    * ``mem_limit`` becomes ``MemoryMax`` (``MemoryLimit`` before systemdspawner 1.0, PR #127) and
      ``cpu_limit`` becomes ``CPUQuota=<cpu_limit*100>%``, which systemd shows as ``CPUQuotaPerSecUSec``
      (CPU time per second of wall time: ``2s`` is 2 CPUs); ``infinity`` means no limit.
    * ``InvocationID`` (systemd.exec(5), "$INVOCATION_ID") is new each time a unit starts: the
      workload id of a server, ``jupyter:<host>:<InvocationID>``.

HTCondor jobs (HTCondor manual)
    * "Environment and services for a running job" (users-manual/env-of-job): the starter sets
      ``_CONDOR_SCRATCH_DIR`` (the job's execute directory, ``$(EXECUTE)/dir_<starter pid>``,
      EXECUTE default ``/var/lib/condor/execute``), ``_CONDOR_JOB_AD`` and ``_CONDOR_MACHINE_AD``
      (files ``.job.ad`` and ``.machine.ad`` in it, in the long format of ``condor_q -l`` and
      ``condor_status -l``: ``Attr = value`` lines), and CUDA_VISIBLE_DEVICES for assigned GPUs.
    * Job ClassAd attributes: ``GlobalJobId`` ("<schedd name>#<ClusterId>.<ProcId>#<submit time>",
      unique within the pool: the workload id ``condor:<GlobalJobId>``), ``Owner``, ``RequestCpus``,
      ``RequestMemory`` (MiB), ``RequestGPUs``, ``AccountingGroup`` (``<group>.<user>``; this
      collection's job transform makes it ``group_<community>.<owner>``, htcondor role), ``AcctGroup``,
      ``JobStartDate`` (first start, epoch seconds; ``JobCurrentStartDate`` when absent).
    * The slot ad's ``AssignedGPUs`` names the job's devices as ``condor_gpu_discovery`` named them
      (man page): ``CUDA<n>`` by index (``-by-index``, the default), ``GPU-<8 hex>`` (``-short-uuid``:
      the first 8 hex digits of the NVIDIA uuid), the full ``GPU-…``/``MIG-…`` uuid (``-uuid``, and the
      devices this collection declares). The job's environ also has ``_CONDOR_AssignedGPUs``. Without
      GPUs a job sees ``CUDA_VISIBLE_DEVICES=10000`` (``ENVIRONMENT_VALUE_FOR_UnAssignedGPUs``).
    * cgroups (admin manual, "cgroup based process tracking", ``BASE_CGROUP`` default ``htcondor``):
      each job gets its own cgroup below BASE_CGROUP named after the starter's execute directory with
      slashes as underscores and the slot name, e.g. ``htcondor/condor_var_lib_condor_execute_slot1_1@host``
      (below ``/system.slice`` on cgroup v2 with systemd); other versions use ``htcondor/<slot>``. The
      ad does not carry the path, so it is read from ``/proc/<pid>/cgroup`` of a child of the starter
      (the job's first process), cut after the job's own component; without a live process the
      documented names are looked for under the cgroup root.

Linux (proc(5), Documentation/admin-guide/cgroup-v2.rst and cgroup-v1/)
    * ``/proc/<pid>/cgroup``: ``hierarchy-ID:controllers:path`` lines; ``0::path`` is the v2 one.
      ``/proc/<pid>/status`` ``Uid:`` (real first) and ``PPid:``; ``/proc/<pid>/environ`` NUL-separated.
    * v2 (the root has ``cgroup.controllers``): ``cpu.stat`` ``usage_usec``, ``memory.current``,
      ``memory.peak`` (kernel 5.19 and later). v1: ``cpuacct.usage`` (ns) in the ``cpuacct`` or
      ``cpu,cpuacct`` hierarchy, ``memory.usage_in_bytes`` and ``memory.max_usage_in_bytes``.
      Both memory figures count page cache.
"""

import calendar
import logging
import os
import pwd
import re
import shlex
import subprocess
import time

LOG = logging.getLogger("fedgpu.workloads")

EXECUTE_DIR = "/var/lib/condor/execute"
CGROUP_ROOT = "/sys/fs/cgroup"
PROC_ROOT = "/proc"
BASE_CGROUP = "htcondor"
UNIT_PATTERN = "jupyter-*-singleuser.service"
UNIT_RE = re.compile(r"^jupyter-(?P<user>.+)-singleuser\.service$")
SHOW_PROPERTIES = ("Id", "User", "InvocationID", "Environment", "EnvironmentFiles", "ControlGroup", "CPUQuotaPerSecUSec",
                   "MemoryMax", "MemoryLimit", "ActiveEnterTimestamp", "MainPID")
MIB = 1024.0 * 1024.0

_STRING_RE = re.compile(r'^"((?:[^"\\]|\\.)*)"$', re.S)
_INT_RE = re.compile(r"^[+-]?\d+$")
_FLOAT_RE = re.compile(r"^[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?$")
_TIMESPAN_UNITS = {"us": 1e-6, "usec": 1e-6, "\u00b5s": 1e-6, "ms": 1e-3, "msec": 1e-3, "s": 1.0, "sec": 1.0,
                   "min": 60.0, "m": 60.0, "h": 3600.0, "hr": 3600.0, "d": 86400.0}
_TIMESPAN_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([a-z\u00b5]+)")
_WARNED = set()


# ----------------------------------------------------------------------------------------------- helpers


def _read(path, mode="r"):
    """A file's content, or None when it cannot be read (gone, no permission)."""
    try:
        with open(path, mode) as handle:  # pylint: disable=unspecified-encoding
            return handle.read()
    except (OSError, UnicodeDecodeError):
        return None


def _warn_once(key, message, *args):
    if key not in _WARNED:
        _WARNED.add(key)
        LOG.warning(message, *args)


def to_number(value):
    """A float from an int/float (not bool) or a numeric string; else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and _FLOAT_RE.match(value.strip()):
        return float(value.strip())
    return None


def ad_get(ad, name):
    """ClassAd attribute names are case-insensitive."""
    if name in ad:
        return ad[name]
    lower = name.lower()
    for key, value in ad.items():
        if key.lower() == lower:
            return value
    return None


def _username(uid):
    if uid is None:
        return None
    try:
        return pwd.getpwuid(uid).pw_name
    except (KeyError, OverflowError):
        return None


def uid_of(name):
    if not name:
        return None
    if str(name).isdigit():
        return int(name)
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        return None


def run_command(argv):
    """Run a command: (exit status, stdout). A missing command or a timeout is a failure, not an exception."""
    env = dict(os.environ, LC_ALL="C", SYSTEMD_COLORS="0", SYSTEMD_PAGER="")
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=20, env=env, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        LOG.warning("%s failed: %s", argv[0], exc)
        return 127, ""
    return done.returncode, done.stdout


# --------------------------------------------------------------------------------------------- ClassAds


def parse_classad(text):
    """A ClassAd in long format (``Attr = value`` lines) -> {attr: value}.

    Quoted strings come back unquoted (``\\"`` and ``\\\\`` unescaped), integers as int, reals as float,
    true/false as bool; anything else (expressions, lists, ``undefined``) as the raw text. Blank lines,
    comments and lines without ``=`` are skipped. Attribute names keep their case.
    """
    ad = {}
    for line in (text or "").splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "--")) or "=" not in line:
            continue
        name, dummy, raw = line.partition("=")
        name, raw = name.strip(), raw.strip()
        if not name or not re.match(r"^[A-Za-z_][A-Za-z0-9_.]*$", name):
            continue
        ad[name] = _classad_value(raw)
    return ad


def _classad_value(raw):
    match = _STRING_RE.match(raw)
    if match:
        return re.sub(r'\\(["\\])', r"\1", match.group(1))
    if _INT_RE.match(raw):
        return int(raw)
    if _FLOAT_RE.match(raw):
        return float(raw)
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    return raw


def community_of(accounting_group, prefix="group_", with_user=True):
    """The community of an AccountingGroup: ``group_cms.alice`` -> ``cms``, ``group_physics.cms.alice`` -> ``cms``.

    The last dot-separated part is the user (``with_user=False`` for AcctGroup, which has none); the group
    part before it is hierarchical and its last component is the community; the ``group_`` prefix of a
    top-level group is dropped. An AccountingGroup without a dot is a group only.
    """
    if not isinstance(accounting_group, str) or not accounting_group.strip():
        return None
    parts = accounting_group.strip().split(".")
    groups = parts[:-1] if with_user and len(parts) > 1 else parts
    community = groups[-1]
    if len(groups) == 1 and community.startswith(prefix):
        community = community[len(prefix):]
    return community or None


# ---------------------------------------------------------------------------------------- /proc helpers


def _proc_status(pid, proc_root):
    """{'uid': real uid, 'ppid': parent pid} from /proc/<pid>/status, or None when the process is gone."""
    text = _read(os.path.join(proc_root, str(pid), "status"))
    if text is None:
        return None
    info = {"uid": None, "ppid": None}
    for line in text.splitlines():
        key, dummy, value = line.partition(":")
        fields = value.split()
        if key == "Uid" and fields:
            info["uid"] = int(fields[0])
        elif key == "PPid" and fields:
            info["ppid"] = int(fields[0])
    return info


def _proc_cgroups(pid, proc_root):
    """[(controllers, path)] from /proc/<pid>/cgroup; controllers '' for the v2 line."""
    text = _read(os.path.join(proc_root, str(pid), "cgroup"))
    out = []
    for line in (text or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            out.append((parts[1], parts[2].strip()))
    return out


def _proc_environ(pid, proc_root):
    """{name: value} from /proc/<pid>/environ (NUL-separated), {} when unreadable."""
    data = _read(os.path.join(proc_root, str(pid), "environ"), "rb")
    env = {}
    for item in (data or b"").split(b"\0"):
        name, sep, value = item.partition(b"=")
        if sep and name:
            env[name.decode("utf-8", "replace")] = value.decode("utf-8", "replace")
    return env


def _pids(proc_root):
    try:
        names = os.listdir(proc_root)
    except OSError:
        return []
    return sorted(int(name) for name in names if name.isdigit())


def _under(path, cgroup):
    """Whether cgroup path ``path`` is ``cgroup`` or below it."""
    if not path or not cgroup or cgroup.strip("/") == "":
        return False
    path, cgroup = "/" + path.strip("/"), "/" + cgroup.strip("/")
    return path == cgroup or path.startswith(cgroup + "/")


# ------------------------------------------------------------------------------------ JupyterHub (systemd)


def parse_show(text):
    """``systemctl show`` output -> {property: value}; EnvironmentFiles as a list (one line per file)."""
    props = {"EnvironmentFiles": []}
    for line in (text or "").splitlines():
        key, sep, value = line.partition("=")
        if not sep:
            continue
        if key == "EnvironmentFiles":
            if value.strip():
                props[key].append(value.strip())
        else:
            props[key] = value
    return props


def parse_environment_property(value):
    """The ``Environment`` property (``A=1 "B=two words"``) -> dict."""
    try:
        items = shlex.split(value or "")
    except ValueError:
        items = (value or "").split()
    env = {}
    for item in items:
        name, sep, val = item.partition("=")
        if sep and name:
            env[name] = val
    return env


def parse_environment_file(text):
    """An EnvironmentFile (``KEY=value`` lines, values maybe shell-quoted, ``#``/``;`` comments) -> dict."""
    env = {}
    for line in (text or "").splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("export "):
            line = line[len("export "):].lstrip()
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep or not name:
            continue
        try:
            words = shlex.split(value)
        except ValueError:
            words = [value.strip()]
        env[name] = " ".join(words)
    return env


def parse_timespan(value):
    """A systemd time span (``2s``, ``1.500000s``, ``200ms``, ``1min 30s``) in seconds; ``infinity`` or junk -> None."""
    value = (value or "").strip()
    if not value or value == "infinity" or value == "[not set]":
        return None
    total, pos, found = 0.0, 0, False
    for match in _TIMESPAN_RE.finditer(value):
        if value[pos:match.start()].strip():
            return None
        unit = _TIMESPAN_UNITS.get(match.group(2))
        if unit is None:
            return None
        total += float(match.group(1)) * unit
        pos, found = match.end(), True
    if not found or value[pos:].strip():
        return None
    return total


def parse_bytes(value):
    """A systemd byte limit (an integer, ``infinity``, empty) -> MiB or None."""
    value = (value or "").strip()
    if not value.isdigit():
        return None
    number = int(value)
    if number >= 2 ** 64 - 1:  # UINT64_MAX is how D-Bus spells infinity
        return None
    return number / MIB


def parse_timestamp(value):
    """A systemd timestamp (``Sat 2026-01-10 12:34:56 UTC``, ``@1767000000``) -> epoch seconds, None if unset.

    Zones other than UTC/GMT or a numeric offset are taken as the node's local time, which is what
    systemctl prints them in.
    """
    value = (value or "").strip()
    if not value or value == "n/a":
        return None
    if value.startswith("@"):
        return to_number(value[1:])
    match = re.search(r"(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(\.\d+)?\s*(\S+)?", value)
    if not match:
        return None
    fields = tuple(int(match.group(i)) for i in range(1, 7))
    fraction = float(match.group(7)) if match.group(7) else 0.0
    zone = match.group(8) or ""
    if zone.upper() in ("UTC", "GMT", "Z", "UTC+0", "+0000", "+00:00"):
        return calendar.timegm(fields + (0, 0, 0)) + fraction
    offset = re.match(r"^([+-])(\d{2}):?(\d{2})$", zone)
    if offset:
        seconds = int(offset.group(2)) * 3600 + int(offset.group(3)) * 60
        return calendar.timegm(fields + (0, 0, 0)) - (seconds if offset.group(1) == "+" else -seconds) + fraction
    return time.mktime(fields + (0, 0, -1)) + fraction


def list_jupyter_units(runner=None, proc_root=PROC_ROOT):
    """The active ``jupyter-*-singleuser.service`` units, one dict each.

    Keys: unit, username (JUPYTERHUB_USER, else the unit's user, else from the unit name), uid,
    invocation_id, environment (dict: Environment, then EnvironmentFiles, then /proc/<MainPID>/environ for
    what is missing), cgroup (ControlGroup), cpus (CPUQuotaPerSecUSec in CPUs), mem_mib (MemoryMax, else
    MemoryLimit), started (ActiveEnterTimestamp), main_pid. A unit that ``systemctl show`` cannot show is
    left out (it stopped in between). ``runner(argv) -> (rc, stdout)`` runs systemctl (tests inject it).
    """
    runner = runner or run_command
    rc, out = runner(["systemctl", "list-units", "--type=service", "--state=active", "--plain", "--no-legend",
                      UNIT_PATTERN])
    if rc != 0:
        _warn_once(("list-units", rc), "systemctl list-units failed (exit %s): no JupyterHub servers (logged once)", rc)
        return []
    units = []
    for line in (out or "").splitlines():
        words = [word for word in line.split() if word not in ("\u25cf", "*")]
        if words and UNIT_RE.match(words[0]) and words[0] not in units:
            units.append(words[0])
    result = []
    for unit in units:
        rc, out = runner(["systemctl", "show", "-p", ",".join(SHOW_PROPERTIES), unit])
        if rc != 0:
            LOG.info("systemctl show %s failed (exit %s): skipped", unit, rc)
            continue
        props = parse_show(out)
        if props.get("ActiveState") not in (None, "active"):
            continue
        result.append(_unit_record(unit, props, proc_root))
    return result


def _unit_record(unit, props, proc_root):
    env = parse_environment_property(props.get("Environment", ""))
    for entry in props.get("EnvironmentFiles", []):
        path = re.sub(r"\s+\(ignore_errors=\w+\)$", "", entry).lstrip("-")
        text = _read(path)
        if text is None:
            LOG.info("%s: cannot read its EnvironmentFile %s", unit, path)
            continue
        for key, value in parse_environment_file(text).items():
            env.setdefault(key, value)
    main_pid = int(props["MainPID"]) if props.get("MainPID", "").isdigit() and int(props["MainPID"]) > 0 else None
    wanted = ("CUDA_VISIBLE_DEVICES", "JUPYTERHUB_USER", "FEDGPU_FLAVOUR", "FEDGPU_COMMUNITY")
    if main_pid and any(name not in env for name in wanted):
        for key, value in _proc_environ(main_pid, proc_root).items():
            env.setdefault(key, value)
    user = (props.get("User") or "").strip()
    uid = uid_of(user)
    if uid is None and main_pid:
        status = _proc_status(main_pid, proc_root)
        uid = status["uid"] if status else None
    name_match = UNIT_RE.match(props.get("Id") or unit) or UNIT_RE.match(unit)
    username = env.get("JUPYTERHUB_USER") or (user if user and not user.isdigit() else None) or _username(uid) \
        or (name_match.group("user") if name_match else None)
    mem = parse_bytes(props.get("MemoryMax"))
    if mem is None:
        mem = parse_bytes(props.get("MemoryLimit"))
    return {
        "unit": props.get("Id") or unit,
        "username": username,
        "uid": uid,
        "invocation_id": (props.get("InvocationID") or "").strip() or None,
        "environment": env,
        "cgroup": (props.get("ControlGroup") or "").strip() or None,
        "cpus": parse_timespan(props.get("CPUQuotaPerSecUSec")),
        "mem_mib": mem,
        "started": parse_timestamp(props.get("ActiveEnterTimestamp")),
        "main_pid": main_pid,
    }


# ---------------------------------------------------------------------------------------------- HTCondor


def job_cgroup_from_paths(paths, base=BASE_CGROUP):
    """The job's own cgroup among a process's cgroup paths, cut after the job's component; None if none is one.

    A component ``condor_<execute dir>_<slot>`` (the documented name) wins; else the component after
    BASE_CGROUP (``htcondor/<slot>``).
    """
    for path in paths:
        parts = [part for part in path.split("/") if part]
        for i, part in enumerate(parts):
            if part.startswith("condor_"):
                return "/" + "/".join(parts[:i + 1])
    for path in paths:
        parts = [part for part in path.split("/") if part]
        if base in parts[:-1]:
            i = parts.index(base)
            return "/" + "/".join(parts[:i + 2])
    return None


def _ordered_cgroup_paths(cgroups):
    """The v1 memory/cpuacct paths first, then the v2 path, then the rest."""
    def rank(entry):
        controllers = entry[0].split(",")
        if "memory" in controllers or "cpuacct" in controllers:
            return 0
        return 1 if entry[0] == "" else 2
    return [entry[1] for entry in sorted(cgroups, key=rank)]


def condor_cgroup_names(execute_dir, slot_name, base=BASE_CGROUP):
    """The documented cgroup names of a job in ``execute_dir`` on slot ``slot_name`` (``slot1_1@host``)."""
    if not slot_name:
        return []
    flat = "condor" + os.path.normpath(execute_dir).replace("/", "_")
    slot = slot_name.split("@")[0]
    names = []
    for parent in ("/system.slice/" + base, "/" + base):
        names += [parent + "/" + flat + "_" + slot_name, parent + "/" + flat + "_" + slot, parent + "/" + slot_name,
                  parent + "/" + slot]
    return names


def _probe_cgroup(names, cgroup_root):
    for name in names:
        rel = name.strip("/")
        for sub in ("", "memory", "cpuacct", "cpu,cpuacct"):
            if os.path.isdir(os.path.join(cgroup_root, sub, rel)):
                return name
    return None


def list_condor_jobs(execute_dir=EXECUTE_DIR, proc_root=PROC_ROOT, cgroup_root=CGROUP_ROOT):
    """The HTCondor jobs running here: one dict per ``<execute_dir>/dir_<starter pid>`` with a readable ``.job.ad``.

    Keys: dir, starter_pid, job_ad, machine_ad (dicts from parse_classad; {} when unreadable), job_pid (a
    child of the starter, None if none is found), uid (the job process's real uid, else the Owner's),
    cgroup (from the job process's /proc/<pid>/cgroup, else a documented name that exists under
    ``cgroup_root``, else None), assigned_gpus (the slot ad's AssignedGPUs, else the job process's
    ``_CONDOR_AssignedGPUs``; a string or None). A directory whose starter is gone from ``proc_root``
    is a leftover and is skipped. ``execute_dir`` may be a list of directories.
    """
    dirs = [execute_dir] if isinstance(execute_dir, str) else list(execute_dir or [])
    found = []
    for top in dirs:
        try:
            names = sorted(os.listdir(top))
        except OSError:
            continue
        for name in names:
            match = re.match(r"^dir_(\d+)$", name)
            path = os.path.join(top, name)
            if match and os.path.isdir(path):
                found.append((top, path, int(match.group(1))))
    if not found:
        return []
    proc_ok = os.path.isdir(proc_root)
    children = {}
    if proc_ok:
        starters = {entry[2] for entry in found}
        for pid in _pids(proc_root):
            status = _proc_status(pid, proc_root)
            if status and status["ppid"] in starters:
                children.setdefault(status["ppid"], []).append((pid, status))
    jobs = []
    for top, path, starter in found:
        if proc_ok and not os.path.isdir(os.path.join(proc_root, str(starter))):
            LOG.debug("%s: starter %s is gone, leftover directory skipped", path, starter)
            continue
        job_text = _read(os.path.join(path, ".job.ad"))
        if job_text is None:
            LOG.debug("%s: no readable .job.ad (job not started yet?)", path)
            continue
        job_ad = parse_classad(job_text)
        machine_ad = parse_classad(_read(os.path.join(path, ".machine.ad")) or "")
        job_pid, uid, cgroup, env = None, None, None, {}
        for pid, status in sorted(children.get(starter, [])):
            cgroup = job_cgroup_from_paths(_ordered_cgroup_paths(_proc_cgroups(pid, proc_root)))
            job_pid, uid = pid, status["uid"]
            env = _proc_environ(pid, proc_root)
            if cgroup:
                break
        if cgroup is None:
            cgroup = _probe_cgroup(condor_cgroup_names(top, ad_get(machine_ad, "Name")), cgroup_root)
        if uid is None:
            uid = uid_of(ad_get(job_ad, "Owner"))
        assigned = ad_get(machine_ad, "AssignedGPUs")
        if assigned is None:
            assigned = env.get("_CONDOR_AssignedGPUs")
        jobs.append({"dir": path, "starter_pid": starter, "job_ad": job_ad, "machine_ad": machine_ad,
                     "job_pid": job_pid, "uid": uid, "cgroup": cgroup,
                     "assigned_gpus": assigned if isinstance(assigned, str) else None})
    return jobs


# ----------------------------------------------------------------------------------------------- devices


def split_device_names(value):
    """``"GPU-1a2b3c4d, CUDA1"`` or ``"0,1"`` -> names; empty -> []."""
    if not isinstance(value, str):
        return []
    return [name for name in re.split(r"[,\s]+", value.strip()) if name]


def resolve_devices(names, devices, context=""):
    """Device names (full uuid, ``GPU-<8 hex>`` prefix, ``CUDA<n>``, ``<n>``) -> full uuids, in order, once each.

    ``<n>`` and ``CUDA<n>`` are the index among the whole GPUs (devices without parent_uuid): their
    ``index``, else their position. A name that matches no device, or more than one, is kept as it is
    and logged (once per name).
    """
    devices = [dev for dev in devices or [] if dev.get("uuid")]
    whole = [dev for dev in devices if not dev.get("parent_uuid")]
    by_index = {}
    for pos, dev in enumerate(whole):
        index = dev.get("index")
        by_index[int(index) if to_number(index) is not None else pos] = dev["uuid"]
    out = []
    for name in names:
        resolved = None
        lowered = name.lower()
        exact = [dev["uuid"] for dev in devices if dev["uuid"].lower() == lowered]
        number = re.match(r"^(?:cuda)?(\d+)$", lowered)
        if exact:
            resolved = exact[0]
        elif number:
            resolved = by_index.get(int(number.group(1)))
        elif re.match(r"^(gpu|mig)-[0-9a-f-]+$", lowered):
            prefix = [dev["uuid"] for dev in devices if dev["uuid"].lower().startswith(lowered)]
            if len(prefix) == 1:
                resolved = prefix[0]
        if resolved is None:
            _warn_once((context, name), "%sdevice name %r matches no single device of this node: kept as it is",
                       context + ": " if context else "", name)
            resolved = name
        if resolved not in out:
            out.append(resolved)
    return out


# ------------------------------------------------------------------------------------------ allocations


def allocations(host, devices, runner=None, execute_dir=EXECUTE_DIR, now=None, proc_root=PROC_ROOT,
                cgroup_root=CGROUP_ROOT):
    """Every JupyterHub server and HTCondor job on the node, with or without devices, as Workload dicts.

    Workload keys: workload_id, kind, host, username, uid, community, flavour, requested_cpus,
    requested_mem_mib, requested_gpus, devices (full uuids; unknown names kept), started, cgroup.
    ``now`` (default: the clock) clamps a start time in the future (clock skew) to now.
    """
    now = time.time() if now is None else now
    out = []
    for unit in list_jupyter_units(runner, proc_root=proc_root):
        env = unit["environment"]
        ident = unit["invocation_id"] or unit["unit"]
        names = split_device_names(env.get("CUDA_VISIBLE_DEVICES")) if "CUDA_VISIBLE_DEVICES" in env else None
        devs = resolve_devices(names or [], devices, unit["unit"])
        out.append({
            "workload_id": "jupyter:%s:%s" % (host, ident), "kind": "jupyter", "host": host,
            "username": unit["username"], "uid": unit["uid"],
            "community": env.get("FEDGPU_COMMUNITY") or None, "flavour": env.get("FEDGPU_FLAVOUR") or None,
            "requested_cpus": unit["cpus"], "requested_mem_mib": unit["mem_mib"],
            "requested_gpus": float(len(devs)) if names is not None else None, "devices": devs,
            "started": _clamp(unit["started"], now), "cgroup": unit["cgroup"],
        })
    for job in list_condor_jobs(execute_dir, proc_root=proc_root, cgroup_root=cgroup_root):
        out.append(condor_workload(job, host, devices, now))
    return out


def condor_workload(job, host, devices, now):
    job_ad, machine_ad = job["job_ad"], job["machine_ad"]
    global_id = ad_get(job_ad, "GlobalJobId")
    if isinstance(global_id, str) and global_id:
        ident = global_id
    else:
        ident = "%s#%s.%s#%s" % (host, ad_get(job_ad, "ClusterId"), ad_get(job_ad, "ProcId"), job["starter_pid"])
    devs = resolve_devices(split_device_names(job["assigned_gpus"]), devices, "condor:" + ident)
    cpus = to_number(ad_get(job_ad, "RequestCpus"))
    cpus = cpus if cpus is not None else to_number(ad_get(machine_ad, "Cpus"))
    mem = to_number(ad_get(job_ad, "RequestMemory"))
    mem = mem if mem is not None else to_number(ad_get(machine_ad, "Memory"))
    gpus = to_number(ad_get(job_ad, "RequestGPUs"))
    if gpus is None:
        gpus = to_number(ad_get(machine_ad, "GPUs"))
    if gpus is None:
        gpus = float(len(devs))
    started = to_number(ad_get(job_ad, "JobStartDate"))
    if started is None:
        started = to_number(ad_get(job_ad, "JobCurrentStartDate"))
    group = ad_get(job_ad, "AccountingGroup")
    community = community_of(group) if isinstance(group, str) else None
    if community is None and isinstance(ad_get(job_ad, "AcctGroup"), str):
        community = community_of(ad_get(job_ad, "AcctGroup"), with_user=False)
    owner = ad_get(job_ad, "Owner")
    return {
        "workload_id": "condor:" + ident, "kind": "condor", "host": host,
        "username": owner if isinstance(owner, str) and owner else _username(job["uid"]), "uid": job["uid"],
        "community": community, "flavour": None,
        "requested_cpus": cpus, "requested_mem_mib": mem, "requested_gpus": gpus, "devices": devs,
        "started": _clamp(started, now), "cgroup": job["cgroup"],
    }


def _clamp(started, now):
    if started is not None and now is not None and started > now:
        return float(now)
    return started


# -------------------------------------------------------------------------------------------- attribution


def attribute(pid, workloads, host, proc_root=PROC_ROOT):
    """Which workload a process belongs to: dict(pid, uid, username, workload_id, kind); None if it is gone.

    In order: the workload whose cgroup holds the process (the deepest one); its environ's
    ``_CONDOR_JOB_AD`` (the job's GlobalJobId, ``condor:<GlobalJobId>`` even if the job is not among
    ``workloads``); its ``JUPYTERHUB_USER`` with a running server of that user (the one with the
    process's uid if there are several); else ``other:<host>:<uid>``. uid is the real uid from
    /proc/<pid>/status, username its passwd name (None if unknown).
    """
    status = _proc_status(pid, proc_root)
    if status is None:
        return None
    uid = status["uid"]
    result = {"pid": int(pid), "uid": uid, "username": _username(uid), "workload_id": None, "kind": None}
    paths = [entry[1] for entry in _proc_cgroups(pid, proc_root)]
    best, depth = None, -1
    for workload in workloads or []:
        cgroup = workload.get("cgroup")
        if cgroup and any(_under(path, cgroup) for path in paths):
            level = len([part for part in cgroup.split("/") if part])
            if level > depth:
                best, depth = workload, level
    if best is not None:
        result.update(workload_id=best["workload_id"], kind=best["kind"])
        return result
    env = _proc_environ(pid, proc_root)
    job_ad_path = env.get("_CONDOR_JOB_AD")
    if job_ad_path:
        global_id = ad_get(parse_classad(_read(job_ad_path) or ""), "GlobalJobId")
        if isinstance(global_id, str) and global_id:
            result.update(workload_id="condor:" + global_id, kind="condor")
            return result
    hub_user = env.get("JUPYTERHUB_USER")
    if hub_user:
        servers = [w for w in workloads or [] if w.get("kind") == "jupyter" and w.get("username") == hub_user]
        if len(servers) > 1:
            servers = [w for w in servers if w.get("uid") == uid] or servers
        if servers:
            result.update(workload_id=servers[0]["workload_id"], kind="jupyter")
            return result
    result.update(workload_id="other:%s:%s" % (host, uid), kind="other")
    return result


# -------------------------------------------------------------------------------------------- cgroup usage


def cgroup_usage(cgroup, root=CGROUP_ROOT):
    """CPU and memory of a cgroup: dict(cpu_seconds, mem_mib, mem_peak_mib, version) or None if it is gone.

    v2 when ``root`` has cgroup.controllers: cpu.stat usage_usec, memory.current, memory.peak (None
    before kernel 5.19). v1: cpuacct.usage (ns) under ``cpuacct`` or ``cpu,cpuacct``,
    memory.usage_in_bytes and memory.max_usage_in_bytes under ``memory``. A figure that cannot be read
    is None.
    """
    if not cgroup:
        return None
    rel = cgroup.strip("/")
    if os.path.exists(os.path.join(root, "cgroup.controllers")):
        path = os.path.join(root, rel)
        if not rel or not os.path.isdir(path):
            return None
        usec = _stat_field(_read(os.path.join(path, "cpu.stat")), "usage_usec")
        return {"cpu_seconds": usec / 1e6 if usec is not None else None,
                "mem_mib": _bytes_file(os.path.join(path, "memory.current")),
                "mem_peak_mib": _bytes_file(os.path.join(path, "memory.peak")),
                "version": 2}
    if not rel:
        return None
    cpu_dir = None
    for name in ("cpuacct", "cpu,cpuacct", "cpuacct,cpu"):
        candidate = os.path.join(root, name, rel)
        if os.path.isdir(candidate):
            cpu_dir = candidate
            break
    mem_dir = os.path.join(root, "memory", rel)
    mem_dir = mem_dir if os.path.isdir(mem_dir) else None
    if cpu_dir is None and mem_dir is None:
        return None
    nsec = to_number((_read(os.path.join(cpu_dir, "cpuacct.usage")) or "").strip()) if cpu_dir else None
    return {"cpu_seconds": nsec / 1e9 if nsec is not None else None,
            "mem_mib": _bytes_file(os.path.join(mem_dir, "memory.usage_in_bytes")) if mem_dir else None,
            "mem_peak_mib": _bytes_file(os.path.join(mem_dir, "memory.max_usage_in_bytes")) if mem_dir else None,
            "version": 1}


def _stat_field(text, field):
    for line in (text or "").splitlines():
        words = line.split()
        if len(words) == 2 and words[0] == field and words[1].isdigit():
            return int(words[1])
    return None


def _bytes_file(path):
    value = (_read(path) or "").strip()
    return int(value) / MIB if value.isdigit() else None

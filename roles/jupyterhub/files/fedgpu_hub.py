# Managed by fedgpu.platform.jupyterhub: hub-side logic, imported by
# /etc/jupyterhub/jupyterhub_config.py.
#
# The decisions (which environments and flavours a user may see and pick,
# which GPU or MIG device a server gets, which areas are linked into the
# home) are pure functions of plain data, unit-tested without JupyterHub
# (tests/unit/test_jupyterhub_hub.py). The JupyterHub glue at the end only
# reads the hub's objects and calls them.
"""Options filtering by group, GPU/MIG device allocation and home links for JupyterHub."""

import copy
import html
import json
import os
import time

GPU_KINDS = ("none", "full", "mig")


class ChoiceError(ValueError):
    """The user asked for an environment or flavour they may not use."""


class NoFreeDevice(RuntimeError):
    """Every device a flavour can use is taken by another server."""


class ServerUnavailable(RuntimeError):
    """The user's server cannot start on this host (missing area, failed unit)."""


# ---------------------------------------------------------------- groups


def normalise_group(name):
    """An identity-provider group as a community name: '/ml-infn' -> 'ml-infn'."""
    return str(name).strip().lstrip("/")


def normalise_groups(groups):
    """Sorted, unique community names from a claim value (list, or one string)."""
    if groups is None:
        return []
    if isinstance(groups, str):
        groups = [groups]
    return sorted({normalise_group(g) for g in groups if normalise_group(g)})


def groups_from_auth_state(auth_state, claim="wlcg.groups"):
    """The user's groups from oauthenticator's auth_state (claim read as one key, dots and all)."""
    user = (auth_state or {}).get("oauth_user") or {}
    return normalise_groups(user.get(claim, []))


# ------------------------------------------------------ options by group


def visible(item, groups):
    """An environment or flavour with no groups is for everyone; otherwise for its groups' members."""
    wanted = item.get("groups") or []
    return not wanted or bool(set(wanted) & set(groups))


def visible_environments(environments, groups):
    return [e for e in environments if visible(e, groups)]


def visible_flavours(flavours, groups, use_gpu=True):
    return [f for f in flavours if visible(f, groups) and (use_gpu or f.get("gpu", "none") == "none")]


def _option(item, selected=None):
    name = html.escape(item["name"], quote=True)
    label = html.escape(item.get("display_name") or item["name"])
    mark = " selected" if item["name"] == selected else ""
    return '    <option value="%s"%s>%s</option>' % (name, mark, label)


def options_form_html(environments, flavours, selected=None):
    """The spawn form: two selects, ``environment`` and ``flavour``, values are the items' names.

    ``selected``: the user's last choice (user_options), shown selected again.
    """
    selected = selected or {}
    if not environments or not flavours:
        return (
            '<div class="alert alert-warning">No environment or flavour is open to your groups. '
            "Ask the platform's operators to add your group.</div>"
        )
    parts = ['<div class="form-group">', '  <label for="fedgpu-environment">Environment</label>',
             '  <select class="form-control" name="environment" id="fedgpu-environment">']
    parts += [_option(e, selected.get("environment")) for e in environments]
    parts += ["  </select>", "</div>", '<div class="form-group">',
              '  <label for="fedgpu-flavour">Flavour</label>',
              '  <select class="form-control" name="flavour" id="fedgpu-flavour">']
    parts += [_option(f, selected.get("flavour")) for f in flavours]
    parts += ["  </select>", "</div>"]
    return "\n".join(parts)


def options_from_formdata(formdata):
    """Form fields (lists of strings) to user_options."""
    def first(key):
        value = formdata.get(key) or [""]
        return value[0] if isinstance(value, (list, tuple)) else value
    return {"environment": first("environment"), "flavour": first("flavour")}


def choose(user_options, groups, environments, flavours, use_gpu=True):
    """Check a choice against the user's groups; return (environment, flavour) or raise ChoiceError.

    Never trusts the form: a name that is not visible to the groups is refused
    just like an unknown one. With no choice, the first visible item is used.
    """
    envs = visible_environments(environments, groups)
    flavs = visible_flavours(flavours, groups, use_gpu)
    shown = ", ".join(groups) or "none"
    picked = []
    for kind, key, items, every in (("environment", "environment", envs, environments),
                                    ("flavour", "flavour", flavs, flavours)):
        name = (user_options or {}).get(key) or ""
        if not name:
            if not items:
                raise ChoiceError("No %s is open to your groups (%s). Ask the platform's operators." % (kind, shown))
            picked.append(items[0])
            continue
        match = [i for i in items if i["name"] == name]
        if not match:
            if any(i["name"] == name for i in every):
                raise ChoiceError("The %s '%s' is not open to your groups (%s)." % (kind, name, shown))
            raise ChoiceError("There is no %s named '%s'." % (kind, name))
        picked.append(match[0])
    return picked[0], picked[1]


# ------------------------------------------------------ device allocation


def device_kind(flavour):
    if flavour.get("gpu", "none") == "mig":
        return "MIG %s slice" % flavour.get("mig_profile", "?")
    return "GPU"


def device_candidates(flavour, gpus):
    """The devices a flavour may use: whole GPUs for 'full', slices of its profile for 'mig'."""
    kind = flavour.get("gpu", "none")
    if kind == "full":
        return [d for d in gpus if not d.get("mig_profile")]
    if kind == "mig":
        return [d for d in gpus if d.get("mig_profile") == flavour.get("mig_profile")]
    return []


def allocate_device(flavour, gpus, used_ids):
    """The first free device for a flavour, None for a CPU flavour; NoFreeDevice when all are taken."""
    if flavour.get("gpu", "none") == "none":
        return None
    candidates = device_candidates(flavour, gpus)
    if not candidates:
        raise NoFreeDevice("This platform has no %s for the flavour '%s'. Pick another flavour."
                           % (device_kind(flavour), flavour.get("display_name") or flavour["name"]))
    used = set(used_ids)
    for device in candidates:
        if device["id"] not in used:
            return device
    what = device_kind(flavour)
    plural = "" if len(candidates) == 1 else "s"
    return _raise_busy(what, plural, len(candidates))


def _raise_busy(what, plural, count):
    if count == 1:
        raise NoFreeDevice("No free %s right now: the only one is in use. Try again later or pick another flavour." % what)
    raise NoFreeDevice("No free %s right now: all %d are in use. Try again later or pick another flavour." % (what, count))


def kubespawner_profiles(profiles, choices, environments, flavours, groups, use_gpu=True):
    """KubeSpawner's ``profile_list`` for a user: one profile per visible flavour, the visible environments as its choices.

    ``profiles`` (flavour name -> profile) and ``choices`` (environment name ->
    choice) are made by the filter fedgpu.platform.z2jh_values. Empty when no
    environment or no flavour is open to the groups (no form; the spawn is refused).
    """
    envs = visible_environments(environments, groups)
    flavs = visible_flavours(flavours, groups, use_gpu)
    if not envs or not flavs:
        return []
    out = []
    for flavour in flavs:
        profile = copy.deepcopy(profiles[flavour["name"]])
        profile["profile_options"] = {"environment": {
            "display_name": "Environment",
            "choices": {e["name"]: copy.deepcopy(choices[e["name"]]) for e in envs}}}
        out.append(profile)
    return out


def used_devices(servers, exclude=None):
    """Device ids held by active servers: ``servers`` yields (spawner-like, device id or None)."""
    return {device for spawner, device in servers if device and spawner is not exclude}


# ------------------------------------------------------ environment, home


def home_links(username, groups, shared_root, collab_root, collab_prefix="collab-"):
    """Links made in the home: ``shared`` to the user's shared area, one per group to its collaborative area."""
    links = [("shared", os.path.join(shared_root, username))]
    links += [(collab_prefix + g, os.path.join(collab_root, g)) for g in groups]
    return links


def spawn_env(environment, device, links, base_path="/usr/local/bin:/usr/bin:/bin"):
    """Variables of the user's server: the environment's bin/ first, the device, the links to make."""
    env = {
        "PATH": "%s/bin:%s" % (environment["path"].rstrip("/"), base_path) if environment.get("path") else base_path,
        # No device: no GPU visible to CUDA (a CPU flavour on a GPU host).
        "CUDA_VISIBLE_DEVICES": device["id"] if device else "",
        "NVIDIA_VISIBLE_DEVICES": device["id"] if device else "void",
        "FEDGPU_ENVIRONMENT": environment["name"],
        # name=target;name=target (one line: systemd environment files).
        "FEDGPU_LINKS": ";".join("%s=%s" % link for link in links),
    }
    return env


# ------------------------------------------------ failing fast, with a reason


def missing_home_message(home):
    """The text for a user whose private area is not there, or None when it is."""
    if os.path.isdir(home):
        return None
    parent = os.path.dirname(home.rstrip("/"))
    where = ("the shared storage (%s) is not available on this host" % parent if not os.path.isdir(parent)
             else "it has not been created yet")
    return ("Your private area %s does not exist: %s. Nothing was started. "
            "Please tell the platform's administrators." % (home, where))


def parse_unit_properties(text):
    """``systemctl show -p A -p B`` output as a dict."""
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def unit_failure_message(unit, properties, journal_lines, failed_mounts=()):
    """The text for a server whose unit stopped or never started, from ``systemctl show`` and its journal.

    ``failed_mounts``: mount points the server needs (its home is on them) whose mount failed.
    Returns None while the unit is still starting or running.
    """
    state = properties.get("ActiveState", "")
    if state in ("active", "activating", "reloading"):
        return None
    result = properties.get("Result", "")
    lines = [line.strip() for line in journal_lines if line.strip()]
    reasons = {
        "dependency": "something it needs on this host (a mount or another unit) failed",
        "exit-code": "its process exited with an error",
        "signal": "its process was killed",
        "oom-kill": "it ran out of memory",
        "timeout": "it did not start in time",
        "resources": "the host could not give it what it needs",
    }
    if failed_mounts:
        reason = "the storage it needs could not be mounted on this host (%s)" % ", ".join(failed_mounts)
    elif result == "dependency" or any("Dependency failed" in line for line in lines):
        reason = reasons["dependency"]
    elif properties.get("LoadState") == "not-found" or (result in ("", "success") and not lines):
        reason = "it stopped at once"
    else:
        reason = reasons.get(result, "it ended (%s)" % (result or state))
    detail = (" Last messages: " + " | ".join(lines[-4:])) if lines else ""
    return ("Your server could not start: %s (unit %s, %s).%s Nothing is running for you now; "
            "try again, or tell the platform's administrators if it happens again." % (reason, unit, state or "gone", detail))


def mounts_needed(path, mount_points):
    """The mount points among ``mount_points`` that ``path`` lies on."""
    return [m for m in mount_points if m and (path == m or path.startswith(m.rstrip("/") + "/"))]


def load_settings(path):
    with open(path) as handle:
        return json.load(handle)


# ------------------------------------------------------ registered services

SERVICE_KEYS = {"name", "url", "api_token", "scopes", "display", "info", "oauth_no_confirm", "user_access", "notices",
                "_comment"}


def registered_services(directory):
    """The hub services other roles registered: one JSON file per service in ``directory``.

    Each file is {"name", "api_token" (32+ characters), "url" (optional: the
    proxy sends /services/<name>/ there), "scopes" (the service's own API
    scopes), "display" (a link in the hub's Services menu), "info",
    "oauth_no_confirm", "user_access" (every user may open it: the default
    user role gets access:services!service=<name>), "notices" (a directory
    where the service leaves messages for users: notice_for())}. Returns
    (services for c.JupyterHub.services, roles for c.JupyterHub.load_roles,
    extra scopes of the default user role, notice directories). A missing
    directory is no service; a bad file is an error naming it (the hub must
    not start with half a configuration).
    """
    services, roles, user_scopes, notices = [], [], [], []
    if not os.path.isdir(directory):
        return services, roles, user_scopes, notices
    for entry in sorted(os.listdir(directory)):
        if not entry.endswith(".json"):
            continue
        path = os.path.join(directory, entry)
        with open(path) as handle:
            try:
                spec = json.load(handle)
            except ValueError as exc:
                raise ValueError("%s: not JSON: %s" % (path, exc)) from exc
        unknown = set(spec) - SERVICE_KEYS if isinstance(spec, dict) else set()
        if not isinstance(spec, dict) or unknown or not spec.get("name") or len(spec.get("api_token") or "") < 32:
            raise ValueError("%s: a service needs a name and an api_token of 32+ characters%s"
                             % (path, "; unknown keys: " + ", ".join(sorted(unknown)) if unknown else ""))
        service = {"name": spec["name"], "api_token": spec["api_token"]}
        for key in ("url", "display", "info", "oauth_no_confirm"):
            if key in spec:
                service[key] = spec[key]
        services.append(service)
        if spec.get("scopes"):
            roles.append({"name": spec["name"] + "-service", "scopes": list(spec["scopes"]), "services": [spec["name"]]})
        if spec.get("user_access") and spec.get("url"):
            user_scopes.append("access:services!service=" + spec["name"])
        if spec.get("notices"):
            notices.append(spec["notices"])
    return services, roles, user_scopes, notices


def notice_for(username, directories, running=False, now=None, max_age=7 * 86400):
    """The newest message a service left for ``username`` (``<directory>/<username>.json``: {"message", "at"}), escaped.

    "" when there is none, while the user's server runs again, or when it is
    older than ``max_age`` seconds. The files hold plain text: the HTML is made here.
    """
    if not username or running:
        return ""
    now = time.time() if now is None else now
    newest = None
    for directory in directories:
        try:
            with open(os.path.join(directory, os.path.basename(username) + ".json")) as handle:
                notice = json.load(handle)
            at = float(notice.get("at") or 0)
        except (OSError, ValueError, TypeError, AttributeError):
            continue
        if now - at <= max_age and (newest is None or at > newest[0]):
            newest = (at, str(notice.get("message") or ""))
    return html.escape(newest[1]) if newest else ""


# ------------------------------------------------------ JupyterHub glue
# Everything below touches JupyterHub objects; the decisions are above.


def user_facing(exc, status):
    """``exc`` as an HTTP error whose text JupyterHub shows the user as is.

    JupyterHub replaces the text of other exceptions that end a spawn within
    a second with "Unhandled error starting server"; it shows an HTTPError's
    ``jupyterhub_message``. The result is still an instance of ``exc``'s class.
    """
    try:
        from tornado import web
    except ImportError:  # unit tests without JupyterHub
        exc.jupyterhub_message = str(exc)
        return exc

    class Refused(web.HTTPError, type(exc)):
        pass

    refused = Refused(status, "%s", str(exc))
    refused.jupyterhub_message = str(exc)
    return refused


def _user_groups(spawner):
    return normalise_groups(g.name for g in spawner.user.groups)


def _servers_with_devices(spawner):
    users = spawner.user.settings.get("users") or {}
    for user in list(users.values()):
        for other in list(user.spawners.values()):
            if other.active:
                yield other, getattr(other, "fedgpu_device", None)


def make_spawner_class(base):
    """``base`` with the assigned device kept in the hub's database (survives a hub restart)."""

    class FedgpuSpawner(base):
        fedgpu_device = None

        def get_state(self):
            state = super().get_state()
            if self.fedgpu_device:
                state["fedgpu_device"] = self.fedgpu_device
            return state

        def load_state(self, state):
            super().load_state(state)
            self.fedgpu_device = state.get("fedgpu_device")

        def clear_state(self):
            super().clear_state()
            self.fedgpu_device = None

        async def start(self):
            self._fedgpu_starting = True
            try:
                return await super().start()
            finally:
                self._fedgpu_starting = False

        async def poll(self):
            status = await super().poll()
            # SystemdSpawner polls its unit while it starts, for start_timeout
            # seconds. A unit that is gone or failed by then will not come up:
            # end the spawn now, with the reason, rather than at the timeout.
            unit = getattr(self, "unit_name", None)
            if status is None or not unit or not getattr(self, "_fedgpu_starting", False):
                return status
            message = await _unit_failure(unit, _home_of(self.user.name))
            if message:
                self.log.warning("fedgpu: %s", message)
                raise user_facing(ServerUnavailable(message), 500)
            return status

    FedgpuSpawner.__name__ = "Fedgpu" + base.__name__
    return FedgpuSpawner


async def _run(*cmd):
    import asyncio
    proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    out = (await proc.communicate())[0]
    return out.decode("utf-8", "replace")


async def _unit_failure(unit, home=None):
    properties = parse_unit_properties(await _run(
        "systemctl", "show", unit, "-p", "ActiveState", "-p", "Result", "-p", "LoadState"))
    if properties.get("ActiveState") in ("active", "activating", "reloading"):
        return None
    journal = await _run("journalctl", "-u", unit, "-n", "8", "--no-pager", "-o", "cat", "--since", "-10min")
    failed = []
    if home:
        for line in (await _run("systemctl", "list-units", "--type=mount", "--state=failed", "--plain", "--no-legend")).splitlines():
            if line.split():
                where = (await _run("systemctl", "show", "-p", "Where", "--value", line.split()[0])).strip()
                failed += mounts_needed(home, [where])
    return unit_failure_message(unit, properties, journal.splitlines(), failed)


def _home_of(username):
    import pwd
    try:
        return pwd.getpwnam(username).pw_dir
    except KeyError:
        return None


def make_hooks(settings):
    """options_form, options_from_form and pre_spawn_hook for the hub's configuration."""
    environments = settings["environments"]
    flavours = settings["flavours"]
    use_gpu = settings.get("use_gpu", True)

    def options_form(spawner):
        groups = _user_groups(spawner)
        return options_form_html(visible_environments(environments, groups),
                                 visible_flavours(flavours, groups, use_gpu),
                                 selected=spawner.user_options)

    def options_from_form(formdata, spawner=None):
        options = options_from_formdata(formdata)
        if spawner is not None:
            # Refuse here already so that the form shows the reason.
            choose(options, _user_groups(spawner), environments, flavours, use_gpu)
        return options

    def pre_spawn_hook(spawner):
        groups = _user_groups(spawner)
        try:
            # Again here: the REST API starts servers without the form.
            environment, flavour = choose(spawner.user_options, groups, environments, flavours, use_gpu)
            # No await between reading the used devices and taking one: the
            # hub runs hooks on one event loop, so two spawns cannot take the same.
            device = allocate_device(flavour, settings.get("gpus", []),
                                     used_devices(_servers_with_devices(spawner), exclude=spawner))
        except ChoiceError as exc:
            raise user_facing(exc, 403) from exc
        except NoFreeDevice as exc:
            raise user_facing(exc, 409) from exc
        name = spawner.user.name
        missing = missing_home_message(os.path.join(settings["home_root"], name))
        if missing:
            raise user_facing(ServerUnavailable(missing), 503)
        spawner.fedgpu_device = device["id"] if device else None
        spawner.mem_limit = flavour.get("mem_limit") or None
        spawner.cpu_limit = float(flavour["cpu_limit"]) if flavour.get("cpu_limit") else None
        links = home_links(name, groups, settings["shared_root"], settings["collab_root"], settings.get("collab_prefix", "collab-"))
        env = spawn_env(environment, device, links)
        env.update(accounting_env(flavour, groups))
        spawner.environment = dict(spawner.environment, **env)
        if settings.get("spawner") == "docker":
            _docker_options(spawner, settings, environment, device, name, groups)
        else:
            spawner.cmd = [settings["singleuser_wrapper"], environment["path"].rstrip("/") + "/bin/jupyterhub-singleuser"]
        spawner.log.info("fedgpu: %s starts environment %s, flavour %s, device %s",
                         name, environment["name"], flavour["name"], spawner.fedgpu_device or "none")

    return options_form, options_from_form, pre_spawn_hook


def _docker_options(spawner, settings, environment, device, name, groups):
    spawner.image = environment.get("image") or settings.get("docker_default_image")
    home = os.path.join(settings["home_root"], name)
    volumes = {home: {"bind": "/home/jovyan", "mode": "rw"},
               os.path.join(settings["shared_root"], name): {"bind": "/home/jovyan/shared", "mode": "rw"}}
    for group in groups:
        volumes[os.path.join(settings["collab_root"], group)] = {"bind": "/home/jovyan/collab-" + group, "mode": "rw"}
    spawner.volumes = volumes
    host_config = dict(spawner.extra_host_config)
    if device:
        host_config["device_requests"] = [{"Driver": "nvidia", "DeviceIDs": [device["id"]], "Capabilities": [["gpu"]]}]
    spawner.extra_host_config = host_config


# ------------------------------------------------------ Kubernetes (KubeSpawner, z2jh)
# Made by fedgpu.platform.z2jh_values: settings in the chart's ``custom.fedgpu``.

# KubeSpawner traits that the profiles (flavours, environments) override: put
# back before each spawn, so that nothing of an earlier spawn's choice stays.
KUBESPAWNER_OVERRIDDEN = ("image", "cmd", "cpu_limit", "cpu_guarantee", "mem_limit", "mem_guarantee",
                          "extra_resource_limits", "extra_resource_guarantees", "node_selector", "tolerations", "environment")


def _account(accounts, name):
    account = accounts.get(name)
    if not account:
        raise user_facing(ServerUnavailable(
            "Your account '%s' has no uid on this platform (platform_users), so your files cannot be reached. "
            "Nothing was started; ask the platform's operators." % name), 403)
    return account


def make_kubespawner_hooks(settings):
    """profile_list, pre_spawn_hook, uid, gid, supplemental_gids and auth_state_groups_key for KubeSpawner."""
    environments = settings["environments"]
    flavours = settings["flavours"]
    use_gpu = settings.get("use_gpu", True)
    accounts = settings["accounts"]

    def profile_list(spawner):
        return kubespawner_profiles(settings["profiles"], settings["environment_choices"],
                                    environments, flavours, _user_groups(spawner), use_gpu)

    def pre_spawn_hook(spawner):
        groups = _user_groups(spawner)
        options = spawner.user_options or {}
        try:
            # Again here: the REST API starts servers without the form.
            environment, flavour = choose({"environment": options.get("environment"), "flavour": options.get("profile")},
                                          groups, environments, flavours, use_gpu)
        except ChoiceError as exc:
            raise user_facing(exc, 403) from exc
        name = spawner.user.name
        _account(accounts, name)
        base = getattr(spawner, "_fedgpu_base", None)
        if base is None:
            base = spawner._fedgpu_base = {k: copy.deepcopy(getattr(spawner, k)) for k in KUBESPAWNER_OVERRIDDEN}
        for key, value in base.items():
            setattr(spawner, key, copy.deepcopy(value))
        links = home_links(name, groups, settings["shared_root"], settings["collab_root"], settings.get("collab_prefix", "collab-"))
        env = spawn_env(environment, None, links)
        if not environment.get("path"):
            del env["PATH"]  # the image's own
        if flavour.get("gpu", "none") != "none":
            # The device plugin hands the GPU or MIG slice to the container.
            del env["CUDA_VISIBLE_DEVICES"], env["NVIDIA_VISIBLE_DEVICES"]
        env["HOME"] = os.path.join(settings["home_root"], name)
        spawner.environment = dict(spawner.environment, **env)
        spawner.log.info("fedgpu: %s starts environment %s, flavour %s", name, environment["name"], flavour["name"])

    return {
        "profile_list": profile_list,
        "pre_spawn_hook": pre_spawn_hook,
        "uid": lambda spawner: _account(accounts, spawner.user.name)["uid"],
        "gid": lambda spawner: _account(accounts, spawner.user.name)["gid"],
        "supplemental_gids": lambda spawner: list(_account(accounts, spawner.user.name)["gids"]),
        "auth_state_groups_key": lambda auth_state: groups_from_auth_state(auth_state, settings["groups_claim"]),
    }


# ------------------------------------------------------ accounting


def charged_community(flavour, groups):
    """The community a server is accounted to: the first of the user's groups the flavour is open to
    (any of them for a flavour open to everyone), None for a user without groups."""
    wanted = flavour.get("groups") or []
    for group in groups:
        if not wanted or group in wanted:
            return group
    return None


def accounting_env(flavour, groups):
    """Variables the GPU accounting collector reads from the server's unit: its flavour and community."""
    return {"FEDGPU_FLAVOUR": flavour["name"], "FEDGPU_COMMUNITY": charged_community(flavour, groups) or ""}

"""Unit tests of the hub-side logic of the jupyterhub role (roles/jupyterhub/files/fedgpu_hub.py).

The module is imported from its file: JupyterHub is not installed here, and
the logic must not need it.
"""
import importlib.util
import json
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPEC = importlib.util.spec_from_file_location("fedgpu_hub", os.path.join(ROOT, "roles", "jupyterhub", "files", "fedgpu_hub.py"))
hub = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(hub)

ENVS = [
    {"name": "base", "display_name": "Base", "path": "/opt/conda-envs/base", "groups": []},
    {"name": "cms-sw", "path": "/opt/conda-envs/cms-sw", "groups": ["cms"]},
    {"name": "torch", "path": "/opt/conda-envs/torch/", "groups": ["ml-infn"]},
]
FLAVOURS = [
    {"name": "cpu", "gpu": "none", "cpu_limit": 1, "mem_limit": "2G", "groups": []},
    {"name": "mig-small", "gpu": "mig", "mig_profile": "1g.10gb", "groups": ["cms", "ml-infn"]},
    {"name": "a100", "gpu": "full", "groups": ["ml-infn"]},
]
GPUS = [
    {"id": "MIG-aaaa-0001", "model": "A100-SXM4-80GB", "mig_profile": "1g.10gb"},
    {"id": "MIG-aaaa-0002", "model": "A100-SXM4-80GB", "mig_profile": "1g.10gb"},
    {"id": "MIG-aaaa-0003", "model": "A100-SXM4-80GB", "mig_profile": "3g.40gb"},
    {"id": "GPU-bbbb-0001", "model": "A100-SXM4-80GB"},
]


class TestGroups:
    def test_leading_slash_stripped_sorted_unique(self):
        assert hub.normalise_groups(["/physics", "/cms", "cms", "", "/"]) == ["cms", "physics"]

    def test_single_string_and_none(self):
        assert hub.normalise_groups("/ml-infn") == ["ml-infn"]
        assert hub.normalise_groups(None) == []

    def test_claim_with_dots_is_one_key(self):
        state = {"oauth_user": {"wlcg.groups": ["/ml-infn"], "wlcg": {"groups": ["/wrong"]}}}
        assert hub.groups_from_auth_state(state, "wlcg.groups") == ["ml-infn"]

    def test_missing_claim_gives_no_groups(self):
        assert hub.groups_from_auth_state({"oauth_user": {}}, "wlcg.groups") == []
        assert hub.groups_from_auth_state(None) == []


class TestOptions:
    def test_visible_by_group(self):
        assert [e["name"] for e in hub.visible_environments(ENVS, ["cms", "physics"])] == ["base", "cms-sw"]
        assert [f["name"] for f in hub.visible_flavours(FLAVOURS, ["cms", "physics"])] == ["cpu", "mig-small"]
        assert [f["name"] for f in hub.visible_flavours(FLAVOURS, ["ml-infn"])] == ["cpu", "mig-small", "a100"]

    def test_no_group_sees_only_open_items(self):
        assert [e["name"] for e in hub.visible_environments(ENVS, [])] == ["base"]

    def test_gpu_flavours_hidden_without_gpus(self):
        assert [f["name"] for f in hub.visible_flavours(FLAVOURS, ["ml-infn"], use_gpu=False)] == ["cpu"]

    def test_form_has_the_two_selects_with_names_as_values(self):
        form = hub.options_form_html(hub.visible_environments(ENVS, ["cms"]), hub.visible_flavours(FLAVOURS, ["cms"]))
        assert '<select class="form-control" name="environment"' in form
        assert '<select class="form-control" name="flavour"' in form
        assert '<option value="base">Base</option>' in form
        assert '<option value="cms-sw">cms-sw</option>' in form
        assert "torch" not in form and "a100" not in form

    def test_form_selects_the_last_choice(self):
        form = hub.options_form_html(ENVS, FLAVOURS, selected={"environment": "torch", "flavour": "a100"})
        assert '<option value="torch" selected>torch</option>' in form
        assert '<option value="a100" selected>a100</option>' in form
        assert form.count(" selected>") == 2

    def test_form_escapes(self):
        form = hub.options_form_html([{"name": 'x"><script>', "display_name": "<b>"}], FLAVOURS[:1])
        assert "<script>" not in form and "&lt;b&gt;" in form

    def test_form_without_choices_explains(self):
        assert "No environment or flavour is open to your groups" in hub.options_form_html([], FLAVOURS)

    def test_formdata(self):
        assert hub.options_from_formdata({"environment": ["torch"], "flavour": ["a100"]}) == {"environment": "torch", "flavour": "a100"}
        assert hub.options_from_formdata({}) == {"environment": "", "flavour": ""}


class TestChoose:
    def test_allowed_choice(self):
        env, flavour = hub.choose({"environment": "cms-sw", "flavour": "mig-small"}, ["cms"], ENVS, FLAVOURS)
        assert env["name"] == "cms-sw" and flavour["name"] == "mig-small"

    def test_other_groups_environment_refused_even_if_posted(self):
        with pytest.raises(hub.ChoiceError, match="environment 'torch' is not open to your groups"):
            hub.choose({"environment": "torch", "flavour": "cpu"}, ["cms"], ENVS, FLAVOURS)

    def test_other_groups_flavour_refused(self):
        with pytest.raises(hub.ChoiceError, match="flavour 'a100' is not open"):
            hub.choose({"environment": "base", "flavour": "a100"}, ["cms"], ENVS, FLAVOURS)

    def test_gpu_flavour_refused_when_gpus_are_off(self):
        with pytest.raises(hub.ChoiceError):
            hub.choose({"environment": "base", "flavour": "a100"}, ["ml-infn"], ENVS, FLAVOURS, use_gpu=False)

    def test_unknown_name(self):
        with pytest.raises(hub.ChoiceError, match="no flavour named 'huge'"):
            hub.choose({"environment": "base", "flavour": "huge"}, ["cms"], ENVS, FLAVOURS)

    def test_no_choice_takes_the_first_visible(self):
        env, flavour = hub.choose({}, ["ml-infn"], ENVS, FLAVOURS)
        assert (env["name"], flavour["name"]) == ("base", "cpu")

    def test_nothing_visible(self):
        with pytest.raises(hub.ChoiceError, match="No environment is open to your groups"):
            hub.choose({}, ["cms"], [ENVS[2]], FLAVOURS)


class TestDevices:
    def test_cpu_flavour_gets_no_device(self):
        assert hub.allocate_device(FLAVOURS[0], GPUS, set()) is None

    def test_mig_flavour_gets_a_slice_of_its_profile(self):
        assert hub.allocate_device(FLAVOURS[1], GPUS, set())["id"] == "MIG-aaaa-0001"

    def test_second_server_gets_another_slice(self):
        assert hub.allocate_device(FLAVOURS[1], GPUS, {"MIG-aaaa-0001"})["id"] == "MIG-aaaa-0002"

    def test_full_gpu_never_gets_a_slice(self):
        assert hub.allocate_device(FLAVOURS[2], GPUS, set())["id"] == "GPU-bbbb-0001"

    def test_all_in_use_message(self):
        with pytest.raises(hub.NoFreeDevice) as err:
            hub.allocate_device(FLAVOURS[1], GPUS, {"MIG-aaaa-0001", "MIG-aaaa-0002"})
        assert str(err.value) == ("No free MIG 1g.10gb slice right now: all 2 are in use. "
                                  "Try again later or pick another flavour.")

    def test_only_one_in_use_message(self):
        with pytest.raises(hub.NoFreeDevice, match="No free GPU right now: the only one is in use"):
            hub.allocate_device(FLAVOURS[2], GPUS, {"GPU-bbbb-0001"})

    def test_no_device_of_the_kind(self):
        with pytest.raises(hub.NoFreeDevice, match="has no MIG 2g.20gb slice"):
            hub.allocate_device({"name": "m2", "gpu": "mig", "mig_profile": "2g.20gb"}, GPUS, set())

    def test_used_devices_excludes_own_server_and_empty(self):
        me, other, cpu = object(), object(), object()
        servers = [(me, "MIG-aaaa-0001"), (other, "MIG-aaaa-0002"), (cpu, None)]
        assert hub.used_devices(servers, exclude=me) == {"MIG-aaaa-0002"}


class TestHomeAndEnv:
    def test_links(self):
        links = hub.home_links("alice", ["cms", "physics"], "/nfs/shared", "/nfs/collab")
        assert links == [("shared", "/nfs/shared/alice"), ("collab-cms", "/nfs/collab/cms"), ("collab-physics", "/nfs/collab/physics")]

    def test_env_of_a_mig_server(self):
        env = hub.spawn_env(ENVS[2], GPUS[0], [("shared", "/nfs/shared/bob")])
        assert env["PATH"].startswith("/opt/conda-envs/torch/bin:")
        assert env["CUDA_VISIBLE_DEVICES"] == "MIG-aaaa-0001"
        assert env["FEDGPU_LINKS"] == "shared=/nfs/shared/bob"
        assert "\n" not in env["FEDGPU_LINKS"]

    def test_env_of_a_cpu_server_hides_gpus(self):
        env = hub.spawn_env(ENVS[0], None, [])
        assert env["CUDA_VISIBLE_DEVICES"] == ""
        assert env["NVIDIA_VISIBLE_DEVICES"] == "void"

    def test_accounting_env_charges_a_community_the_flavour_is_open_to(self):
        # bob is in cms and ml-infn (sorted); the a100 flavour is ml-infn's only
        expected = {"FEDGPU_FLAVOUR": "a100", "FEDGPU_COMMUNITY": "ml-infn"}
        assert hub.accounting_env(FLAVOURS[2], ["cms", "ml-infn"]) == expected
        assert hub.accounting_env(FLAVOURS[1], ["cms", "ml-infn"])["FEDGPU_COMMUNITY"] == "cms"
        # a flavour open to everyone: the user's first community; no community at all: empty
        assert hub.accounting_env(FLAVOURS[0], ["physics"])["FEDGPU_COMMUNITY"] == "physics"
        assert hub.accounting_env(FLAVOURS[0], [])["FEDGPU_COMMUNITY"] == ""


class FakeBase:
    def get_state(self):
        return {"unit_name": "u"}

    def load_state(self, state):
        self.loaded = state

    def clear_state(self):
        self.cleared = True


def test_spawner_class_keeps_the_device_in_its_state():
    cls = hub.make_spawner_class(FakeBase)
    spawner = cls()
    assert spawner.get_state() == {"unit_name": "u"}
    spawner.fedgpu_device = "MIG-aaaa-0001"
    state = spawner.get_state()
    assert state == {"unit_name": "u", "fedgpu_device": "MIG-aaaa-0001"}
    restarted = cls()
    restarted.load_state(state)
    assert restarted.fedgpu_device == "MIG-aaaa-0001"
    restarted.clear_state()
    assert restarted.fedgpu_device is None and restarted.cleared


# ------------------------------------------------ the glue, with fake hub objects


class FakeLog:
    def info(self, *args):
        pass


class FakeGroup:
    def __init__(self, name):
        self.name = name


class FakeUser:
    def __init__(self, name, groups, registry):
        self.name = name
        self.groups = [FakeGroup(g) for g in groups]
        self.settings = {"users": registry}
        self.spawners = {}


class FakeSpawner:
    def __init__(self, user, options):
        self.user = user
        self.user_options = options
        self.environment = {"LANG": "C.UTF-8"}
        self.log = FakeLog()
        self.active = True
        self.fedgpu_device = None
        user.spawners[""] = self


SETTINGS = {
    "spawner": "systemd", "environments": ENVS, "flavours": FLAVOURS, "gpus": GPUS, "use_gpu": True,
    "home_root": "/nfs/private", "shared_root": "/nfs/shared", "collab_root": "/nfs/collab",
    "collab_prefix": "collab-", "singleuser_wrapper": "/opt/jupyterhub/bin/fedgpu-singleuser",
}


def settings_with_homes(tmp_path, *names):
    """SETTINGS with a private area of each user under tmp_path."""
    for name in names:
        (tmp_path / "private" / name).mkdir(parents=True)
    return dict(SETTINGS, home_root=str(tmp_path / "private"))


def make_user(registry, name, groups, options):
    user = FakeUser(name, groups, registry)
    registry[name] = user
    return FakeSpawner(user, options)


def test_hooks_assign_devices_and_refuse_when_all_are_taken(tmp_path):
    form, from_form, pre_spawn = hub.make_hooks(settings_with_homes(tmp_path, "alice", "bob", "dave"))
    users = {}
    alice = make_user(users, "alice", ["cms", "physics"], {"environment": "cms-sw", "flavour": "mig-small"})
    bob = make_user(users, "bob", ["ml-infn"], {"environment": "torch", "flavour": "mig-small"})
    dave = make_user(users, "dave", ["ml-infn"], {"environment": "torch", "flavour": "mig-small"})

    html_form = form(alice)
    assert 'value="cms-sw"' in html_form and 'value="torch"' not in html_form

    pre_spawn(alice)
    pre_spawn(bob)
    assert {alice.fedgpu_device, bob.fedgpu_device} == {"MIG-aaaa-0001", "MIG-aaaa-0002"}
    assert alice.environment["CUDA_VISIBLE_DEVICES"] == alice.fedgpu_device
    assert alice.environment["LANG"] == "C.UTF-8"
    assert alice.cmd == ["/opt/jupyterhub/bin/fedgpu-singleuser", "/opt/conda-envs/cms-sw/bin/jupyterhub-singleuser"]
    assert alice.mem_limit is None and alice.cpu_limit is None
    assert "collab-physics=/nfs/collab/physics" in alice.environment["FEDGPU_LINKS"]
    with pytest.raises(hub.NoFreeDevice, match="all 2 are in use"):
        pre_spawn(dave)

    # Alice's server stops: dave gets her slice.
    alice.active = False
    pre_spawn(dave)
    assert dave.fedgpu_device == "MIG-aaaa-0001"


def test_hooks_recheck_groups_for_api_spawns():
    from_form, pre_spawn = hub.make_hooks(SETTINGS)[1:]
    users = {}
    alice = make_user(users, "alice", ["cms"], {"environment": "torch", "flavour": "cpu"})
    with pytest.raises(hub.ChoiceError):
        pre_spawn(alice)
    with pytest.raises(hub.ChoiceError):
        from_form({"environment": ["torch"], "flavour": ["cpu"]}, spawner=alice)
    assert from_form({"environment": ["cms-sw"], "flavour": ["cpu"]}, spawner=alice) == {"environment": "cms-sw", "flavour": "cpu"}


def test_hooks_set_flavour_limits(tmp_path):
    pre_spawn = hub.make_hooks(settings_with_homes(tmp_path, "alice"))[2]
    alice = make_user({}, "alice", ["cms"], {"environment": "base", "flavour": "cpu"})
    pre_spawn(alice)
    assert alice.mem_limit == "2G" and alice.cpu_limit == 1.0 and alice.fedgpu_device is None


def test_hooks_refuse_at_once_without_a_home(tmp_path):
    """No private area (storage not mounted): refused before a device is taken, with the path."""
    pre_spawn = hub.make_hooks(settings_with_homes(tmp_path, "bob"))[2]
    users = {}
    alice = make_user(users, "alice", ["cms"], {"environment": "base", "flavour": "mig-small"})
    with pytest.raises(hub.ServerUnavailable, match="private area .*/private/alice does not exist"):
        pre_spawn(alice)
    assert alice.fedgpu_device is None
    bob = make_user(users, "bob", ["cms"], {"environment": "base", "flavour": "mig-small"})
    pre_spawn(bob)
    assert bob.fedgpu_device == "MIG-aaaa-0001"


def test_user_facing_error_keeps_class_and_text(monkeypatch):
    import sys
    import types

    class HTTPError(Exception):
        def __init__(self, status_code, log_message=None, *args):
            super().__init__(status_code, log_message)
            self.status_code = status_code

    tornado = types.ModuleType("tornado")
    tornado.web = types.ModuleType("tornado.web")
    tornado.web.HTTPError = HTTPError
    monkeypatch.setitem(sys.modules, "tornado", tornado)
    monkeypatch.setitem(sys.modules, "tornado.web", tornado.web)
    err = hub.user_facing(hub.NoFreeDevice("No free GPU right now"), 409)
    assert isinstance(err, HTTPError) and isinstance(err, hub.NoFreeDevice)
    assert err.status_code == 409 and err.jupyterhub_message == "No free GPU right now"


# ------------------------------------------------ failing fast, with a reason

def test_missing_home_names_the_area_and_the_cause(tmp_path):
    home_root = tmp_path / "private"
    # No storage at all: the parent is missing too.
    text = hub.missing_home_message(str(home_root / "alice"))
    assert str(home_root / "alice") in text and "shared storage" in text and "Nothing was started" in text
    home_root.mkdir()
    assert "not been created" in hub.missing_home_message(str(home_root / "alice"))
    (home_root / "alice").mkdir()
    assert hub.missing_home_message(str(home_root / "alice")) is None


@pytest.mark.parametrize("state", ["active", "activating", "reloading"])
def test_unit_still_coming_up_is_no_failure(state):
    assert hub.unit_failure_message("jupyter-alice-singleuser", {"ActiveState": state, "Result": "success"}, []) is None


def test_failed_dependency_is_explained_with_the_journal():
    props = hub.parse_unit_properties("ActiveState=inactive\nResult=dependency\nLoadState=loaded\n")
    journal = ["", "Dependency failed for /opt/jupyterhub/fedgpu-singleuser.", "mount.nfs: No such device"]
    text = hub.unit_failure_message("jupyter-alice-singleuser", props, journal)
    assert text.startswith("Your server could not start: something it needs on this host (a mount or another unit) failed")
    assert "jupyter-alice-singleuser" in text and "mount.nfs: No such device" in text
    assert "Nothing is running for you now" in text


def test_failed_mount_of_the_home_is_named():
    assert hub.mounts_needed("/nfs/private/dave", ["/nfs", "/nfs/private/dave", "/nfs/priv", "/opt", ""]) == [
        "/nfs", "/nfs/private/dave"]
    # A transient unit whose dependency failed is gone: the journal and the failed mount tell why.
    props = {"ActiveState": "inactive", "Result": "success", "LoadState": "not-found"}
    text = hub.unit_failure_message("jupyter-dave-singleuser", props, [], ["/nfs/private/dave"])
    assert "the storage it needs could not be mounted on this host (/nfs/private/dave)" in text
    text = hub.unit_failure_message("u", props, ["Dependency failed for /opt/jupyterhub/bin/fedgpu-singleuser."])
    assert "something it needs on this host (a mount or another unit) failed" in text


def test_exit_and_vanished_units():
    text = hub.unit_failure_message("u", {"ActiveState": "failed", "Result": "exit-code"}, ["ImportError: no module x"])
    assert "exited with an error" in text and "ImportError" in text
    gone = hub.unit_failure_message("u", {"ActiveState": "inactive", "LoadState": "not-found"}, [])
    assert "stopped at once" in gone and "Last messages" not in gone
    # Only the last lines of a long journal.
    text = hub.unit_failure_message("u", {"ActiveState": "failed", "Result": "signal"}, ["l%d" % i for i in range(10)])
    assert "l9" in text and "l5" not in text and "was killed" in text


def test_spawner_ends_a_start_whose_unit_failed(monkeypatch):
    """A unit that is down while SystemdSpawner waits for it ends the start at the first poll."""
    import asyncio
    import logging

    polls = []

    class FakeSystemdSpawner:
        unit_name = "jupyter-alice-singleuser"
        user = FakeUser("alice", ["cms"], {})
        start_timeout = 120
        log = logging.getLogger("test")

        def get_state(self):
            return {}

        def load_state(self, state):
            pass

        def clear_state(self):
            pass

        async def start(self):  # as SystemdSpawner 1.0: poll once a second up to start_timeout
            for second in range(self.start_timeout):
                if await self.poll() is None and second >= 0:
                    return ("127.0.0.1", 1234)
                await asyncio.sleep(0)
            return None

        async def poll(self):
            polls.append(1)
            return 1

    async def failed(unit, home=None):
        return "Your server could not start: ... (unit %s, inactive)." % unit

    spawner = hub.make_spawner_class(FakeSystemdSpawner)()
    monkeypatch.setattr(hub, "_unit_failure", failed)
    with pytest.raises(hub.ServerUnavailable, match="unit jupyter-alice-singleuser"):
        asyncio.run(spawner.start())
    assert len(polls) == 1
    # Outside a start (the hub's periodic poll) a stopped server is just stopped.
    assert asyncio.run(spawner.poll()) == 1

    async def coming_up(unit, home=None):
        return None

    monkeypatch.setattr(hub, "_unit_failure", coming_up)
    polls.clear()
    assert asyncio.run(spawner.start()) is None and len(polls) == 120


class TestRegisteredServices:
    TOKEN = "t" * 40

    def write(self, directory, name, spec):
        path = directory / name
        path.write_text(spec if isinstance(spec, str) else json.dumps(spec))
        return path

    def test_missing_directory_is_no_service(self, tmp_path):
        assert hub.registered_services(str(tmp_path / "none")) == ([], [], [], [])

    def test_a_page_every_user_may_open(self, tmp_path):
        self.write(tmp_path, "usage.json", {
            "_comment": "Ansible managed", "name": "usage", "url": "http://127.0.0.1:9480", "api_token": self.TOKEN,
            "display": True, "oauth_no_confirm": True, "user_access": True, "info": {"description": "x"},
            "scopes": ["list:users", "delete:servers"], "notices": "/var/lib/fedgpu-usage-page/notices"})
        self.write(tmp_path, "README", "not a service")
        self.write(tmp_path, "api-only.json", {"name": "api-only", "api_token": self.TOKEN, "user_access": True})
        services, roles, user_scopes, notices = hub.registered_services(str(tmp_path))
        assert services == [
            {"name": "api-only", "api_token": self.TOKEN},
            {"name": "usage", "api_token": self.TOKEN, "url": "http://127.0.0.1:9480", "display": True,
             "info": {"description": "x"}, "oauth_no_confirm": True}]
        assert roles == [{"name": "usage-service", "scopes": ["list:users", "delete:servers"], "services": ["usage"]}]
        # a service without a URL cannot be opened: no user scope for it
        assert user_scopes == ["access:services!service=usage"]
        assert notices == ["/var/lib/fedgpu-usage-page/notices"]

    @pytest.mark.parametrize("spec, words", [
        ("{not json", "not JSON"),
        ({"name": "usage", "api_token": "short"}, "32+ characters"),
        ({"api_token": "t" * 40}, "needs a name"),
        ({"name": "usage", "api_token": "t" * 40, "command": ["rm"]}, "unknown keys: command"),
        (["usage"], "needs a name"),
    ])
    def test_a_bad_file_is_an_error_naming_it(self, tmp_path, spec, words):
        path = self.write(tmp_path, "usage.json", spec)
        with pytest.raises(ValueError) as err:
            hub.registered_services(str(tmp_path))
        assert str(path) in str(err.value) and words in str(err.value)


class TestNotices:
    def test_newest_notice_escaped_until_the_server_runs_again(self, tmp_path):
        a, b = tmp_path / "a", tmp_path / "b"
        a.mkdir()
        b.mkdir()
        (a / "alice.json").write_text(json.dumps({"at": 1000, "message": "older"}))
        (b / "alice.json").write_text(json.dumps({"at": 2000, "message": "stopped <b>now</b> & then"}))
        dirs = [str(a), str(b), str(tmp_path / "missing")]
        assert hub.notice_for("alice", dirs, now=2100) == "stopped &lt;b&gt;now&lt;/b&gt; &amp; then"
        assert hub.notice_for("alice", dirs, running=True, now=2100) == ""
        assert hub.notice_for("alice", dirs, now=2000 + 8 * 86400) == ""  # a week old: gone
        assert hub.notice_for("bob", dirs, now=2100) == ""
        assert hub.notice_for(None, dirs) == ""
        assert hub.notice_for("../a/alice", [str(b)], now=2100) == "stopped &lt;b&gt;now&lt;/b&gt; &amp; then"

    def test_a_broken_notice_is_none(self, tmp_path):
        (tmp_path / "alice.json").write_text("{")
        (tmp_path / "bob.json").write_text(json.dumps(["x"]))
        assert hub.notice_for("alice", [str(tmp_path)], now=1) == ""
        assert hub.notice_for("bob", [str(tmp_path)], now=1) == ""

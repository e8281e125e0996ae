# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Spawn with the hub's real DockerSpawner configuration, offline.

Run with the hub's Python on a hub the role configured with
``jupyterhub_spawner: docker``: loads /etc/jupyterhub/jupyterhub_config.py as
JupyterHub does (with the hub's environment file), makes the configured
spawner class for each case's user and groups, runs the form, the
options_from_form hook and the pre-spawn hook, and prints what DockerSpawner
would start: image, binds, limits, device requests, environment. Then it
starts one server: with no Docker engine here, the start must fail at the
Docker API, which shows the spawner got that far. The Docker endpoint is
pointed at a socket that does not exist, so that nothing leaves the host
(no engine is asked, no registry is contacted) even where one runs.

    python docker_spawn.py /etc/jupyterhub '[{"user": "alice", "groups": ["cms"], "form": {...}}]'
"""

import asyncio
import json
import os
import sys
from types import SimpleNamespace

from traitlets.config.loader import PyFileConfigLoader


def read_environment(path):
    with open(path) as handle:
        for line in handle:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, value = line.split("=", 1)
                os.environ[key] = value.strip('"')


def make_user(name, groups, users):
    user = SimpleNamespace(name=name, id=len(users) + 1, groups=[SimpleNamespace(name=g) for g in groups],
                           settings={"users": users}, spawners={}, url="/user/%s/" % name,
                           escaped_name=name, server=None)
    users[name] = user
    return user


async def spawn_case(cls, config, case, users):
    user = make_user(case["user"], case["groups"], users)
    hub = SimpleNamespace(base_url="/hub/", api_url="http://127.0.0.1:8081/hub/api", public_host="", url="/hub/")
    spawner = cls(user=user, config=config, hub=hub)
    user.spawners[""] = spawner
    result = {"user": case["user"], "form": spawner.options_form(spawner) if callable(spawner.options_form) else ""}
    try:
        spawner.user_options = spawner.run_options_from_form({k: [v] for k, v in case["form"].items()})
        hook = spawner.run_pre_spawn_hook()
        if asyncio.iscoroutine(hook):
            await hook
    except Exception as exc:  # the refusals the hooks raise, with the status the hub answers
        result["refused"] = {"status": getattr(exc, "status_code", None), "message": getattr(exc, "jupyterhub_message", str(exc))}
        return spawner, result
    result.update({
        "image": spawner.image,
        "binds": spawner.volume_binds,
        "mem_limit": spawner.mem_limit,
        "cpu_limit": spawner.cpu_limit,
        "device_requests": spawner.extra_host_config.get("device_requests", []),
        "environment": {k: v for k, v in spawner.get_env().items() if k in ("CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES")},
        "network": spawner.network_name,
        "allowed_images": sorted(spawner.allowed_images) if isinstance(spawner.allowed_images, (list, dict, set)) else [],
    })
    # Pending, as while the hub starts it: the next case sees its device taken.
    spawner._spawn_pending = True  # pylint: disable=protected-access
    return spawner, result


async def main(etc, cases):
    read_environment(os.path.join(etc, "jupyterhub.env"))
    os.environ["DOCKER_HOST"] = "unix:///nonexistent/fedgpu-test/docker.sock"
    config = PyFileConfigLoader("jupyterhub_config.py", path=etc).load_config()
    cls = config.JupyterHub.spawner_class
    users = {}
    results = []
    first = None
    for case in cases:
        spawner, result = await spawn_case(cls, config, case, users)
        results.append(result)
        if first is None and "refused" not in result:
            first = spawner
    start = None
    if first is not None:
        try:
            await asyncio.wait_for(first.start(), 30)
            start = "started"
        except Exception as exc:  # no Docker engine here: the error says where the spawner stopped
            start = "%s: %s" % (type(exc).__name__, exc)
    print(json.dumps({"spawner_class": [c.__name__ for c in cls.__mro__[:3]], "cases": results, "start": start}, default=str))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], json.loads(sys.argv[2])))

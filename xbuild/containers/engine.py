"""The Docker engine: one place that connects and turns "not there" into a clear error."""

from __future__ import annotations

import functools

from xbuild.errors import EngineUnavailable


@functools.cache
def client():
    import docker  # heavy import: only when a command needs the engine
    from docker.errors import DockerException

    try:
        c = docker.from_env(timeout=300)
        c.ping()
    except DockerException as exc:
        reason = str(exc).split("(")[0].strip() or type(exc).__name__
        raise EngineUnavailable(f"the Docker engine is not reachable: {reason}") from None
    return c


def api():
    return client().api

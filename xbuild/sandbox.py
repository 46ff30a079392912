"""A sandboxed container: the only place untrusted project code runs.

No network, a non-root user, every capability dropped, no-new-privileges, pid and memory limits,
an init as PID 1 (a crashed process under qemu can hang a container when it is PID 1), and a time
limit. Files go in and out as tar streams through the engine: no bind mount exposes the host, and
what comes out is written by xbuild itself, so it belongs to the invoking user."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import BinaryIO, Iterator

from xbuild.engine import client
from xbuild.errors import BuildTimeout

BUILD_LABEL = "org.xbuild.build"


@dataclass(frozen=True)
class Limits:
    timeout: int = 3600          # seconds
    memory: str = "4g"
    pids: int = 4096
    network: bool = False        # builds never; `xbuild run --publish` opts in


def hardening(limits: Limits, user: str | None) -> dict:
    return {
        "network_mode": "bridge" if limits.network else "none",
        "cap_drop": ["ALL"], "security_opt": ["no-new-privileges"],
        "pids_limit": limits.pids, "mem_limit": limits.memory, "memswap_limit": limits.memory,
        "init": True, **({"user": user} if user else {}),
    }


class Container:
    """Created on enter (stale ones of the same name removed first), always removed on exit."""

    def __init__(self, image: str, command: list[str], *, name: str, env: dict[str, str],
                 limits: Limits, user: str | None = "1000:1000", workdir: str | None = None,
                 platform: str | None = None, ports: dict | None = None, labels: dict | None = None):
        self.name, self.limits = name, limits
        self._kwargs = dict(image=image, command=command, name=name, environment=env,
                            working_dir=workdir, labels={BUILD_LABEL: name, **(labels or {})}, ports=ports or {},
                            **hardening(limits, user))
        self.container = None

    def __enter__(self) -> "Container":
        self._remove(self.name)
        self.container = client().containers.create(**self._kwargs)
        return self

    def __exit__(self, *exc) -> None:
        self._remove(self.name)

    @staticmethod
    def remove_labelled(label: str, value: str) -> int:
        """Remove containers left by a process that died (e.g. a SIGKILLed worker's build)."""
        from docker.errors import APIError
        found = client().containers.list(all=True, filters={"label": f"{label}={value}"})
        for c in found:
            try:
                c.remove(force=True)
            except APIError:
                pass
        return len(found)

    @staticmethod
    def _remove(name: str) -> None:
        from docker.errors import APIError, NotFound
        try:
            client().containers.get(name).remove(force=True)
        except NotFound:
            pass
        except APIError as exc:  # "removal already in progress" is fine
            if "in progress" not in str(exc):
                raise

    def put(self, path: str, tar: bytes | BinaryIO) -> None:
        """Unpack a tar at path; a file object is streamed to the engine, never read whole."""
        self.container.put_archive(path, tar)

    def get(self, path: str) -> Iterator[bytes]:
        """The tar of path as a stream of chunks: write them out (archive.save_stream), never join them."""
        stream, _ = self.container.get_archive(path)
        return stream

    def run(self, on_line, on_err=None) -> int:
        """Start, feed every output line to on_line (stderr lines to on_err when given), return
        the exit code; kill at the time limit."""
        self.container.start()
        streams = [(on_line, {"stdout": True, "stderr": on_err is None})]
        if on_err is not None:
            streams.append((on_err, {"stdout": False, "stderr": True}))
        pumps = [threading.Thread(target=self._pump, args=s, daemon=True) for s in streams]
        for pump in pumps:
            pump.start()
        try:
            status = self.container.wait(timeout=self.limits.timeout)
        except Exception as exc:  # requests' ReadTimeout / ConnectionError: the time limit hit
            if "timed out" not in str(exc).lower() and "timeout" not in type(exc).__name__.lower():
                raise
            self.container.kill()
            for pump in pumps:
                pump.join(5)
            raise BuildTimeout(f"killed at the time limit of {self.limits.timeout} s",
                               hint="raise it with --timeout (XBUILD_TIMEOUT) or `timeout` in "
                                    "xbuild.toml, or find what hangs in the log") from None
        for pump in pumps:
            pump.join(10)
        return int(status.get("StatusCode", 1))

    def _pump(self, on_line, which: dict) -> None:
        buf = b""
        for chunk in self.container.logs(stream=True, follow=True, **which):
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                on_line(line.decode("utf-8", "replace"))
        if buf:
            on_line(buf.decode("utf-8", "replace"))

"""A sandboxed container: the only place untrusted project code runs.

No network, a non-root user, every capability dropped, no-new-privileges, pid, memory, CPU and disk
limits, an init as PID 1 (a crashed process under qemu can hang a container when it is PID 1), and
a time limit. Files go in and out as tar streams through the engine, and what comes out is written
by xbuild itself, so it belongs to the invoking user. The one bind mount is a directory xbuild made
for the build (the compiler cache, `mounts`): nothing else of the host is visible.

The time limit holds even when xbuild is gone (SIGKILL, a dead worker): the command runs under
`timeout -s KILL`, and the container carries its deadline as a label for `remove_expired`."""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from xbuild import environment
from xbuild.containers.engine import client
from xbuild.errors import BuildTimeout, DiskLimitExceeded, NoSpace
from xbuild.host.safefs import NestedTooDeep, tree_usage
from xbuild.host.threads import join_started

BUILD_LABEL = "org.xbuild.build"
DEADLINE_LABEL = "org.xbuild.deadline"
# The engine's own time limit runs this long after ours (ours kills first and says why); the
# deadline label allows for the upload of the sources before the clock starts, too.
GRACE = 60
START_ALLOWANCE = 600
DISK_POLL_SECONDS = 3.0
REMOVAL_WAIT = 30.0  # seconds another remover may take before we go on (a reaper gets the rest)
# What the engine keeps of a container's output besides what xbuild streams: bounded.
LOG_CONFIG = {"type": "json-file", "config": {"max-size": "10m", "max-file": "1"}}


@dataclass(frozen=True)
class Limits:
    timeout: int = 3600          # seconds
    memory: str = "4g"
    pids: int = field(default_factory=lambda: environment.whole("XBUILD_MAX_PIDS"))
    network: bool = False        # builds never; `xbuild run --publish` opts in
    disk_mb: int = field(default_factory=lambda: environment.whole("XBUILD_MAX_DISK_MB"))
    cpus: float = field(default_factory=lambda: environment.number("XBUILD_MAX_CPUS") or os.cpu_count() or 1)


def hardening(limits: Limits, user: str | None) -> dict:
    from docker.types import Ulimit
    disk = limits.disk_mb << 20
    return {
        "network_mode": "bridge" if limits.network else "none",
        "cap_drop": ["ALL"], "security_opt": ["no-new-privileges"],
        "pids_limit": limits.pids, "mem_limit": limits.memory, "memswap_limit": limits.memory,
        "nano_cpus": int(limits.cpus * 1e9),
        # No single file may outgrow the disk limit (the watchdog measures the whole layer).
        "ulimits": [Ulimit(name="fsize", soft=disk, hard=disk)],
        "log_config": LOG_CONFIG, "init": True, **({"user": user} if user else {}),
    }


@functools.cache
def streaming_api():
    """A client without a socket timeout, for streams that may stay quiet for a long time (a
    long link, a sleeping step): the time limit is ours to enforce, not the socket's."""
    import docker
    return docker.from_env(timeout=None).api


class Container:
    """Created on enter (stale ones of the same name removed first), as the Box that `with`
    gives; always removed on exit."""

    def __init__(self, image: str, command: list[str] | None, *, name: str, env: dict[str, str],
                 limits: Limits, user: str | None = "1000:1000", workdir: str | None = None,
                 platform: str | None = None, ports: dict | None = None, labels: dict | None = None,
                 kill_inside: bool = False, interactive: bool = False, mounts: dict | None = None,
                 remove_later: bool = False, cap_add: tuple[str, ...] = ()):
        """kill_inside: the command also runs under `timeout -s KILL` (the image has coreutils).
        interactive: stdin stays open (and a terminal is allocated when ours is one): `shell`.
        mounts: {host directory: container path}, read-write bind mounts of directories xbuild
        made for the build alone (the compiler cache): never the project, never the host's own.
        remove_later: after a success, removed in the background (the engine takes 30-100 ms)
        while the caller goes on; `settle()` waits for it.
        cap_add: capabilities given back after all are dropped (`xbuild run` installs as root,
        then drops to a user: SETUID and SETGID), never for a build."""
        self.name, self.limits, self._remove_later = name, limits, remove_later
        if kill_inside and command:
            command = ["timeout", "-s", "KILL", str(limits.timeout + GRACE), *command]
        self._labels = {BUILD_LABEL: name, **(labels or {})}
        self._kwargs = dict(image=image, command=command, name=name, environment=env,
                            working_dir=workdir, ports=ports or {}, **hardening(limits, user))
        if cap_add:
            self._kwargs["cap_add"] = list(cap_add)
        self.mounts = [Path(h) for h in (mounts or {})]
        if mounts:
            self._kwargs["volumes"] = {str(h): {"bind": c, "mode": "rw"} for h, c in mounts.items()}
        if interactive:
            self._kwargs.update(stdin_open=True, tty=os.isatty(0))

    def __enter__(self) -> Box:
        self.remove_now(self.name)
        deadline = int(time.time()) + START_ALLOWANCE + self.limits.timeout + GRACE
        try:
            made = client().containers.create(
                labels={**self._labels, DEADLINE_LABEL: str(deadline)}, **self._kwargs)
        except BaseException:  # a signal as the engine answered: it may have made it (no __exit__)
            self.remove_now(self.name)
            raise
        return Box(made, self.name, self.limits, self.mounts)

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None and self._remove_later:
            _removing.later(self.name)
        else:  # a failure, Ctrl-C, a signal: gone before anything else happens
            self.remove_now(self.name)

    @staticmethod
    def remove_labelled(label: str, value: str) -> int:
        """Remove containers left by a process that died (e.g. a SIGKILLed worker's build)."""
        return _remove_all(_listed({"label": f"{label}={value}"}))

    @staticmethod
    def remove_now(name: str) -> None:
        """Remove the container and return once it is gone. Another remover (the engine ending a
        cancelled Dockerfile step, a reaper) may be at it already: then wait for theirs, bounded,
        so that nobody (a new container of the same name, a test) meets it half-removed."""
        from docker.errors import APIError, NotFound
        try:
            client().containers.get(name).remove(force=True)
            return
        except NotFound:
            return
        except APIError as exc:  # "removal already in progress" is fine
            if "in progress" not in str(exc):
                raise
        deadline = time.monotonic() + REMOVAL_WAIT
        while time.monotonic() < deadline:
            try:
                client().containers.get(name)
            except NotFound:
                return
            time.sleep(0.2)


class Box:
    """A container that exists: what `with Container(...) as box` gives, from its creation to its
    removal. A separate class, so that no method can meet a container not yet made."""

    def __init__(self, container: Any, name: str, limits: Limits, mounts: list[Path]):
        self.container, self.name, self.limits, self.mounts = container, name, limits, mounts
        self.oom_killed = False

    def put(self, path: str, tar: bytes | BinaryIO) -> None:
        """Unpack a tar at path; a file object is streamed to the engine, never read whole."""
        self.container.put_archive(path, tar)

    def get(self, path: str) -> Iterator[bytes]:
        """The tar of path as a stream of chunks: write them out (archive.save_stream), never join them."""
        stream, _ = self.container.get_archive(path)
        return stream

    def run(self, on_line, on_err=None) -> int:
        """Start, feed every output line to on_line (stderr lines to on_err when given), return
        the exit code. Kill at the time limit and at the disk limit (raising why)."""
        # Attached before the start, the stream misses nothing; the engine does not run ahead
        # of a slow reader, so every line arrives, to the last one.
        from docker.utils.socket import frames_iter
        sock = streaming_api().attach_socket(self.container.id, params={
            "stdout": 1, "stderr": 1, "stream": 1, "logs": 1})
        watchdog = _Watchdog(self)
        try:
            self.container.start()
            watchdog.start()
            _pump(frames_iter(sock, tty=False), on_line, on_err or on_line)
            status = streaming_api().wait(self.container.id)
        finally:
            watchdog.stop()
            # The SDK hangs the HTTP response on the socket it returns; closing the response
            # closes the connection (a worker runs many builds: no socket may leak).
            getattr(sock, "_response", sock).close()
        if watchdog.reason is not None:
            raise watchdog.reason
        code = int(status.get("StatusCode", 1))
        if code == 137:
            self.container.reload()
            self.oom_killed = bool(self.container.attrs["State"].get("OOMKilled"))
        return code

    def attach_terminal(self) -> int:
        """Start with our stdin, stdout and stderr attached, until the command ends; its exit code.
        The docker CLI does what the SDK does not: raw terminal mode, resizes, detach keys."""
        import subprocess
        docker = shutil.which("docker")
        if docker is None:
            from xbuild.errors import EngineUnavailable
            raise EngineUnavailable("`xbuild shell` needs the docker command-line client",
                                    hint="install it (Debian: apt install docker.io, or docker-ce-cli)")
        return subprocess.run([docker, "start", "--attach", "--interactive", self.container.id]).returncode

    def kill(self) -> None:
        from docker.errors import APIError
        with contextlib.suppress(APIError):  # it ended meanwhile
            self.container.kill()


class _Removals:
    """Containers being removed in the background; settle() waits for them (and raises what a
    removal raised: a container left behind must not pass unseen). A signal may interrupt
    later() before its thread runs: settle() then removes the container itself."""

    def __init__(self):
        self._pending: dict[str, threading.Thread] = {}
        self._done: set[str] = set()
        self._errors: list[BaseException] = []

    def later(self, name: str) -> None:
        thread = threading.Thread(target=self._remove, args=(name,), name=f"remove-{name}", daemon=True)
        self._pending[name] = thread  # before start(): settle() must know of it whatever happens
        thread.start()

    def _remove(self, name: str) -> None:
        try:
            Container.remove_now(name)
            self._done.add(name)
        except Exception as exc:  # noqa: BLE001 - reported by settle()
            self._errors.append(exc)

    def settle(self) -> None:
        while self._pending:
            name, thread = self._pending.popitem()
            join_started(thread)
            if name not in self._done:  # its thread never ran, or failed: once more, here
                Container.remove_now(name)
            self._done.discard(name)
        if self._errors:
            raise self._errors.pop()


_removing = _Removals()
settle = _removing.settle


def container_disk_used(container_id: str) -> int:
    """Bytes in a container's writable layer (the list API's size option: the engine walks the
    layer, so this is not cheap)."""
    from docker.errors import DockerException
    try:
        found = client().api.containers(all=True, size=True, filters={"id": container_id})
    except DockerException:
        return 0  # gone, or the engine is busy: the next poll sees it
    return int(found[0].get("SizeRw") or 0) if found else 0


def tree_bytes(root: Path) -> int:
    """Bytes of the files under root (a mount: the compiler cache), links not followed."""
    return tree_usage(root)[0]


def _pump(frames, on_out, on_err) -> None:
    """The engine's (stream, bytes) frames -> lines; a partial line waits for its end."""
    emitters = {1: on_out, 2: on_err}
    partial = {1: b"", 2: b""}
    for key, data in frames:
        if key in partial and data:
            *lines, partial[key] = (partial[key] + data).split(b"\n")
            for line in lines:
                emitters[key](line.decode("utf-8", "replace"))
    for key, rest in partial.items():
        if rest:
            emitters[key](rest.decode("utf-8", "replace"))


class _Watchdog(threading.Thread):
    """Kills the container at its time limit, or when its writes pass the disk limit."""

    def __init__(self, box: Box):
        super().__init__(daemon=True, name=f"watchdog-{box.name}")
        self.box = box
        self.reason: BuildTimeout | DiskLimitExceeded | None = None  # why it killed, if it did
        self._halt = threading.Event()

    def stop(self) -> None:
        self._halt.set()
        join_started(self)  # a signal may have come before (or during) start()

    def run(self) -> None:
        limits = self.box.limits
        deadline = time.monotonic() + limits.timeout
        next_disk = time.monotonic()
        # A mount is outside the container's layer: its growth counts against the limit too.
        mounted = 0
        with contextlib.suppress(NestedTooDeep):  # scrubbed before the build (compiler_cache.scrub)
            mounted = sum(map(tree_bytes, self.box.mounts))
        while not self._halt.wait(max(0.0, min(1.0, deadline - time.monotonic()))):
            if time.monotonic() >= deadline:
                self._kill(BuildTimeout(f"killed at the time limit of {limits.timeout} s",
                                        hint="raise it with --timeout (XBUILD_TIMEOUT) or `timeout` "
                                             "in xbuild.toml, or find what hangs in the log"))
                return
            if time.monotonic() >= next_disk:
                used = container_disk_used(self.box.container.id)
                try:
                    if self.box.mounts:
                        used += max(0, sum(map(tree_bytes, self.box.mounts)) - mounted)
                except NestedTooDeep:  # uncountable: what the build wrote there is not a compiler's
                    self._kill(disk_limit_error(limits.disk_mb, "a tree nested past counting in the "
                                                                "compiler cache"))
                    return
                if used > limits.disk_mb << 20:
                    self._kill(disk_limit_error(limits.disk_mb, f"{used >> 20} MB written"))
                    return
                next_disk = time.monotonic() + DISK_POLL_SECONDS

    def _kill(self, reason: BuildTimeout | DiskLimitExceeded) -> None:
        self.reason = reason
        self.box.kill()


def disk_limit_error(limit_mb: int, what: str) -> DiskLimitExceeded:
    return DiskLimitExceeded(f"killed at the disk limit of {limit_mb} MB ({what})",
                             hint=f"raise it with XBUILD_MAX_DISK_MB (now {limit_mb}), or make the "
                                  "build write less (build.log shows where it was)")


def _listed(filters: dict) -> list:
    """Containers matching `filters`, from the list call alone (sparse: labels in attrs["Labels"]).
    A full list inspects each container after listing it, and one that another build removed in
    between made the whole call fail with a 404: two workers, each removing its own containers."""
    return client().containers.list(all=True, sparse=True, filters=filters)


def _remove_all(containers) -> int:
    from docker.errors import APIError
    removed = 0
    for c in containers:
        try:
            c.remove(force=True)
            removed += 1
        except APIError:
            pass  # removed meanwhile
    return removed


def remove_expired(label: str, now: float | None = None) -> int:
    """Remove the containers labelled `label` ("key=value": a farm's, see service/execute.farm)
    that are past their deadline label: builds whose xbuild died (SIGKILL, a lost worker) and whose
    container outlived it. Never the whole engine's: it is shared with other deployments, other
    users' builds and tests, whose containers are not the caller's to remove. Returns how many
    were removed."""
    now = time.time() if now is None else now
    expired = []
    for c in _listed({"label": [DEADLINE_LABEL, label]}):
        try:
            deadline = float((c.attrs.get("Labels") or {}).get(DEADLINE_LABEL, ""))
        except ValueError:
            continue  # not one of ours
        if deadline < now:
            expired.append(c)
    return _remove_all(expired)


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_free_space(paths: list[Path]) -> None:
    """Refuse to start when a disk a build writes to is nearly full (XBUILD_MIN_FREE_MB)."""
    need = environment.whole("XBUILD_MIN_FREE_MB")
    for path in paths:
        free = shutil.disk_usage(_existing(path)).free >> 20
        if free < need:
            raise NoSpace(f"only {free} MB free on the disk of {path} (a build needs {need} MB)",
                          hint="free some space (`xbuild images prune`, old outputs), or lower "
                               "XBUILD_MIN_FREE_MB")


def engine_data_root() -> Path | None:
    """The engine's data root when it is on this machine's filesystem (a local engine)."""
    root = Path(client().info().get("DockerRootDir") or "/var/lib/docker")
    return root if root.exists() else None


@contextlib.contextmanager
def pids_cgroup(pids: int, log):
    """A cgroup parent holding a pids limit, for builds whose containers the engine creates
    itself (a Dockerfile's RUN steps: the build API has no pids limit). It needs the engine's
    cgroupfs driver on this machine and a writable cgroup tree (xbuild as root); otherwise the
    build runs without a pids limit and says so. Yields the parent to give the engine, or None."""
    name = f"xbuild-{uuid.uuid4().hex[:16]}"
    where = _pids_dir(name)
    if isinstance(where, str):
        log(f"[xbuild] no pids limit for this Dockerfile build: {where}")
        yield None
        return
    try:
        where.mkdir()
        (where / "pids.max").write_text(str(pids))
    except OSError as exc:
        log(f"[xbuild] no pids limit for this Dockerfile build: {where}: {exc.strerror}")
        yield None
        return
    try:
        yield f"/{name}"
    finally:
        # The engine made the same group in every hierarchy; empty once the build's containers
        # are gone (their removal can lag a moment behind the build's end).
        for _ in range(20):
            left = [d for d in CGROUP_ROOT.glob(f"*/{name}") if not _rmdir(d)] + \
                   ([where] if where.exists() and not _rmdir(where) else [])
            if not left:
                break
            time.sleep(0.5)


CGROUP_ROOT = Path("/sys/fs/cgroup")


def _pids_dir(name: str) -> Path | str:
    """Where the pids group goes, or why there is none."""
    from docker.errors import APIError
    if not client().api.base_url.startswith("http+docker://local"):  # unix socket (or npipe)
        return "the engine is not on this machine, so neither is its cgroup tree"
    try:
        info = client().info()
    except APIError as exc:
        return f"engine info: {exc}"
    if info.get("CgroupDriver") != "cgroupfs":
        return f"the engine's cgroup driver is {info.get('CgroupDriver')!r}, not cgroupfs"
    if not (CGROUP_ROOT / "unified").exists() and (CGROUP_ROOT / "cgroup.controllers").exists():
        # cgroup v2: the parent is one directory; pids must be delegated to its children.
        if "pids" not in (CGROUP_ROOT / "cgroup.subtree_control").read_text().split():
            return "cgroup v2 without the pids controller enabled at the root"
        return CGROUP_ROOT / name
    if not (CGROUP_ROOT / "pids").is_dir():
        return "no pids cgroup controller on this machine"
    return CGROUP_ROOT / "pids" / name


def _rmdir(path: Path) -> bool:
    try:
        path.rmdir()
    except FileNotFoundError:
        pass
    except OSError:
        return False
    return True

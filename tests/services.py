"""Real processes for the service tests: Redis, RabbitMQ, `xbuild serve`, `xbuild worker`; each
on loopback, each stopped (and its process group killed) at the end."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import requests

TOKEN_A, TOKEN_B = "token-a-123", "token-b-456"  # the tenants of a test farm


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# What was started here and is not stopped yet: stopped when the interpreter exits, so that a
# test run cut short (Ctrl-C, a failure in a fixture's set-up) leaves nothing running either.
_LEFT: list = []


@atexit.register
def _stop_what_is_left() -> None:
    for thing in reversed(_LEFT[:]):  # servers before the processes they hold
        with contextlib.suppress(Exception):
            if isinstance(thing, Server):
                thing.stop(signal.SIGKILL)
            else:
                thing.kill()


class Proc:
    def __init__(self, args: list[str], env: dict, log: Path):
        self.log = log.open("ab")
        self.p = subprocess.Popen(args, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
        _LEFT.append(self)

    def kill(self, sig=signal.SIGKILL, grace: float = 20) -> None:
        if self.log.closed:
            return  # stopped already
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.p.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.p.wait(grace)
        # The rest of its group goes too, also when it ended by itself: a member may outlive it
        # (a Celery worker's prefork child).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.p.pid, signal.SIGKILL)
        self.p.wait()
        self.log.close()
        if self in _LEFT:
            _LEFT.remove(self)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)

    def listening(self, port: int, what: str, log: Path, tries: int = 100) -> None:
        """Wait until the process accepts connections on port; kill it if it never does."""
        for _ in range(tries):
            if self.p.poll() is not None:
                break
            try:
                with socket.create_connection(("127.0.0.1", port), 0.2):
                    return
            except OSError:
                time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"{what} did not start: {log.read_text()[-2000:]}")


class Redis(Proc):
    def __init__(self, workdir: Path):
        self.port, self.dir = free_port(), workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._start()

    def _start(self) -> None:
        exe = shutil.which("redis-server") or "/usr/bin/redis-server"
        super().__init__([exe, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
                          "--appendonly", "yes", "--save", ""], dict(os.environ), self.dir / "redis.log")
        self.listening(self.port, "redis-server", self.dir / "redis.log")

    def restart(self) -> None:
        self.stop()
        self._start()


class RabbitMQ:
    """A RabbitMQ node of the test's own (Debian's rabbitmq-server), in the foreground as our
    child: its own node name, data and log directories, AMQP and distribution ports on loopback,
    and its own epmd on a free port (never the system's epmd on 4369, never a daemon that would
    outlive the test). Data survives restart(): durable queues and persistent messages too."""

    def __init__(self, workdir: Path):
        self.port, self.dist_port, self.epmd_port = free_port(), free_port(), free_port()
        self.dir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}//"
        (workdir / "rabbitmq.conf").write_text("")
        (workdir / "enabled_plugins").write_text("[].\n")
        (workdir / "env.conf").write_text("")
        self.env = {**os.environ, "HOME": str(workdir),  # the Erlang cookie goes there
                    "RABBITMQ_NODENAME": f"xbuild-test-{self.port}@localhost",
                    "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1", "RABBITMQ_NODE_PORT": str(self.port),
                    "RABBITMQ_DIST_PORT": str(self.dist_port), "ERL_EPMD_PORT": str(self.epmd_port),
                    "RABBITMQ_MNESIA_BASE": str(workdir / "mnesia"),
                    "RABBITMQ_LOG_BASE": str(workdir / "log"), "RABBITMQ_LOGS": "-",
                    "RABBITMQ_CONFIG_FILE": str(workdir / "rabbitmq"),
                    "RABBITMQ_ADVANCED_CONFIG_FILE": str(workdir / "advanced.config"),
                    "RABBITMQ_ENABLED_PLUGINS_FILE": str(workdir / "enabled_plugins"),
                    "RABBITMQ_CONF_ENV_FILE": str(workdir / "env.conf"),
                    "RABBITMQ_PID_FILE": str(workdir / "rabbitmq.pid"),
                    "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS":
                        "-start_epmd false -kernel inet_dist_use_interface {127,0,0,1}"}
        self.epmd = Proc([shutil.which("epmd") or "/usr/bin/epmd", "-port", str(self.epmd_port),
                          "-address", "127.0.0.1"], self.env, workdir / "epmd.log")
        self.epmd.listening(self.epmd_port, "epmd", workdir / "epmd.log")
        self.node: Proc | None = None
        try:
            self._start()
        except BaseException:
            self.epmd.kill()
            raise

    def _start(self) -> None:
        exe = "/usr/lib/rabbitmq/bin/rabbitmq-server"  # the unwrapped script: no su, no daemon
        self.node = Proc([exe], self.env, self.dir / "rabbitmq.log")
        self.node.listening(self.port, "rabbitmq-server", self.dir / "rabbitmq.log", tries=600)

    def stop_node(self) -> None:
        """SIGTERM is a clean shutdown for RabbitMQ, but a slow one: allow it a minute."""
        if self.node is not None:
            self.node.kill(signal.SIGTERM, grace=60)
            self.node = None

    def restart(self) -> None:
        self.stop_node()
        self._start()

    def kill(self) -> None:
        self.stop_node()
        self.epmd.kill()


def xbuild_proc(args: list[str], env: dict, log: Path) -> Proc:
    return Proc([sys.executable, "-m", "xbuild", *args], env, log)


def _stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat's fields after the command name (state, ppid, pgrp, ...); None once gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def descendants(pid: int) -> dict[int, str]:
    """Every process below pid, with its start time (fields[19]): a pid reused later is not it."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        if fields := _stat(int(stat.parent.name)):
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: dict[int, str] = {}
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if (fields := _stat(child)) is not None:
                found[child] = fields[19]
                todo.append(child)
    return found


def alive(pid: int, started: str | None = None) -> bool:
    """Running (not a zombie), and the same process when its start time is given."""
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z" and (started is None or fields[19] == started)


class Server:
    def __init__(self, env: dict, workdir: Path, port: int | None = None):
        self.port = port or free_port()  # a port given: a restart, where its clients expect it
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = xbuild_proc(["serve", "--port", str(self.port)], env, workdir / "serve.log")
        _LEFT.append(self)
        self.started: dict[int, str] = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.proc.p.poll() is None:
            try:
                if requests.get(f"{self.url}/healthz", timeout=1).ok:
                    # serve starts its worker before it answers: known now even if serve dies
                    self.started = descendants(self.proc.p.pid)
                    return
            except requests.RequestException:
                time.sleep(0.2)
        self.stop(signal.SIGKILL)  # nothing left running (or unclosed) to trouble the tests after this one
        raise RuntimeError(f"xbuild serve did not start: {(workdir / 'serve.log').read_text()[-2000:]}")

    def stop(self, sig=signal.SIGTERM) -> None:
        """Stop serve, and whatever it started: its embedded worker runs in a session of its own
        (so that serve can stop the worker's whole group), out of reach of a signal to serve's
        group. serve stops it on SIGTERM, but not when it is killed, or slower than the grace
        here (a worker finishing a build): then what is left of them is killed here, their
        process groups too (a Celery prefork child outlives its parent for a moment)."""
        if self not in _LEFT:
            return  # stopped already: its pid may be another process's now
        # serve's children now, unless it has ended (then its pid may be another process's)
        seen = {**self.started, **(descendants(self.proc.p.pid) if self.proc.p.poll() is None else {})}
        below = {pid: (started, int(f[2])) for pid, started in seen.items() if (f := _stat(pid))}
        self.proc.kill(sig)
        left = {pid: group for pid, (started, group) in below.items() if alive(pid, started)}
        # a group is still ours while a member seen above is alive (never a reused id's group)
        for group in set(left.values()) - {os.getpgrp()}:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while any(alive(pid, started) for pid, (started, _) in below.items()) and time.monotonic() < deadline:
            time.sleep(0.1)
        if self in _LEFT:
            _LEFT.remove(self)


class GitDaemon(Proc):
    """`git daemon` serving the bare repositories under `root` at git://127.0.0.1:<port>/."""

    def __init__(self, root: Path):
        self.port = free_port()
        self.url = f"git://127.0.0.1:{self.port}"
        super().__init__(["git", "daemon", "--reuseaddr", "--export-all", f"--base-path={root}",
                          "--listen=127.0.0.1", f"--port={self.port}", str(root)],
                         dict(os.environ), root.parent / "git-daemon.log")
        self.listening(self.port, "git daemon", root.parent / "git-daemon.log")


class Registry(Proc):
    """A real container registry (Debian's docker-registry, the CNCF distribution server) on a
    loopback port, which the engine treats as an insecure registry it may use over plain HTTP."""

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        workdir.mkdir(parents=True, exist_ok=True)
        config = workdir / "registry.yml"
        config.write_text(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {workdir / 'data'}\n"
                          f"http:\n  addr: {self.host}\n")
        exe = shutil.which("docker-registry") or "/usr/bin/docker-registry"
        super().__init__([exe, "serve", str(config)], dict(os.environ), workdir / "registry.log")
        self.listening(self.port, "docker-registry", workdir / "registry.log")


def service_env(tmp: Path, **extra) -> dict:
    """The environment of a test farm in tmp: its own state directory and file store, two tenants,
    short lease and reaper times, the tests' git daemon on loopback allowed."""
    env = {k: v for k, v in os.environ.items() if k != "XBUILD_DEBUG"}
    env.update({"XBUILD_STATE_DIR": str(tmp / "state"), "XBUILD_STORE": (tmp / "store").as_uri(),
                "XBUILD_API_TOKENS": f"{TOKEN_A},{TOKEN_B}", "XBUILD_REAPER_INTERVAL": "2",
                "XBUILD_LEASE_TTL": "6", "XBUILD_REQUEUE_AFTER": "20",
                "XBUILD_SERVICE_ALLOW_PRIVATE_GIT": "1",  # the tests' git daemon is on loopback
                **extra})
    return env


@contextlib.contextmanager
def embedded_server(tmp: Path, **extra) -> Iterator[Server]:
    """`xbuild serve` on the embedded defaults (SQLite broker, its own worker, a file store), with
    service_env(tmp, **extra) as `.env`; stopped at the end."""
    env = service_env(tmp, **extra)
    server = Server(env, tmp)
    server.env = env
    try:
        yield server
    finally:
        server.stop()

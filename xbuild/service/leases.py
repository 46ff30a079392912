"""Leases: proof that a job is running right now on a live worker, so that a job is never run
twice at once, a dead worker's job is noticed quickly, and only the lease holder rewrites a job's
record (a worker while it runs the job; the reaper while it requeues or fails it).

- One machine (the embedded SQLite broker): an flock on a file. The kernel drops it the moment
  its process dies, SIGKILL included, so "lease free while state is running" means "worker died".
- Redis: a key set with NX and a TTL, refreshed by a heartbeat thread; it expires LEASE_TTL
  seconds after its worker stops refreshing it.
- RabbitMQ (amqp://): an exclusive queue `xbuild.lease.<name>`, declared on a connection of the
  holder's own. The broker allows one exclusive owner per queue (a second declare is refused with
  RESOURCE_LOCKED) and deletes the queue when its owner's connection closes. A SIGKILLed worker's
  TCP connection is closed by its kernel at once, so the lease is free within a round trip; a
  worker cut off without a FIN (a dead host, a partition) is dropped by AMQP heartbeats after
  about LEASE_TTL. This needs nothing but the broker the farm already runs (no Redis, no
  database), and unlike a TTL key there is no clock to tune. A broker restart drops every lease at
  once, so the holder re-declares its queue as soon as the broker is back, and the reaper waits
  grace() seconds (XBUILD_LEASE_TTL) of a lease seen free before it acts, the same grace a Redis TTL gives."""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import threading
import uuid
from typing import Any

from xbuild.host.paths import under
from xbuild.service import settings


class FileLease:
    @staticmethod
    def grace() -> float:
        return 0.0  # the kernel's word is final

    def __init__(self, name: str):
        self.path = under(settings.state_dir() / "leases", f"{name}.lock", what="a lease name")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd: int | None = None
        self.lost = False

    def acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self.fd = fd
        return True

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing drops the flock
            self.fd = None

    def held_elsewhere(self) -> bool:
        if self.acquire():
            self.release()
            return False
        return True


class RedisLease:
    @staticmethod
    def grace() -> float:
        return 0.0  # the key's TTL is the grace

    def __init__(self, name: str):
        import redis
        self.redis = redis.Redis.from_url(settings.broker_url())
        self.key = f"xbuild:lease:{name}"
        self.token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None
        self.lost = False

    def acquire(self) -> bool:
        ttl = int(settings.lease_ttl() * 1000)
        if not self.redis.set(self.key, self.token, nx=True, px=ttl):
            self.redis.close()
            return False
        self._beat = threading.Thread(target=self._heartbeat, args=(ttl,), daemon=True)
        self._beat.start()
        return True

    def _heartbeat(self, ttl: int) -> None:
        import redis
        while not self._stop.wait(settings.lease_ttl() / 3):
            try:
                if self.redis.get(self.key) != self.token.encode():
                    self.lost = True  # expired and maybe taken: the holder must not save
                    return
                self.redis.pexpire(self.key, ttl)
            except redis.RedisError:
                continue  # Redis restarting: the key survives (appendonly) or expires; retry

    def release(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
        try:
            if self.redis.get(self.key) == self.token.encode():
                self.redis.delete(self.key)
        finally:
            self.redis.close()

    def held_elsewhere(self) -> bool:
        try:
            return bool(self.redis.exists(self.key))
        finally:
            self.redis.close()


class AmqpLease:
    @staticmethod
    def grace() -> float:
        return settings.lease_ttl()  # a broker restart frees every lease for a moment

    def __init__(self, name: str):
        self.queue = f"xbuild.lease.{name}"
        self.conn: Any = None  # a kombu Connection while held
        self._stop = threading.Event()
        self._keeper: threading.Thread | None = None
        self.lost = False

    def _connect(self):
        from kombu import Connection
        # heartbeat: the broker drops a silent holder (and its queue) after about LEASE_TTL
        conn = Connection(settings.broker_url(), heartbeat=max(2, int(settings.lease_ttl() / 2)),
                          connect_timeout=5, transport_options={"max_retries": 1})
        conn.connect()
        return conn

    def _declare(self, conn) -> bool:
        """Declare the exclusive queue on conn; False when another connection owns it."""
        from amqp.exceptions import ResourceLocked
        channel = conn.channel()
        try:
            channel.queue_declare(self.queue, exclusive=True, auto_delete=False, durable=False)
            return True
        except ResourceLocked:
            return False

    def _take(self):
        """A connection owning the queue, or None when another connection owns it."""
        conn = self._connect()
        if not self._declare(conn):
            conn.release()
            return None
        return conn

    def acquire(self) -> bool:
        self.conn = self._take()
        if self.conn is None:
            return False
        self._keeper = threading.Thread(target=self._keep, daemon=True)
        self._keeper.start()
        return True

    def _keep(self) -> None:
        """Answer the broker's heartbeats; after a broker restart, take the queue again."""
        interval = 1.0  # also how long release() may wait for this thread
        while not self._stop.is_set():
            try:
                self.conn.heartbeat_check()
                self.conn.drain_events(timeout=interval)
            except TimeoutError:
                continue
            except Exception:  # noqa: BLE001 - the connection died (a broker restart): retake it
                self._retake(interval)

    def _retake(self, interval: float) -> None:
        with contextlib.suppress(Exception):  # it is already dead
            self.conn.release()
        while not self._stop.wait(interval):
            try:
                conn = self._connect()
            except Exception:  # noqa: BLE001 - broker still down
                continue
            if self._declare(conn):
                self.conn = conn
                return
            conn.release()  # someone else holds it now: the job was taken over
            self.lost = True
            self._stop.set()
            return

    def release(self) -> None:
        self._stop.set()
        if self._keeper is not None:
            self._keeper.join()
        if self.conn is not None:
            with contextlib.suppress(Exception):  # the broker is gone: so is the queue
                self.conn.release()  # closing the connection deletes the exclusive queue
            self.conn = None

    def held_elsewhere(self) -> bool:
        conn = self._take()
        if conn is None:
            return True
        conn.release()
        return False


def lease_class():
    if settings.embedded():
        return FileLease
    if settings.broker_url().startswith(("amqp://", "amqps://", "pyamqp://")):
        return AmqpLease
    return RedisLease


def lease(name: str):
    return lease_class()(name)

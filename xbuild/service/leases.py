"""Leases: proof that a job is running right now on a live worker, so that a job is never run
twice at once and a dead worker's job is noticed quickly.

- One machine (the embedded SQLite broker): an flock on a file. The kernel drops it the moment
  its process dies, SIGKILL included, so "lease free while state is running" means "worker died".
- A farm (Redis broker): a key set with NX and a TTL, refreshed by a heartbeat thread; it
  expires LEASE_TTL seconds after its worker stops refreshing it."""

from __future__ import annotations

import fcntl
import os
import socket
import threading
import uuid

from xbuild.service import settings


class FileLease:
    def __init__(self, name: str):
        self.path = settings.state_dir() / "leases" / f"{name}.lock"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd: int | None = None

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
    def __init__(self, name: str):
        import redis
        self.redis = redis.Redis.from_url(settings.broker_url())
        self.key = f"xbuild:lease:{name}"
        self.token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def acquire(self) -> bool:
        ttl = int(settings.LEASE_TTL * 1000)
        if not self.redis.set(self.key, self.token, nx=True, px=ttl):
            return False
        self._beat = threading.Thread(target=self._heartbeat, args=(ttl,), daemon=True)
        self._beat.start()
        return True

    def _heartbeat(self, ttl: int) -> None:
        while not self._stop.wait(settings.LEASE_TTL / 3):
            if self.redis.get(self.key) != self.token.encode():
                return  # lost it (expired): the reaper may requeue; the job notices on save
            self.redis.pexpire(self.key, ttl)

    def release(self) -> None:
        self._stop.set()
        if self.redis.get(self.key) == self.token.encode():
            self.redis.delete(self.key)

    def held_elsewhere(self) -> bool:
        return bool(self.redis.exists(self.key))


def lease(name: str):
    return FileLease(name) if settings.embedded() else RedisLease(name)

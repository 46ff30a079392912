"""Job records, kept in the artifact store so the API, every worker and the reaper share them
without a database of their own: jobs/<tenant>/<id>/{job.json, source.tar.gz, build.log, cancel}.

A job's record is only ever rewritten by the one process that holds its lease (a worker), or by
the API/reaper when no lease is held; see leases.py."""

from __future__ import annotations

import datetime
import hashlib
import json
import uuid
from dataclasses import asdict, dataclass, field

from xbuild.store import Store, configured_url, open_store

TERMINAL = ("succeeded", "failed", "timed_out", "cancelled")


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def tenant_of(token: str) -> str:
    """Tenants are named by a hash of their token: the token itself is never stored."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


@dataclass
class Job:
    id: str
    tenant: str
    target: str
    mode: str = "cross"
    no_cache: bool = False
    source: str = "upload"              # upload | git
    git_url: str | None = None
    git_ref: str | None = None
    commit: str | None = None                   # what a git build checked out
    project: str = "project"
    state: str = "queued"               # queued, running, succeeded, failed, timed_out, cancelled
    attempts: int = 0
    created: str = field(default_factory=now)
    started: str | None = None
    finished: str | None = None
    exit_code: int | None = None
    error: str | None = None
    hint: str | None = None
    cache: str | None = None
    build_id: str | None = None
    files: list = field(default_factory=list)   # [{name, sha256, size, object}]
    queue: str = ""
    nightly: str | None = None                  # the night this job belongs to, if any

    @property
    def prefix(self) -> str:
        return f"jobs/{self.tenant}/{self.id}"

    def to_json(self) -> dict:
        return asdict(self)


def new_id() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:8]


class Jobs:
    def __init__(self, store: Store | None = None):
        self.store = store or open_store(configured_url(), create=True)

    def save(self, job: Job) -> None:
        self.store.write(f"{job.prefix}/job.json", json.dumps(job.to_json(), sort_keys=True).encode())

    def get(self, tenant: str, job_id: str) -> Job | None:
        if "/" in job_id or job_id.startswith("."):
            return None
        data = self.store.read(f"jobs/{tenant}/{job_id}/job.json")
        return Job(**json.loads(data)) if data else None

    def all(self, tenant: str | None = None) -> list[Job]:
        prefix = f"jobs/{tenant}" if tenant else "jobs"
        keys = [k for k in self.store.list(prefix) if k.endswith("/job.json")]
        jobs = [Job(**json.loads(d)) for k in keys if (d := self.store.read(k))]
        return sorted(jobs, key=lambda j: j.created, reverse=True)

    def log(self, job: Job) -> bytes:
        return self.store.read(f"{job.prefix}/build.log") or b""

    def write_log(self, job: Job, data: bytes) -> None:
        self.store.write(f"{job.prefix}/build.log", data)

    def request_cancel(self, job: Job) -> None:
        self.store.write(f"{job.prefix}/cancel", b"1")

    def cancel_requested(self, job: Job) -> bool:
        return self.store.exists(f"{job.prefix}/cancel")

"""Job records, kept in the artifact store so the API, every worker and the reaper share them
without a database of their own:

    jobs/<tenant>/<id>/job.json, source.tar.gz, cancel
    jobs/<tenant>/<id>/build.log.d/<offset>    the log, in chunks named by their first byte's offset
    jobs/live/<tenant>/<id>                    an index of queued and running jobs (what the reaper reads)
    jobs/done/<date>/<tenant>/<id>             finished jobs by day (what retention reads)
    jobs/<tenant>/keys/<hash>                  the job a submit's Idempotency-Key made (its id)
    jobs/<tenant>/<id>/idempotency-key         that <hash>, so that retention forgets it too

The indexes keep the reaper's cost to the jobs alive now and to the days it must forget, never to
every job ever run. The log is append-only: S3 has no append, so each flush adds an object.

A job's record is only ever rewritten by the one process that holds its lease (a worker running
it, the reaper requeueing or failing it), or by the API when it creates it; see leases.py."""

from __future__ import annotations

import datetime
import hashlib
import json
import uuid
from dataclasses import asdict, dataclass, field

from xbuild import environment
from xbuild.host.paths import component, is_component
from xbuild.request import API_FIELDS, BuildRequest
from xbuild.store import Store, configured_url, open_store

TERMINAL = ("succeeded", "failed", "timed_out", "cancelled")
STATES = ("queued", "running", *TERMINAL)  # every state a job can be in
LOG_DIR = "build.log.d"
_KEY_OF_JOB = "idempotency-key"  # in a job's prefix: the name of its submit's key under keys/
_OFFSET_DIGITS = 12  # chunk names sort as numbers: logs up to a terabyte


def retention_days() -> float:
    return environment.number("XBUILD_JOB_RETENTION_DAYS")


def now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def age(stamp: str | None) -> float:
    """Seconds since a stamp of now()'s (0 for none)."""
    if not stamp:
        return 0.0
    then = datetime.datetime.fromisoformat(stamp)
    return (datetime.datetime.now(datetime.UTC) - then).total_seconds()


def tenant_of(token: str) -> str:
    """Tenants are named by a hash of their token: the token itself is never stored."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


@dataclass
class Job:
    id: str
    tenant: str
    # What was asked. The record holds its API fields (target, os, mode, static, deb, no_cache)
    # beside the job's own; os None: xbuild.toml's, else the board's default (the worker then
    # records the one it built for); static and deb False: xbuild.toml's.
    request: BuildRequest
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
    cache_key: str | None = None
    timings: dict | None = None          # seconds per phase of the build, as a local --json's
    compiler_cache: dict | None = None   # hits and misses, as a local --json's
    files: list = field(default_factory=list)   # [{name, sha256, size, object}]
    queue: str = ""
    nightly: str | None = None                  # the night this job belongs to, if any

    @property
    def prefix(self) -> str:
        return f"jobs/{component(self.tenant, 'a tenant')}/{component(self.id, 'a job id')}"

    def to_json(self) -> dict:
        own = asdict(self)
        del own["request"]
        return {**self.request.to_json(API_FIELDS), **own}

    @classmethod
    def from_json(cls, data: dict) -> Job:
        own = {k: v for k, v in data.items() if k not in API_FIELDS}
        asked = BuildRequest.from_json({k: data[k] for k in API_FIELDS if k in data}, "a job record")
        return cls(request=asked, **own)


def new_id() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:8]


def _key_name(key: str) -> str:
    """An object name for any key: the client chose it, so it is hashed, never used as a path."""
    return hashlib.sha256(key.encode()).hexdigest()[:32]


class Jobs:
    def __init__(self, store: Store | None = None):
        self.store = store or open_store(configured_url(), create=True)

    def save(self, job: Job) -> None:
        """Write the record and keep the indexes right. The order makes a crash harmless: a live
        marker is written before the record and removed after it, so a live job is never missing
        from the index (a stale marker of a finished job is dropped by the reaper)."""
        record = f"{job.prefix}/job.json"  # first: UnsafeName for an id or tenant that is no name
        live = f"jobs/live/{job.tenant}/{job.id}"
        if job.state not in TERMINAL:
            self.store.write(live, job.created.encode())
        self.store.write(record, json.dumps(job.to_json(), sort_keys=True).encode())
        if job.state in TERMINAL:
            day = (job.finished or now())[:10]
            self.store.write(f"jobs/done/{day}/{job.tenant}/{job.id}", b"")
            self.store.delete(live)

    def live(self) -> list[tuple[str, str]]:
        """(tenant, id) of every job the index holds as queued or running."""
        return [(k.split("/")[2], k.split("/")[3]) for k in self.store.list("jobs/live") if k.count("/") == 3]

    def unlist(self, tenant: str, job_id: str) -> None:
        """Drop a stale live marker (its job finished, or was never written)."""
        self.store.delete(f"jobs/live/{tenant}/{job_id}")

    def expire(self, days: float | None = None) -> list[str]:
        """Forget the jobs that finished more than `days` ago: their record, source and log. The
        artifacts they published are objects of the build cache, shared and never touched here."""
        days = retention_days() if days is None else days
        cutoff = (datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=days)).isoformat()
        gone = []
        for key in self.store.list("jobs/done"):
            parts = key.split("/")
            if len(parts) != 5 or parts[2] >= cutoff[:10]:
                continue  # whole days only: a job finished on the cutoff's day stays until the next
            tenant, job_id = parts[3], parts[4]
            if (named := self.store.read(f"jobs/{tenant}/{job_id}/{_KEY_OF_JOB}")) and named.isalnum():
                self.store.delete(f"jobs/{tenant}/keys/{named.decode()}")
            for obj in self.store.list(f"jobs/{tenant}/{job_id}"):
                self.store.delete(obj)
            self.store.delete(key)
            gone.append(job_id)
        return gone

    def get(self, tenant: str, job_id: str) -> Job | None:
        if not (is_component(tenant) and is_component(job_id)):
            return None
        data = self.store.read(f"jobs/{tenant}/{job_id}/job.json")
        return Job.from_json(json.loads(data)) if data else None

    def all(self, tenant: str | None = None) -> list[Job]:
        prefix = f"jobs/{tenant}" if tenant else "jobs"
        keys = [k for k in self.store.list(prefix) if k.endswith("/job.json")]
        jobs = [Job.from_json(json.loads(d)) for k in keys if (d := self.store.read(k))]
        return sorted(jobs, key=lambda j: j.created, reverse=True)

    def _chunks(self, job: Job) -> list[tuple[int, str]]:
        return sorted((int(k.rsplit("/", 1)[1]), k) for k in self.store.list(f"{job.prefix}/{LOG_DIR}")
                      if k.rsplit("/", 1)[1].isdigit())

    def log_size(self, job: Job) -> int:
        """Where the next chunk starts: a later attempt appends after the earlier ones."""
        chunks = self._chunks(job)
        if not chunks:
            return 0
        start, key = chunks[-1]
        return start + len(self.store.read(key) or b"")

    def log(self, job: Job, offset: int = 0) -> bytes:
        """The log's bytes from `offset` on, read from the chunks that hold them."""
        chunks = self._chunks(job)
        out = []
        for n, (start, key) in enumerate(chunks):
            end = chunks[n + 1][0] if n + 1 < len(chunks) else None
            if end is not None and end <= offset:
                continue  # wholly before the offset: not even read
            data = self.store.read(key) or b""
            out.append(data[max(0, offset - start):])
        return b"".join(out)

    def append_log(self, job: Job, offset: int, data: bytes) -> None:
        """Add the log's bytes that start at `offset` (the log's length so far)."""
        self.store.write(f"{job.prefix}/{LOG_DIR}/{offset:0{_OFFSET_DIGITS}d}", data)

    def remember_key(self, tenant: str, key: str, job_id: str) -> None:
        """A submit's idempotency key (a client's own, hashed) names the job it made; the job
        names its key back, so that retention forgets both."""
        self.store.write(f"jobs/{tenant}/{job_id}/{_KEY_OF_JOB}", _key_name(key).encode())
        self.store.write(f"jobs/{tenant}/keys/{_key_name(key)}", job_id.encode())

    def by_key(self, tenant: str, key: str) -> Job | None:
        """The job an earlier try of the same submit made, if any."""
        data = self.store.read(f"jobs/{tenant}/keys/{_key_name(key)}")
        return self.get(tenant, data.decode("ascii", "replace")) if data else None

    def request_cancel(self, job: Job) -> None:
        self.store.write(f"{job.prefix}/cancel", b"1")

    def cancel_requested(self, job: Job) -> bool:
        return self.store.exists(f"{job.prefix}/cancel")

"""The reaper: finds jobs whose worker died and puts them back in the queue, and forgets old jobs.

A job in state "running" whose lease is free lost its worker: requeue it, or fail it once it has
used MAX_ATTEMPTS (a build that kills its worker every time must not loop). A job "queued" for
longer than REQUEUE_AFTER is sent again: if the broker lost its message (a restart without
persistence), the build still happens; a duplicate message is harmless, run_job skips a job that
is done or running elsewhere.

The reaper rewrites a record only while it holds the job's lease (taken, the record re-read under
it, released before the job is sent), so it never overwrites what a worker just wrote. It reads
only the live index (jobs/live/, see jobs.py), so a sweep costs what is queued or running now,
not every job ever run; once an hour it deletes jobs that finished more than
XBUILD_JOB_RETENTION_DAYS ago."""

from __future__ import annotations

import contextlib
import threading
import time

from xbuild import environment
from xbuild.errors import WorkerLost
from xbuild.service import settings
from xbuild.service.jobs import TERMINAL, Job, Jobs, age, now
from xbuild.service.leases import lease, lease_class

RETENTION_EVERY = 3600.0
ORPHAN_AFTER = 3600.0  # a live marker without a record (the API died between the two writes)


def _remove_containers(job_id: str) -> None:
    """A dead worker's build container keeps running (its time limit died with the worker)."""
    from xbuild.containers.sandbox import Container
    from xbuild.errors import XBuildError
    from xbuild.service.execute import JOB_LABEL
    # no engine on this machine: the job's next worker removes it on its own engine
    with contextlib.suppress(XBuildError):
        Container.remove_labelled(JOB_LABEL, job_id)


def _remove_expired() -> int:
    """This farm's build containers past their deadline label (see execute.farm_label)."""
    from xbuild.errors import XBuildError
    from xbuild.service.execute import remove_expired
    try:
        return remove_expired()
    except XBuildError:
        return 0  # no engine on this machine: each worker sweeps its own before every job


def _submit(job: Job) -> None:
    from xbuild.service.celery_app import submit
    submit(job)


class Reaper:
    def __init__(self, jobs: Jobs | None = None, submit=_submit, remove_containers=_remove_containers):
        self.jobs = jobs or Jobs()
        self.submit, self.remove_containers = submit, remove_containers
        self.free_since: dict[str, float] = {}  # running jobs whose lease was seen free, since when
        self.last_retention = float("-inf")

    def sweep(self) -> list[tuple[str, str]]:
        try:
            return self._sweep()
        except Exception:
            # The broker or the store is away: the watch is broken. A lease seen free just before a
            # broker restart was freed by the restart itself, and its holder, which takes it again
            # once the broker is back, is owed the whole grace from then, not from before.
            self.free_since.clear()
            raise

    def _sweep(self) -> list[tuple[str, str]]:
        actions = []
        seen = set()
        for tenant, job_id in self.jobs.live():
            seen.add(job_id)
            job = self.jobs.get(tenant, job_id)
            if job is None or job.state in TERMINAL:
                if job is not None or age(self._marker_stamp(tenant, job_id)) > ORPHAN_AFTER:
                    self.jobs.unlist(tenant, job_id)
                continue
            if action := self._check(job):
                actions.append((job_id, action))
        self.free_since = {k: v for k, v in self.free_since.items() if k in seen}
        if time.monotonic() - self.last_retention >= RETENTION_EVERY:
            self.last_retention = time.monotonic()
            actions += [(job_id, "expired") for job_id in self.jobs.expire()]
        return actions

    def _marker_stamp(self, tenant: str, job_id: str) -> str | None:
        data = self.jobs.store.read(f"jobs/live/{tenant}/{job_id}")
        return data.decode() if data else None

    def _check(self, job: Job) -> str | None:
        if job.state == "running":
            return self._dead_worker(job)
        if job.state == "queued" and age(job.started or job.created) > environment.number("XBUILD_REQUEUE_AFTER"):
            return self._under_lease(job, self._resend)
        return None

    def _dead_worker(self, job: Job) -> str | None:
        """Act on a running job once its lease has been free for the lease type's grace."""
        if lease(job.id).held_elsewhere():
            self.free_since.pop(job.id, None)
            return None
        first = self.free_since.setdefault(job.id, time.monotonic())
        if time.monotonic() - first < lease_class().grace():
            return None
        self.free_since.pop(job.id, None)
        return self._under_lease(job, self._requeue_or_fail)

    def _under_lease(self, job: Job, act) -> str | None:
        """Take the job's lease, re-read the record under it, act, release; then send it."""
        held = lease(job.id)
        if not held.acquire():
            return None  # a worker has it now: not ours to touch
        try:
            fresh = self.jobs.get(job.tenant, job.id)
            if fresh is None or fresh.state != job.state:
                return None  # it moved on meanwhile
            action = act(fresh)
        finally:
            held.release()  # before sending: the worker that takes the message needs the lease
        if action in ("requeued", "resent"):
            self.submit(fresh)
        return action

    def _requeue_or_fail(self, job: Job) -> str:
        self.remove_containers(job.id)
        if job.attempts >= settings.max_attempts():
            job.state, job.finished, job.exit_code = "failed", now(), WorkerLost.exit_code
            job.error = f"the worker died {job.attempts} times running this build"
            job.hint = "the build may exhaust the worker's memory or crash it: check its log"
            self.jobs.save(job)
            return "failed"
        job.state, job.started = "queued", now()  # started: when last sent
        self.jobs.save(job)
        return "requeued"

    def _resend(self, job: Job) -> str:
        job.started = now()  # remembers when it was last sent
        self.jobs.save(job)
        return "resent"


def sweep(jobs: Jobs | None = None) -> list[tuple[str, str]]:
    """One sweep, for a caller without a reaper of its own (no grace memory across calls)."""
    return Reaper(jobs).sweep()


def run_forever(stop: threading.Event, log=print) -> None:
    reaper = Reaper()
    while not stop.wait(settings.reaper_interval()):
        try:
            for job_id, action in reaper.sweep():
                log(f"reaper: {action} {job_id}")
            if removed := _remove_expired():
                log(f"reaper: removed {removed} build container(s) past their time limit")
        except Exception as exc:  # noqa: BLE001 - the reaper must outlive a bad sweep
            log(f"reaper: sweep failed: {exc}")

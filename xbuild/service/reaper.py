"""The reaper: finds jobs whose worker died and puts them back in the queue.

A job in state "running" whose lease is free lost its worker: requeue it, or fail it once it has
used MAX_ATTEMPTS (a build that kills its worker every time must not loop). A job "queued" for
longer than REQUEUE_AFTER is sent again: if the broker lost its message (a restart without
persistence), the build still happens; a duplicate message is harmless, run_job skips a job that
is done or running elsewhere."""

from __future__ import annotations

import datetime
import os
import threading

from xbuild.service import settings
from xbuild.service.jobs import Jobs, now
from xbuild.service.leases import lease

REQUEUE_AFTER = float(os.environ.get("XBUILD_REQUEUE_AFTER", "120"))


def _age(stamp: str | None) -> float:
    if not stamp:
        return 0.0
    then = datetime.datetime.fromisoformat(stamp)
    return (datetime.datetime.now(datetime.timezone.utc) - then).total_seconds()


def _remove_containers(job_id: str) -> None:
    """A dead worker's build container keeps running (its time limit died with the worker)."""
    from xbuild.errors import XBuildError
    from xbuild.sandbox import Container
    from xbuild.service.execute import JOB_LABEL
    try:
        Container.remove_labelled(JOB_LABEL, job_id)
    except XBuildError:
        pass  # no engine on this machine: the job's next worker removes it on its own engine


def sweep(jobs: Jobs | None = None) -> list[tuple[str, str]]:
    from xbuild.service.celery_app import submit
    jobs = jobs or Jobs()
    actions = []
    for job in jobs.all():
        if job.state == "running" and not lease(job.id).held_elsewhere():
            fresh = jobs.get(job.tenant, job.id)  # it may have finished meanwhile
            if fresh is None or fresh.state != "running":
                continue
            _remove_containers(job.id)
            if fresh.attempts >= settings.MAX_ATTEMPTS:
                fresh.state, fresh.finished, fresh.exit_code = "failed", now(), 17
                fresh.error = f"the worker died {fresh.attempts} times running this build"
                fresh.hint = "the build may exhaust the worker's memory or crash it: check its log"
                jobs.save(fresh)
                actions.append((job.id, "failed"))
            else:
                fresh.state, fresh.started = "queued", now()  # started: when last sent
                jobs.save(fresh)
                submit(fresh)
                actions.append((job.id, "requeued"))
        elif job.state == "queued" and _age(job.started or job.created) > REQUEUE_AFTER:
            job.started = now()  # remembers when it was last sent
            jobs.save(job)
            submit(job)
            actions.append((job.id, "resent"))
    return actions


def run_forever(stop: threading.Event, log=print) -> None:
    while not stop.wait(settings.REAPER_INTERVAL):
        try:
            for job_id, action in sweep():
                log(f"reaper: {action} {job_id}")
        except Exception as exc:  # noqa: BLE001 - the reaper must outlive a bad sweep
            log(f"reaper: sweep failed: {exc}")

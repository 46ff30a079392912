"""The Celery app and the build task. The task is a thin shell around execute.run_job: all
policy is in the settings below, each chosen on purpose.

- task_acks_early (the default, acks_late=False) and no reject_on_worker_lost: recovery from a
  dead worker does not rely on the broker. On the embedded SQLite transport a fetched message is
  never redelivered after a SIGKILL, and on Redis redelivery waits for the visibility timeout.
  Instead the job's lease (leases.py) vanishes with its worker and the reaper requeues the job
  within REAPER_INTERVAL + LEASE_TTL seconds, counting attempts, so a job that kills its worker
  every time ends as failed after MAX_ATTEMPTS.
- worker_prefetch_multiplier=1 and concurrency 1 per worker: a build uses the machine's cores;
  a worker must not hoard queued builds that an idle worker could take.
- visibility_timeout (Redis) above the longest build time limit (request.MAX_TIMEOUT, 7 days, plus
  an hour): Redis never hands a running
  build to a second worker; the lease would stop it anyway (run_job refuses a held lease).
- An outage of the broker, the result backend or the store fails no build: the worker reconnects
  to the broker for ever (broker_connection_max_retries=None) while its build goes on, the result
  backend retries its writes, and store calls wait out an outage for XBUILD_RETRY_SECONDS
  (store.patience.ride_out_outages, set before the pool forks). A lost broker connection never cancels
  the running build (worker_cancel_long_running_tasks_on_connection_loss, pinned to False, which
  Celery 6 turns on for late-acked tasks): the lease, not the broker, says who runs a job.
- task_time_limit is not used: the build container has its own time limit and is removed on it,
  which a Celery hard kill of the worker process would skip."""

from __future__ import annotations

import os
import threading
import time

from celery import Celery
from celery.signals import worker_init

from xbuild.board.targets import all_targets
from xbuild.request import MAX_TIMEOUT
from xbuild.service import settings

app = Celery("xbuild")
app.conf.update(
    broker_url=settings.broker_url(),
    result_backend=settings.result_backend(),
    task_acks_late=False,
    task_reject_on_worker_lost=False,
    worker_prefetch_multiplier=1,
    worker_concurrency=1,
    task_track_started=True,
    broker_connection_retry_on_startup=True,
    broker_connection_retry=True,
    broker_connection_max_retries=None,
    result_backend_always_retry=True,
    result_backend_max_retries=20,
    worker_cancel_long_running_tasks_on_connection_loss=False,
    broker_transport_options=({"visibility_timeout": MAX_TIMEOUT + 3600} if not settings.embedded() else {}),
    result_expires=7 * 24 * 3600,
    task_default_queue="xbuild.amd64",
    worker_hijack_root_logger=False,
)


@worker_init.connect
def _publish_images(**_) -> None:
    """A worker publishes the images it builds to the shared store (image_store.py), so the next
    fresh worker pulls them; XBUILD_IMAGES_PUSH=0 turns that off. Before the pool forks: every
    worker process inherits it."""
    os.environ.setdefault("XBUILD_IMAGES_PUSH", "1")


@worker_init.connect
def _ride_out_outages(**_) -> None:
    """A worker mid-build has nobody to hand a store outage to: it waits it out, in its log."""
    from celery.utils.log import get_logger

    from xbuild.host.retry import retry_seconds
    from xbuild.store.patience import ride_out_outages
    ride_out_outages(retry_seconds(), get_logger("xbuild.worker").warning)


def queue_for(target_name: str) -> str:
    """Builds are routed by the target's architecture: xbuild.armhf, xbuild.arm64, ..."""
    return f"xbuild.{all_targets()[target_name].debian_arch}"


@app.task(name="xbuild.build", ignore_result=True)
def build(tenant: str, job_id: str) -> str:
    from xbuild.service.execute import run_job
    return run_job(tenant, job_id)


_PUBLISHING = threading.Lock()


def declare_queues() -> None:
    """Every build queue's row in the embedded broker, made by one process before any other uses
    them. kombu's SQLAlchemy transport creates a queue's row on first use, and two processes doing
    that at once collide (UNIQUE constraint failed: kombu_queue.name): a starting worker dies of
    it, leaving `serve` without one. `serve` calls this before it starts its worker and the API."""
    from kombu import Exchange, Queue
    names = {app.conf.task_default_queue} | {queue_for(t) for t in all_targets()}
    with app.connection_for_write() as connection:
        for name in sorted(names):
            Queue(name, Exchange(name), routing_key=name)(connection.default_channel).declare()


def submit(job, attempts: int = 3) -> None:
    """Queue a job; safe from any thread (the API serves on 8).

    kombu's connections and channels are not thread-safe: one publish at a time per process, each
    on a connection of its own. And on the embedded SQLite broker the first publishes to a fresh
    broker race with every other process doing the same (the worker declaring its queues, another
    server, `nightly run-now`): both create the tables and queue rows, one fails (IntegrityError,
    or a retry on the closed channel: AttributeError 'NoneType' object has no attribute 'client').
    A new connection then finds them made, so a failed publish is tried again; a duplicate message
    is harmless (run_job skips a job that is done or running)."""
    with _PUBLISHING:
        for attempt in range(1, attempts + 1):
            try:
                with app.connection_for_write() as connection:
                    build.apply_async(args=[job.tenant, job.id], queue=job.queue, connection=connection)
                return
            except Exception:  # noqa: BLE001 - whatever the transport raised; re-raised at the end
                if attempt == attempts:
                    raise
                time.sleep(0.2 * attempt)


# Which queues have a worker, asked at most every INSPECT_EVERY seconds: the API answers many
# status polls, and each question is a broadcast that waits INSPECT_TIMEOUT for the replies.
INSPECT_EVERY, INSPECT_TIMEOUT = 15.0, 2.0
_inspected: dict = {"at": float("-inf"), "served": None}
_INSPECTING = threading.Lock()


def unserved_after() -> float:
    """How long a job waits in its queue before a client is told nobody serves it."""
    from xbuild import environment
    return environment.number("XBUILD_UNSERVED_AFTER")


def served_queues() -> set[str] | None:
    """The queues some live worker consumes; None when the broker cannot tell: the embedded
    SQLite transport has no broadcast to ask the workers with (and there serve runs one itself)."""
    with _INSPECTING:
        if time.monotonic() - _inspected["at"] > INSPECT_EVERY:
            _inspected.update(served=_ask_workers(), at=time.monotonic())
        return _inspected["served"]


def _ask_workers() -> set[str] | None:
    try:
        with app.connection_for_write() as connection:
            if "fanout" not in connection.transport.implements.exchange_type:
                return None
            replies = app.control.inspect(timeout=INSPECT_TIMEOUT, connection=connection).active_queues()
    except Exception:  # noqa: BLE001 - the broker restarting: no answer is "cannot tell"
        return None
    return {q["name"] for queues in (replies or {}).values() for q in queues or []}


def waiting_notice(job) -> str | None:
    """For a job queued for a while (XBUILD_UNSERVED_AFTER, 60 s) in a queue no worker serves:
    what to tell whoever waits for it. It keeps waiting: a worker may come."""
    from xbuild.service.jobs import age
    if job.state != "queued" or age(job.started or job.created) < unserved_after():
        return None
    served = served_queues()
    if served is None or job.queue in served:
        return None
    return (f"no worker serves queue {job.queue}: the build waits until one does; start one with "
            f"`xbuild worker --queues {job.queue.removeprefix('xbuild.')}`")

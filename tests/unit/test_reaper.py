"""The reaper on a real file:// store with real leases (flocks, as on the embedded broker). What
it sends, and the containers it would remove, are collected instead: the queue and the engine are
not what these tests are about (tests/integration/test_service.py has them all)."""

from __future__ import annotations

import datetime

import pytest

from xbuild.request import BuildRequest
from xbuild.service.jobs import Job, Jobs, now
from xbuild.service.leases import lease
from xbuild.service.reaper import Reaper
from xbuild.store import open_store


@pytest.fixture
def jobs(tmp_path, monkeypatch):
    monkeypatch.setenv("XBUILD_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("XBUILD_BROKER_URL", raising=False)
    return Jobs(open_store((tmp_path / "store").as_uri(), create=True))


@pytest.fixture
def reaper(jobs):
    sent: list[str] = []
    removed: list[str] = []
    r = Reaper(jobs, submit=lambda job: sent.append(job.id), remove_containers=removed.append)
    r.sent, r.removed = sent, removed
    return r


def _ago(minutes: float) -> str:
    then = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=minutes)
    return then.isoformat(timespec="seconds")


def _job(jobs, id, **kw) -> Job:
    job = Job(id=id, tenant="t", request=BuildRequest("rpi3"), **kw)
    jobs.save(job)
    return job


def test_a_dead_workers_job_is_requeued_then_failed(jobs, reaper):
    _job(jobs, "dead", state="running", attempts=1, started=now())
    assert reaper.sweep() == [("dead", "requeued")]
    job = jobs.get("t", "dead")
    assert job.state == "queued" and job.attempts == 1 and reaper.sent == ["dead"]
    assert reaper.removed == ["dead"]  # its build container, if any, with it
    job.state, job.attempts = "running", 3
    jobs.save(job)
    assert reaper.sweep() == [("dead", "failed")]
    job = jobs.get("t", "dead")
    assert job.state == "failed" and job.exit_code == 17 and "died 3 times" in job.error
    assert jobs.live() == [] and reaper.sent == ["dead"]


def test_a_job_whose_lease_is_held_is_left_alone(jobs, reaper):
    _job(jobs, "alive", state="running", attempts=1, started=now())
    _job(jobs, "taken", created=_ago(30))  # queued long ago, but a worker just took its lease
    before = {k: jobs.store.read(k) for k in jobs.store.list("jobs")}
    worker_a, worker_b = lease("alive"), lease("taken")
    assert worker_a.acquire() and worker_b.acquire()
    try:
        assert reaper.sweep() == []
    finally:
        worker_a.release()
        worker_b.release()
    assert {k: jobs.store.read(k) for k in jobs.store.list("jobs")} == before  # not one byte written
    assert reaper.sent == []


def test_the_reaper_releases_the_lease_before_sending(jobs):
    _job(jobs, "old", created=_ago(30))
    free_when_sent = []
    r = Reaper(jobs, submit=lambda job: free_when_sent.append(not lease(job.id).held_elsewhere()),
               remove_containers=lambda job_id: None)
    assert r.sweep() == [("old", "resent")] and free_when_sent == [True]
    assert jobs.get("t", "old").started is not None


def test_a_sweep_reads_only_live_jobs(jobs, reaper):
    """Its cost follows the jobs alive now: 50 finished records it cannot even parse do not matter."""
    for n in range(50):
        done = _job(jobs, f"done{n}", state="succeeded", finished=now())
        jobs.store.write(f"{done.prefix}/job.json", b"{not json")  # never read again
    _job(jobs, "dead", state="running", attempts=1, started=now())
    assert reaper.sweep() == [("dead", "requeued")]


def test_stale_and_orphan_markers_are_dropped(jobs, reaper):
    finished = _job(jobs, "fin", state="running")
    finished.state = "succeeded"  # as if the worker died between writing the record and the index
    jobs.store.write(f"{finished.prefix}/job.json", jobs.store.read(f"{finished.prefix}/job.json")
                     .replace(b'"running"', b'"succeeded"'))
    jobs.store.write("jobs/live/t/orphan", _ago(120).encode())  # an API died before the record
    jobs.store.write("jobs/live/t/fresh", now().encode())       # an API writing the record now
    assert reaper.sweep() == []
    assert jobs.live() == [("t", "fresh")]


def test_old_jobs_expire_during_a_sweep(jobs, reaper, monkeypatch):
    monkeypatch.setenv("XBUILD_JOB_RETENTION_DAYS", "7")
    old = _job(jobs, "old", state="failed", finished=_ago(8 * 24 * 60))
    jobs.append_log(old, 0, b"log\n")
    _job(jobs, "recent", state="failed", finished=_ago(60))
    assert reaper.sweep() == [("old", "expired")]
    assert jobs.store.list("jobs/t/old") == [] and jobs.get("t", "recent") is not None
    assert reaper.sweep() == []  # retention runs once an hour, not every sweep


def test_an_outage_restarts_the_grace_of_a_lease_seen_free(jobs, reaper, monkeypatch):
    """A broker restart frees every lease: the reaper may see one free just before the broker goes
    away. Counting the outage into the grace requeued a build whose worker was alive and about to
    take its lease again (it then ran twice)."""
    from xbuild.service import leases
    from xbuild.service import reaper as reaper_module
    clock = [1000.0]
    monkeypatch.setattr(reaper_module.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(leases.FileLease, "grace", staticmethod(lambda: 6.0))
    _job(jobs, "busy", state="running", attempts=1, started=now())
    assert reaper.sweep() == []  # seen free: the grace starts
    live = jobs.live
    monkeypatch.setattr(jobs, "live", lambda: (_ for _ in ()).throw(ConnectionRefusedError(111, "refused")))
    with pytest.raises(ConnectionRefusedError):
        reaper.sweep()  # the broker is restarting
    clock[0] += 10  # back after 10 s
    monkeypatch.setattr(jobs, "live", live)
    assert reaper.sweep() == []  # a new grace: the worker may take its lease again
    clock[0] += 7
    assert reaper.sweep() == [("busy", "requeued")]  # free for the whole grace since: dead

"""Job records, their indexes and their append-only logs, on a real file:// store."""

from __future__ import annotations

import datetime
import threading

import pytest

from xbuild.request import BuildRequest
from xbuild.service import execute
from xbuild.service.jobs import Job, Jobs, now
from xbuild.store import open_store


@pytest.fixture
def jobs(tmp_path, monkeypatch):
    monkeypatch.setenv("XBUILD_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("XBUILD_BROKER_URL", raising=False)
    return Jobs(open_store((tmp_path / "store").as_uri(), create=True))


def _days_ago(n: float) -> str:
    return (datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=n)).isoformat(timespec="seconds")


def test_the_live_index_holds_exactly_the_queued_and_running_jobs(jobs):
    a = Job(id="a1", tenant="t1", request=BuildRequest("rpi3"))
    b = Job(id="b2", tenant="t2", request=BuildRequest("rpi3"))
    jobs.save(a)
    jobs.save(b)
    assert sorted(jobs.live()) == [("t1", "a1"), ("t2", "b2")]
    a.state = "running"
    jobs.save(a)
    b.state, b.finished = "succeeded", now()
    jobs.save(b)
    assert jobs.live() == [("t1", "a1")]
    assert jobs.store.exists(f"jobs/done/{b.finished[:10]}/t2/b2")
    assert {j.id for j in jobs.all()} == {"a1", "b2"}
    assert [j.id for j in jobs.all("t2")] == ["b2"]  # the indexes are not jobs


def test_retention_forgets_old_jobs_but_never_artifacts(jobs):
    old = Job(id="old", tenant="t", request=BuildRequest("rpi3"), state="succeeded", finished=_days_ago(40))
    recent = Job(id="new", tenant="t", request=BuildRequest("rpi3"), state="failed", finished=_days_ago(1))
    live = Job(id="live", tenant="t", request=BuildRequest("rpi3"), created=_days_ago(50))
    for job in (old, recent, live):
        jobs.store.write(f"{job.prefix}/source.tar.gz", b"src")
        jobs.append_log(job, 0, b"line\n")
        jobs.save(job)
    jobs.store.write("hello/rpi3/abc/hello-rpi3.tar.gz", b"artifact")
    old.files = [{"name": "hello-rpi3.tar.gz", "object": "hello/rpi3/abc/hello-rpi3.tar.gz"}]
    jobs.save(old)
    assert jobs.expire(30) == ["old"]
    assert jobs.store.list("jobs/t/old") == [] and jobs.get("t", "old") is None
    assert jobs.store.read("hello/rpi3/abc/hello-rpi3.tar.gz") == b"artifact"
    assert jobs.log(recent) == b"line\n" and jobs.get("t", "live") is not None
    assert jobs.expire(30) == []  # its index entry went with it


def test_log_chunks_are_read_from_any_offset(jobs):
    job = Job(id="j", tenant="t", request=BuildRequest("rpi3"))
    jobs.append_log(job, 0, b"first\n")
    jobs.append_log(job, 6, b"second\n")
    jobs.append_log(job, 13, b"third\n")
    assert jobs.log(job) == b"first\nsecond\nthird\n"
    for offset in range(0, 20):
        assert jobs.log(job, offset) == b"first\nsecond\nthird\n"[offset:]
    assert jobs.log(job, 100) == b""


def test_the_job_log_is_append_only_and_capped_with_its_end_kept(jobs, monkeypatch):
    monkeypatch.setenv("XBUILD_MAX_LOG_MB", "0.05")  # 52 kB
    monkeypatch.setattr(execute, "LOG_CHUNK_BYTES", 4096)
    job = Job(id="j", tenant="t", request=BuildRequest("rpi3"))
    log = execute._JobLog(jobs, job)
    chunks_seen: dict[str, bytes] = {}
    for n in range(1, 100_001):
        log.line(f"line {n}")
        if n % 5000 == 0:  # a chunk once written is never rewritten
            for key in jobs.store.list(f"{job.prefix}/build.log.d"):
                data = jobs.store.read(key)
                assert chunks_seen.setdefault(key, data) == data
            assert log.pending_bytes <= 4096 + 64 and len(log.tail) <= execute.LOG_TAIL_LINES
    log.close()
    assert not log._ticker.is_alive()
    text = jobs.log(job).decode()
    lines = text.splitlines()
    assert lines[0] == "line 1" and lines[-1] == "line 100000"  # the failing line is there
    assert len(text) < 60_000
    (notice,) = [ln for ln in lines if "log capped at" in ln]
    assert "XBUILD_MAX_LOG_MB" in notice and f"the last {execute.LOG_TAIL_LINES} follow" in notice
    assert lines.index(notice) == len(lines) - execute.LOG_TAIL_LINES - 1
    assert len(set(lines)) == len(lines)  # nothing twice


def test_a_second_attempt_appends_after_the_first(jobs):
    job = Job(id="r", tenant="t", request=BuildRequest("rpi3"))
    first = execute._JobLog(jobs, job)
    first.line("attempt one")
    first.close()
    second = execute._JobLog(jobs, job)
    second.line("attempt two")
    second.close()
    assert jobs.log(job) == b"attempt one\nattempt two\n"


def test_the_ticker_publishes_a_quiet_builds_lines(jobs, monkeypatch):
    monkeypatch.setattr(execute, "LOG_FLUSH_SECONDS", 0.1)
    job = Job(id="q", tenant="t", request=BuildRequest("rpi3"))
    log = execute._JobLog(jobs, job)
    log.line("compiling")
    done = threading.Event()
    for _ in range(50):
        if jobs.log(job) == b"compiling\n":
            done.set()
            break
        threading.Event().wait(0.1)
    log.close()
    assert done.is_set()


def test_a_submits_idempotency_key_names_its_job_per_tenant_until_retention_forgets_it(jobs):
    job = Job(id="20260101-000000-0000abcd", tenant="t", request=BuildRequest("rpi3"), state="succeeded",
              finished=_days_ago(40))
    jobs.save(job)
    jobs.remember_key("t", "the-key/../x", job.id)  # the client's string: hashed, never a path
    assert jobs.by_key("t", "the-key/../x").id == job.id
    assert jobs.by_key("other", "the-key/../x") is None and jobs.by_key("t", "another") is None
    assert jobs.store.list("jobs/t/keys") and jobs.expire(30) == [job.id]
    assert jobs.store.list("jobs/t/keys") == [] and jobs.by_key("t", "the-key/../x") is None

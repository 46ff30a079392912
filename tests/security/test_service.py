"""Hostile and careless inputs against the service's workers, job records and logs (issue 8)."""

from __future__ import annotations

import threading

import pytest
import requests

from tests.integration.test_service import TOKEN_A, _auth, _post, _wait
from tests.services import embedded_server

pytestmark = [pytest.mark.security, pytest.mark.integration]


@pytest.fixture(scope="module")
def server(engine, tmp_path_factory):
    with embedded_server(tmp_path_factory.mktemp("svc")) as srv:
        yield srv


def test_a_long_failing_build_keeps_its_whole_log_once(server):
    """The failing line is in the log, every line is there once (the tail is not appended again),
    and the hint is the log's URL, not a path on the server. (Lines the build container's log
    pump loses before they reach the service are the sandbox's: tests/security/test_sandbox.py.)"""
    steps = '[build]\nsteps = ["seq 1 300000", "echo the-failing-line; exit 3"]\n'
    job = _post(server, {"xbuild.toml": steps}).json()
    done = _wait(server, job["id"], timeout=900)
    assert done["state"] == "failed" and done["exit_code"] == 7
    assert done["hint"] == f"full log: GET /v1/builds/{job['id']}/log"
    assert server.env["XBUILD_STATE_DIR"] not in str(done)
    log = requests.get(f"{server.url}/v1/builds/{job['id']}/log", headers=_auth()).text
    lines = log.splitlines()
    numbers = [ln for ln in lines if ln.isdigit()]
    assert numbers == [str(n) for n in range(1, 300_001)]  # complete, in order, nothing twice
    assert lines.count("the-failing-line") == 1
    tail = requests.get(f"{server.url}/v1/builds/{job['id']}/log", headers=_auth(),
                        params={"offset": len(log.encode()) - 100})
    assert tail.text == log[-100:] and int(tail.headers["X-Next-Offset"]) == len(log.encode())


def test_an_internal_error_ends_the_job_with_one_line(server, monkeypatch):
    """A worker that chokes on a job (as it did on project "..", which an older API accepted, before
    names became paths only through paths.component) used to leave the job "running" with its log
    thread ticking, then fail three times as "worker died". The choke is injected now."""
    from xbuild.request import BuildRequest
    from xbuild.service import execute
    from xbuild.service.execute import run_job
    from xbuild.service.jobs import Job, Jobs
    from xbuild.service.leases import lease
    from xbuild.store import open_store
    for k in ("XBUILD_STATE_DIR", "XBUILD_STORE"):
        monkeypatch.setenv(k, server.env[k])
    monkeypatch.delenv("XBUILD_BROKER_URL", raising=False)
    jobs = Jobs(open_store(server.env["XBUILD_STORE"]))
    job = Job(id="20260101-000000-bad0b0d0", tenant=_tenant(), request=BuildRequest("rpi3"))
    jobs.save(job)

    def choke(jobs, job, into):
        raise FileExistsError(17, "File exists", str(into))
    monkeypatch.setattr(execute, "_source", choke)
    threads = set(threading.enumerate())
    assert run_job(job.tenant, job.id, jobs) == "failed"
    done = requests.get(f"{server.url}/v1/builds/{job.id}", headers=_auth()).json()
    assert done["state"] == "failed" and done["exit_code"] == 1 and done["finished"]
    assert done["error"].startswith("internal error in the build service (FileExistsError")
    log = requests.get(f"{server.url}/v1/builds/{job.id}/log", headers=_auth()).text
    assert "Traceback" not in log and log.count("internal error") == 1 and log.endswith("\n")
    assert set(threading.enumerate()) <= threads  # the log's ticker stopped
    held = lease(job.id)
    assert held.acquire()  # released
    held.release()
    assert job.id not in [i for _, i in jobs.live()]


def _tenant() -> str:
    from xbuild.service.jobs import tenant_of
    return tenant_of(TOKEN_A)

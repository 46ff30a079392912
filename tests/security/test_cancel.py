"""A cancel at any moment stops a service job (issue 16, item 9). One that came while the source
was copied into the build container was lost: the kill found no running container, and every
step then ran."""

from __future__ import annotations

import time

import pytest
import requests

from tests.integration.test_service import _auth, _env, _wait
from tests.security.test_upload_limits import _many
from tests.services import Server

pytestmark = [pytest.mark.security, pytest.mark.integration]

STEP = "echo the-step-ran"


def _containers_of(job_id: str) -> list:
    from xbuild.containers.engine import client
    return client().containers.list(all=True, filters={"label": f"org.xbuild.job={job_id}"})


def test_a_cancel_during_the_copy_in_stops_the_job_before_its_steps(engine, tmp_path):
    """The job's container exists and has not started: its source is being copied in (40,000
    files take seconds). Cancelled then, the job ends cancelled, its step never started, and its
    container is gone."""
    server = Server(_env(tmp_path), tmp_path)
    try:
        upload = _many(tmp_path / "s.tar.gz", 40_000, steps=[STEP])
        with upload.open("rb") as f:
            job = requests.post(f"{server.url}/v1/builds", headers=_auth(), files={"source": f},
                                data={"target": "rpi3", "project": "slow-copy"}).json()
        deadline = time.monotonic() + 600
        while not [c for c in _containers_of(job["id"]) if c.status == "created"]:
            assert time.monotonic() < deadline, "the job's container never existed unstarted"
            time.sleep(0.2)
        resp = requests.post(f"{server.url}/v1/builds/{job['id']}/cancel", headers=_auth())
        assert resp.status_code == 202, resp.text
        done = _wait(server, job["id"], timeout=600)
        log = requests.get(f"{server.url}/v1/builds/{job['id']}/log", headers=_auth()).text
        assert "step 1/1" not in log and "the-step-ran" not in log, log  # build.sh never started
        assert done["state"] == "cancelled", (done, log[-2000:])
        assert done["exit_code"] == 52 and done["error"] == "the build was cancelled"
        assert _containers_of(job["id"]) == []
    finally:
        server.stop()

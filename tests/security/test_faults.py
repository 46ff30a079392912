"""A restart is not a failure (issue 16, items 13 and 14): a store or broker outage is a 503 with
Retry-After, never a 500; `xbuild submit --wait` and `xbuild artifacts get` ride out a restart of
the API or the store; a submit retried after a lost answer makes one job. Real SeaweedFS, Redis,
`xbuild serve`, `xbuild worker` and the real client."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

from tests.helpers import EXAMPLES, hello_files, tgz
from tests.integration.test_service import TOKEN_A, _auth, _env
from tests.services import Redis, Server, xbuild_proc

pytestmark = [pytest.mark.security, pytest.mark.integration]


def _client(*args: str, env: dict) -> subprocess.Popen:
    """The real CLI in the background, as a CI job runs it."""
    return subprocess.Popen([sys.executable, "-m", "xbuild", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _queued(server: Server, headers: dict | None = None) -> requests.Response:
    return requests.post(f"{server.url}/v1/builds", headers={**_auth(), **(headers or {})}, timeout=120,
                         files={"source": ("s.tar.gz", tgz(hello_files(0)))}, data={"target": "rpi3"})


@pytest.fixture
def s3_farm(tmp_path):
    """serve on Redis with its jobs in a SeaweedFS of the test's own (it is stopped here), and no
    worker: a build stays queued."""
    from tests.s3server import SeaweedFS
    s3 = SeaweedFS(tmp_path / "s3")
    s3.start()
    redis = Redis(tmp_path / "redis")
    env = _env(tmp_path, XBUILD_BROKER_URL=redis.url, **s3.env(f"s3://xbuild-faults-{uuid.uuid4().hex[:8]}/farm"))
    server = Server(env, tmp_path)
    server.env, server.s3, server.redis = env, s3, redis
    yield server
    server.stop()
    redis.kill()
    s3.stop()


def test_a_store_outage_is_a_503_with_retry_after(s3_farm):
    """It was a 500 (`StoreError: InternalError while reading jobs/.../job.json`, or "cannot
    reach"), which says "a bug", and the soak's clients died on it."""
    job = _queued(s3_farm).json()
    s3_farm.s3.stop()
    for path in (f"/v1/builds/{job['id']}", f"/v1/builds/{job['id']}/log", "/v1/builds"):
        r = requests.get(f"{s3_farm.url}{path}", headers=_auth(), timeout=120)
        assert r.status_code == 503, (path, r.status_code, r.text)
        assert int(r.headers["Retry-After"]) > 0
        assert "unavailable" in r.json()["error"] and "Traceback" not in r.text


def test_a_broker_outage_is_a_503_with_retry_after(s3_farm):
    s3_farm.redis.stop()
    r = _queued(s3_farm)
    assert r.status_code == 503, r.text
    assert int(r.headers["Retry-After"]) > 0 and "unavailable" in r.json()["error"]


def test_a_submit_sent_again_with_its_idempotency_key_makes_one_job(s3_farm):
    """A client retrying a submit whose answer it lost (a timeout, a restart) must not make a
    second job; the first try's job is the answer, queued again if the first try could not queue
    it (the broker down: a 503 after the job was saved)."""
    key = {"Idempotency-Key": str(uuid.uuid4())}
    s3_farm.redis.stop()
    assert _queued(s3_farm, key).status_code == 503  # saved, but not queued
    s3_farm.redis.restart()  # stopped already: started again
    first, again = _queued(s3_farm, key), _queued(s3_farm, key)
    assert first.status_code in (200, 201) and again.status_code == 200
    assert first.json()["id"] == again.json()["id"]
    listing = requests.get(f"{s3_farm.url}/v1/builds", headers=_auth(), timeout=60).json()["builds"]
    assert [b["id"] for b in listing] == [first.json()["id"]]
    other = _queued(s3_farm, {"Idempotency-Key": str(uuid.uuid4())})  # another submit: another job
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]
    assert _queued(s3_farm, {"Idempotency-Key": "x y"}).status_code == 400


@pytest.fixture
def redis_farm(engine, tmp_path):
    """serve and a worker on Redis, a file store: the API can be killed without the worker."""
    redis = Redis(tmp_path / "redis")
    env = _env(tmp_path, XBUILD_BROKER_URL=redis.url)
    server = Server(env, tmp_path)
    worker = xbuild_proc(["worker", "--name", "faults@test"], env, tmp_path / "worker.log")
    server.env = env
    yield server
    worker.kill()
    server.stop()
    redis.kill()


def test_submit_wait_rides_out_an_api_restart(redis_farm, tmp_path):
    """The API killed under a waiting CI job and started again 5 s later: the job's build goes on,
    and the client, which exited 18 ("check --server") at the first refused connection, waits,
    says so, and ends with the build's result."""
    project = shutil.copytree(EXAMPLES / "hello-make", tmp_path / "hello")
    (project / "hello.c").write_text((project / "hello.c").read_text() + f"\n/* {uuid.uuid4()} */\n")
    env = {**redis_farm.env, "XBUILD_TOKEN": TOKEN_A, "XBUILD_RETRY_SECONDS": "300"}
    proc = _client("submit", "--server", redis_farm.url, "--target", "rpi3", str(project), "--json", env=env)
    assert proc.stderr is not None
    first = proc.stderr.readline()  # "submitted build <id> ...": the client now waits
    assert "submitted build" in first, first
    port = redis_farm.port
    redis_farm.stop(signal.SIGKILL)
    time.sleep(5)
    again = Server(redis_farm.env, tmp_path, port=port)
    try:
        out, err = proc.communicate(timeout=900)
    finally:
        again.stop()
    assert proc.returncode == 0, first + err
    assert "retrying: GET /v1/builds/" in err and "cannot reach" in err
    assert json.loads(out)["state"] == "succeeded"


def test_artifacts_get_rides_out_a_store_restart(tmp_path):
    """`xbuild artifacts get` while the store restarts: it exited 15 at the first refused
    connection; now it retries, says so, and fetches the build intact."""
    from tests.s3server import SeaweedFS
    from xbuild.store import open_store, publish
    s3 = SeaweedFS(tmp_path / "s3")
    s3.start()
    try:
        env = {**_env(tmp_path), **s3.env(""), "XBUILD_RETRY_SECONDS": "300"}
        url = f"s3://xbuild-get-{uuid.uuid4().hex[:8]}/proj"
        out = tmp_path / "out"
        out.mkdir()
        (out / "hello").write_bytes(b"\x7fELF not really")
        with pytest.MonkeyPatch.context() as mp:
            for k, v in s3.env(url).items():
                mp.setenv(k, v)
            publish.publish(open_store(url, create=True), "", out, {"build_id": "b-1", "target": "rpi3"})
        s3.stop()
        proc = _client("artifacts", "get", f"{url}/b-1", "-o", str(tmp_path / "got"), env=env)
        time.sleep(4)
        s3.start()
        _, err = proc.communicate(timeout=600)
    finally:
        s3.stop()
    assert proc.returncode == 0, err
    assert "retrying: the store" in err
    assert Path(tmp_path / "got" / "hello").read_bytes() == b"\x7fELF not really"

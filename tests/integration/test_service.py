"""The build service with real processes: `xbuild serve`, Celery workers, the embedded SQLite
broker, a real Redis and a real RabbitMQ, the real engine. The CI client is the real `xbuild submit`."""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.helpers import EXAMPLES, hello_files, make_project, tgz, xbuild
from tests.openapi_check import mismatches
from tests.services import (
    TOKEN_A,
    TOKEN_B,
    GitDaemon,
    RabbitMQ,
    Redis,
    Server,
    alive,
    descendants,
    embedded_server,
    xbuild_proc,
)
from tests.services import service_env as _env

pytestmark = pytest.mark.integration


def _auth(token=TOKEN_A) -> dict:
    return {"Authorization": f"Bearer {token}"}


def _post(server, files, target="rpi3", token=TOKEN_A):
    return requests.post(f"{server.url}/v1/builds", headers=_auth(token),
                         files={"source": ("s.tar.gz", tgz(files))}, data={"target": target, "project": "hello"})


def _wait(server, job_id, states=("succeeded", "failed", "timed_out", "cancelled"), timeout=300, token=TOKEN_A):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = requests.get(f"{server.url}/v1/builds/{job_id}", headers=_auth(token)).json()
        if job["state"] in states:
            return job
        time.sleep(0.5)
    raise AssertionError(f"build {job_id} still {job['state']} after {timeout}s")


@pytest.fixture(scope="module")
def embedded(engine, tmp_path_factory):
    """`xbuild serve` on the embedded defaults: SQLite broker, its own worker, a file store."""
    with embedded_server(tmp_path_factory.mktemp("embedded")) as server:
        yield server


def test_submit_waits_streams_and_downloads(embedded, builds, tmp_path):
    from xbuild.host.archive import sha256_file
    project = shutil.copytree(EXAMPLES / "hello-make", tmp_path / "hello-make")
    proc = xbuild("submit", "--server", embedded.url, "--target", "rpi3", project, "--json",
                  env={"XBUILD_TOKEN": TOKEN_A})
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["state"] == "succeeded" and result["queue"] == "xbuild.armhf"
    assert "ABI gate" in proc.stderr  # the log was streamed
    archive = project / "xbuild-out/rpi3/hello-make-rpi3.tar.gz"
    assert archive.is_file()
    # One JSON shape for CI: a local build's fields, about the downloaded files, plus the service's.
    local = builds.get("hello-make", "rpi3")
    assert set(local) <= set(result), set(local) - set(result)
    assert {k: result[k] for k in ("status", "target", "os", "mode", "recipe")} == \
        {k: local[k] for k in ("status", "target", "os", "mode", "recipe")}
    assert [Path(a["path"]).name for a in result["artifacts"]] == [Path(a["path"]).name for a in local["artifacts"]]
    assert [(a["path"], a["sha256"], a["size"]) for a in result["artifacts"]] == \
        [(str(archive), sha256_file(archive), archive.stat().st_size)]
    assert Path(result["manifest"]).is_file() and "::xbuild collect" in Path(result["log"]).read_text()
    assert result["cache"] in ("hit", "miss") and result["build_id"].startswith("rpi3-")
    run = xbuild("run", "--target", "rpi3", archive, "--", "bin/hello")
    assert "Hello from xbuild" in run.stdout
    # The service's build says what it is made of, and which farm built it (issue 21).
    assert xbuild("attest", "verify", archive.parent).returncode == 0
    statement = json.loads((archive.parent / "provenance.intoto.json").read_text())
    assert "/builder/farm/" in statement["predicate"]["runDetails"]["builder"]["id"]


def test_submit_exits_with_the_builds_exit_code(embedded, tmp_path):
    project = make_project(tmp_path / "broken", {"Makefile": "all:\n\tgcc -o a a.c\n", "a.c": "nope\n"})
    proc = xbuild("submit", "--server", embedded.url, "--target", "rpi3", project,
                  env={"XBUILD_TOKEN": TOKEN_A})
    assert proc.returncode == 7 and "error:" in proc.stderr


def test_auth_and_tenants(embedded):
    assert requests.get(f"{embedded.url}/v1/builds").status_code == 401
    assert requests.get(f"{embedded.url}/v1/builds", headers=_auth("wrong")).status_code == 401
    job = _post(embedded, hello_files(0)).json()
    assert requests.get(f"{embedded.url}/v1/builds/{job['id']}", headers=_auth(TOKEN_B)).status_code == 404
    theirs = requests.get(f"{embedded.url}/v1/builds", headers=_auth(TOKEN_B)).json()["builds"]
    assert job["id"] not in [b["id"] for b in theirs]
    done = _wait(embedded, job["id"])
    assert done["state"] == "succeeded"
    # What the server answers, as it starts a build and as its worker leaves it, fits the
    # document it serves: every field described, none missing.
    spec = requests.get(f"{embedded.url}/openapi.json").json()
    for answer in (job, done):
        assert mismatches(answer, spec["components"]["schemas"]["Build"], spec) == []
    assert done["exit_code"] == 0 and done["queue"] == "xbuild.armhf"
    bad_token = xbuild("submit", "--server", embedded.url, "--target", "rpi3", EXAMPLES / "hello-make",
                       env={"XBUILD_TOKEN": "nope"})
    assert bad_token.returncode == 19 and "Traceback" not in bad_token.stderr


def test_uploads_are_checked(embedded):
    evil = requests.post(f"{embedded.url}/v1/builds", headers=_auth(),
                         files={"source": ("s.tar.gz", tgz({"Makefile": "all:\n"}, evil="../../etc/x"))},
                         data={"target": "rpi3"})
    assert evil.status_code == 422 and "unsafe" in evil.json()["error"]
    unknown = _post(embedded, hello_files(0), target="rpi9")
    assert unknown.status_code == 422 and "rpi" in unknown.json()["hint"]
    assert requests.post(f"{embedded.url}/v1/builds", headers=_auth(), data={"target": "rpi3"}).status_code == 400
    assert requests.get(f"{embedded.url}/openapi.json").json()["openapi"].startswith("3.")


def test_a_build_for_an_os_release(embedded, tmp_path):
    """--os through the service: the worker builds for that release (its OpenSSL's soname), the
    job names it, and the download lands beside, not over, the default release's."""
    project = shutil.copytree(EXAMPLES / "openssl-version", tmp_path / "ssl")
    proc = xbuild("submit", "--server", embedded.url, "--target", "rpi3", "--os", "bullseye", project,
                  "--json", env={"XBUILD_TOKEN": TOKEN_A})
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["state"] == "succeeded" and result["os"] == "bullseye"
    assert "on bullseye" in proc.stderr  # "submitted build ... (rpi3 on bullseye, queue ...)"
    out = project / "xbuild-out/rpi3-bullseye"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["target"]["os"] == "bullseye" and manifest["options"]["os"] == "bullseye"
    (elf,) = [f["elf"] for f in manifest["files"] if f.get("path") == "bin/sslversion"]
    assert "libssl.so.1.1" in elf["needed"]
    listed = requests.get(f"{embedded.url}/v1/builds", headers=_auth()).json()["builds"]
    assert [b["os"] for b in listed if b["id"] == result["id"]] == ["bullseye"]
    # Without --os: xbuild.toml's release, else the board's default; the job records which.
    (project / "xbuild.toml").write_text('[build]\nos = "bullseye"\npackages = ["libssl-dev"]\n')
    job = requests.post(f"{embedded.url}/v1/builds", headers=_auth(), files={"source": (
        "s.tar.gz", tgz({p.name: p.read_text() for p in project.iterdir() if p.is_file()}))},
        data={"target": "rpi3", "project": "ssl"}).json()
    assert job["os"] is None
    assert _wait(embedded, job["id"])["os"] == "bullseye"


def test_an_unknown_os_release_is_refused_with_the_boards_releases(embedded):
    from xbuild.board import targets
    rpi3 = targets.get("rpi3")
    for body in ({"target": "rpi3", "os": "buster"}, {"target": "rpi3", "os": 31}):
        resp = requests.post(f"{embedded.url}/v1/builds", headers=_auth(),
                             json={**body, "git_url": "https://example.org/x.git"})
        assert resp.status_code == 422, resp.text
    resp = requests.post(f"{embedded.url}/v1/builds", headers=_auth(),
                         files={"source": ("s.tar.gz", tgz(hello_files(0)))}, data={"target": "rpi3", "os": "buster"})
    error = resp.json()
    assert resp.status_code == 422 and error["exit_code"] == 36
    assert error["error"] == f"rpi3 does not run 'buster': its releases are {rpi3.releases_text()}"
    assert "xbuild targets" in error["hint"]
    proc = xbuild("submit", "--server", embedded.url, "--target", "rpi3", "--os", "buster",
                  EXAMPLES / "hello-make", env={"XBUILD_TOKEN": TOKEN_A})
    assert proc.returncode == 36 and "bullseye" in proc.stderr and "Traceback" not in proc.stderr
    assert "buster" not in json.dumps(requests.get(f"{embedded.url}/v1/builds", headers=_auth()).json())


def test_static_and_deb_through_the_service(embedded, tmp_path):
    """--static and --deb reach the worker: an rpi0 static build (zig + musl, no interpreter)
    with its .deb, downloaded beside (not over) the dynamic build's output."""
    project = shutil.copytree(EXAMPLES / "hello-make", tmp_path / "hello")
    proc = xbuild("submit", "--server", embedded.url, "--target", "rpi0", "--static", "--deb", project,
                  "--json", env={"XBUILD_TOKEN": TOKEN_A})
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["static"] is True and result["deb"] is True
    out = project / "xbuild-out/rpi0-static"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["options"]["static"] is True and manifest["toolchain"]["name"] == "zig"
    (elf,) = [f["elf"] for f in manifest["files"] if f.get("path") == "bin/hello"]
    assert elf["interpreter"] is None and elf["arm_arch"] in ("v6", "v6KZ")
    assert sorted(Path(a["path"]).suffix for a in result["artifacts"]) == [".deb", ".gz"]


def test_an_sdist_from_the_index_through_the_service_with_its_package(embedded, tmp_path):
    """submit pypi:...: the client fetches the sdist and uploads it; --package reaches the worker,
    which builds PyYAML's C extension against the board's libyaml into a wheel."""
    proc = xbuild("submit", "--server", embedded.url, "--target", "rpi3", "pypi:pyyaml==6.0.2",
                  "--package", "libyaml-dev", "--json", env={"XBUILD_TOKEN": TOKEN_A}, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert result["state"] == "succeeded" and result["packages"] == ["libyaml-dev"]
    (wheel,) = [Path(a["path"]) for a in result["artifacts"]]
    assert wheel.parent == tmp_path / "xbuild-out" / "pyyaml-6.0.2" / "rpi3"
    assert wheel.name == "pyyaml-6.0.2-cp313-cp313-linux_armv7l.whl"
    manifest = json.loads(Path(result["manifest"]).read_text())
    assert any(d.startswith("libyaml-0-2") for d in manifest["depends"])
    assert any(f.get("elf") for f in manifest["files"])  # the C extension was built


def test_static_for_a_board_without_it_is_refused_before_queueing(embedded):
    resp = requests.post(f"{embedded.url}/v1/builds", headers=_auth(),
                         files={"source": ("s.tar.gz", tgz(hello_files(0)))},
                         data={"target": "s390x", "static": "1"})
    assert resp.status_code == 422 and resp.json()["exit_code"] == 6, resp.text
    assert "--static" in resp.json()["error"] or "static" in resp.json()["error"]


def test_nightly_builds_two_releases_of_a_board_side_by_side(engine, tmp_path):
    """os = "..." in a [[project]]: built for that release; its latest is kept apart from the
    board's default release's, built the same night."""
    from xbuild.board import targets
    from xbuild.store import open_store
    default = targets.get("rpi3").default_os
    assert default != "bullseye"
    path = EXAMPLES / "openssl-version"
    config = tmp_path / "nightly.toml"
    config.write_text(f'[[project]]\nname = "ssl"\npath = "{path}"\ntargets = ["rpi3"]\nos = "bullseye"\n'
                      f'[[project]]\nname = "ssl"\npath = "{path}"\ntargets = ["rpi3"]\n')
    env = _env(tmp_path)
    server = Server(env, tmp_path)
    try:
        proc = xbuild("nightly", "run-now", "--config", config, "--json", env=env)
    finally:
        server.stop()
    assert proc.returncode == 0, proc.stderr
    builds = json.loads(proc.stdout)["builds"]
    assert sorted((b["target"], b["os"], b["state"]) for b in builds) == sorted(
        [("rpi3", "bullseye", "succeeded"), ("rpi3", default, "succeeded")])
    store = open_store(env["XBUILD_STORE"])
    latest = {k.rsplit("/", 1)[1]: json.loads(store.read(k))["build_id"] for k in store.list("nightly/latest/ssl")}
    assert latest == {"rpi3-bullseye": next(b["build_id"] for b in builds if b["os"] == "bullseye"),
                      "rpi3": next(b["build_id"] for b in builds if b["os"] == default)}
    assert latest["rpi3"] != latest["rpi3-bullseye"]


def test_nightly_refuses_a_release_the_board_does_not_run(tmp_path):
    config = tmp_path / "nightly.toml"
    config.write_text(f'[[project]]\nname = "ssl"\npath = "{EXAMPLES / "hello-make"}"\n'
                      'targets = ["arm64", "rpi3"]\nos = "buster"\n')
    env = _env(tmp_path)
    proc = xbuild("nightly", "run-now", "--config", config, env=env)
    # nightly.toml's schema: a broken config (6), naming its line and the board's releases
    assert proc.returncode == 6 and "rpi3" not in proc.stdout and "Traceback" not in proc.stderr
    assert "nightly.toml (line 5)" in proc.stderr and "which arm64 does not run" in proc.stderr
    assert not (tmp_path / "store" / "jobs").exists()  # nothing was queued


def test_a_build_no_worker_serves_says_so_and_keeps_waiting(engine, tmp_path):
    """`xbuild submit` and `nightly run-now` to a farm with no worker on the build's queue (only
    an amd64 one): after XBUILD_UNSERVED_AFTER each names the queue and how to start a worker,
    and keeps waiting; the worker started then builds both."""
    redis = Redis(tmp_path / "redis")
    env = _env(tmp_path, XBUILD_BROKER_URL=redis.url, XBUILD_UNSERVED_AFTER="2")
    config = tmp_path / "nightly.toml"
    config.write_text(f'[[project]]\nname = "hello"\npath = "{EXAMPLES / "hello-make"}"\ntargets = ["rpi3"]\n')
    notice = ("no worker serves queue xbuild.armhf: the build waits until one does; "
              "start one with `xbuild worker --queues armhf`")
    procs = []
    try:
        server = Server(env, tmp_path)
        procs.append(server)
        procs.append(xbuild_proc(["worker", "--queues", "amd64", "--name", "amd64@test"], env,
                                 tmp_path / "worker-amd64.log"))
        submit = xbuild_proc(["submit", "--server", server.url, "--target", "rpi3", str(EXAMPLES / "hello-make"),
                              "--out", str(tmp_path / "out"), "--json"], {**env, "XBUILD_TOKEN": TOKEN_A},
                             tmp_path / "submit.log")
        nightly = xbuild_proc(["nightly", "run-now", "--config", str(config)], env, tmp_path / "nightly.log")
        procs += [submit, nightly]

        def told() -> list[str]:
            return [n for n in ("submit", "nightly") if notice in (tmp_path / f"{n}.log").read_text()]
        deadline = time.monotonic() + 120
        while told() != ["submit", "nightly"] and time.monotonic() < deadline:
            time.sleep(0.5)
        assert told() == ["submit", "nightly"], (tmp_path / "submit.log").read_text()
        assert submit.p.poll() is None and nightly.p.poll() is None  # still waiting
        procs.append(xbuild_proc(["worker", "--queues", "armhf", "--name", "armhf@test"], env,
                                 tmp_path / "worker-armhf.log"))
        assert submit.p.wait(600) == 0 and nightly.p.wait(600) == 0
        out = (tmp_path / "submit.log").read_text()
        assert out.count(notice) == 1 and f"waiting: {notice}\n" in out  # said once
        assert (tmp_path / "out/hello-make-rpi3.tar.gz").is_file()
    finally:
        for proc in reversed(procs):  # a Proc's kill also closes its log
            if isinstance(proc, Server):
                proc.stop()
            else:
                proc.kill()
        redis.kill()


def _git(*args, cwd) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args], cwd=cwd,
                          check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def git_repo(tmp_path):
    """hello-make as a repository with two commits, served by a real `git daemon`."""
    work = shutil.copytree(EXAMPLES / "hello-make", tmp_path / "work")
    _git("init", "-q", "-b", "main", cwd=work)
    _git("add", ".", cwd=work)
    _git("commit", "-q", "-m", "first", cwd=work)
    first = _git("rev-parse", "HEAD", cwd=work)
    (work / "hello.c").write_text((work / "hello.c").read_text() + "\n/* second */\n")
    _git("commit", "-q", "-am", "second", cwd=work)
    second = _git("rev-parse", "HEAD", cwd=work)
    (tmp_path / "repos").mkdir()
    _git("clone", "-q", "--bare", str(work), str(tmp_path / "repos" / "hello.git"), cwd=tmp_path)
    daemon = GitDaemon(tmp_path / "repos")
    yield f"{daemon.url}/hello.git", first, second
    daemon.stop()


def test_git_builds_take_a_branch_or_a_commit(embedded, git_repo, tmp_path):
    url, first, second = git_repo
    env = {"XBUILD_TOKEN": TOKEN_A}

    def submit(*args):
        proc = xbuild("submit", "--server", embedded.url, "--target", "rpi3", "--git", url, *args,
                      "--out", tmp_path / "out", "--json", env=env)
        return proc, (json.loads(proc.stdout) if proc.stdout.strip() else {})

    proc, head = submit()                          # the default branch
    assert proc.returncode == 0, proc.stderr
    assert head["commit"] == second and head["project"] == "hello"
    run = xbuild("run", "--target", "rpi3", tmp_path / "out/hello-rpi3.tar.gz", "--", "bin/hello")
    assert "Hello from xbuild" in run.stdout
    proc, old = submit("--ref", first[:10])        # a short commit id: fetched with its history
    assert proc.returncode == 0 and old["commit"] == first, proc.stderr
    assert old["build_id"] != head["build_id"]     # other sources, another build
    proc, missing = submit("--ref", "no-such-branch")
    assert proc.returncode == 4 and missing["state"] == "failed"
    assert "no-such-branch" in missing["error"] and "Traceback" not in proc.stderr


def test_git_urls_and_refs_are_checked(embedded):
    for body in ({"git_url": "/etc", "target": "rpi3"}, {"git_url": "file:///srv/x.git", "target": "rpi3"},
                 {"git_url": "https://host/x.git", "ref": "--upload-pack=touch /tmp/x", "target": "rpi3"}):
        resp = requests.post(f"{embedded.url}/v1/builds", headers=_auth(), json=body)
        assert resp.status_code == 422, body


def test_upload_size_limit(engine, tmp_path):
    server = Server(_env(tmp_path, XBUILD_MAX_UPLOAD_MB="1"), tmp_path)
    try:
        big = tgz({"blob": os.urandom(2 << 20)})
        resp = requests.post(f"{server.url}/v1/builds", headers=_auth(), files={"source": ("s.tar.gz", big)},
                             data={"target": "rpi3"})
        assert resp.status_code == 413
    finally:
        server.stop()


def _containers_of(job_ids: list[str]) -> list:
    """Build containers left by these jobs (the engine is shared: other jobs are not ours)."""
    from xbuild.containers.engine import client
    return [c for i in job_ids
            for c in client().containers.list(all=True, filters={"label": f"org.xbuild.job={i}"})]


def test_cancel_and_time_limit(embedded):
    hang = _post(embedded, {"xbuild.toml": '[build]\nsteps = ["sleep 600"]\n'}).json()
    _wait(embedded, hang["id"], states=("running",))
    time.sleep(3)
    # its farm's label: what the farm's sweeps of expired containers look for (and nothing else)
    from xbuild.service.execute import FARM_LABEL
    farm = hashlib.sha256(embedded.env["XBUILD_STORE"].encode()).hexdigest()[:16]  # execute.farm()
    deadline = time.monotonic() + 120
    while not (boxes := _containers_of([hang["id"]])) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert [c.labels.get(FARM_LABEL) for c in boxes] == [farm]
    assert requests.post(f"{embedded.url}/v1/builds/{hang['id']}/cancel", headers=_auth()).status_code == 202
    assert _wait(embedded, hang["id"], timeout=60)["state"] == "cancelled"
    slow = _post(embedded, {"xbuild.toml": '[build]\nsteps = ["sleep 600"]\ntimeout = 3\n'}).json()
    done = _wait(embedded, slow["id"], timeout=120)
    assert done["state"] == "timed_out" and done["exit_code"] == 13
    assert _containers_of([hang["id"], slow["id"]]) == []


@pytest.fixture(params=["redis", "rabbitmq"])
def farm(request, engine, tmp_path):
    """A broker (Redis or RabbitMQ), `xbuild serve` (no worker of its own there), and workers on
    demand."""
    broker = (Redis if request.param == "redis" else RabbitMQ)(tmp_path / request.param)
    env = _env(tmp_path, XBUILD_BROKER_URL=broker.url)
    try:
        server = Server(env, tmp_path)
    except BaseException:
        broker.kill()
        raise
    workers = []

    def add_worker():
        w = xbuild_proc(["worker", "--name", f"w{len(workers)}@test"], env, tmp_path / f"worker{len(workers)}.log")
        workers.append(w)
        return w

    yield type("Farm", (), {"broker": broker, "server": server, "env": env, "workers": workers,
                            "add_worker": staticmethod(add_worker), "tmp": tmp_path})
    for w in workers:
        w.kill()
    server.stop()
    broker.kill()


def _builds_of(token: str, project: str) -> str:
    """Where the farm's build cache keeps a tenant's builds of a project (execute.cache_scope)."""
    from xbuild.service.jobs import tenant_of
    return f"builds/{tenant_of(token)}/{project}"


def test_twenty_builds_on_two_workers(farm):
    from xbuild.store import open_store
    farm.add_worker()
    farm.add_worker()
    ids: list[str] = []
    lock = threading.Lock()

    def submit(n):
        job = _post(farm.server, hello_files(n)).json()
        with lock:
            ids.append(job["id"])

    threads = [threading.Thread(target=submit, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    jobs = [_wait(farm.server, i, timeout=900) for i in ids]
    failed = [(j["state"], j.get("error"), j.get("hint")) for j in jobs if j["state"] != "succeeded"]
    assert [j["state"] for j in jobs] == ["succeeded"] * 20, failed
    assert all(j["attempts"] == 1 for j in jobs)
    store = open_store(farm.env["XBUILD_STORE"])
    records = [k for k in store.list(_builds_of(TOKEN_A, "hello")) if k.endswith("/manifest.json")]
    assert len(records) == 20 == len({j["build_id"] for j in jobs})  # each published exactly once
    assert _containers_of(ids) == []
    assert not list((Path(farm.env["XBUILD_STATE_DIR"]) / "work").iterdir())  # no temp dir left


def test_sigkilled_worker_build_is_redelivered_once(farm):
    worker = farm.add_worker()
    steps = '["sleep 8", "make", "make install DESTDIR=$XBUILD_OUT PREFIX=/usr/local"]'
    job = _post(farm.server, {**hello_files(100), "xbuild.toml": f"[build]\nsteps = {steps}\n"}).json()
    _wait(farm.server, job["id"], states=("running",), timeout=300)
    time.sleep(2)
    worker.kill()  # SIGKILL, whole process group
    killed = time.monotonic()
    farm.add_worker()
    done = _wait(farm.server, job["id"], timeout=300)
    assert done["state"] == "succeeded" and done["attempts"] == 2
    assert time.monotonic() - killed < 120
    from xbuild.store import open_store
    store = open_store(farm.env["XBUILD_STORE"])
    assert len([k for k in store.list(_builds_of(TOKEN_A, "hello")) if k.endswith("/manifest.json")]) == 1


def test_a_build_that_kills_its_worker_every_time_fails(farm):
    job = _post(farm.server, {"xbuild.toml": '[build]\nsteps = ["sleep 600"]\n'}).json()
    for attempt in range(1, 4):
        worker = farm.add_worker()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            state = requests.get(f"{farm.server.url}/v1/builds/{job['id']}", headers=_auth()).json()
            if state["state"] == "running" and state["attempts"] == attempt:
                break
            time.sleep(0.5)
        worker.kill()
    done = _wait(farm.server, job["id"], timeout=120)
    assert done["state"] == "failed" and done["attempts"] == 3 and "died" in done["error"]


def test_broker_restart_loses_no_build(farm):
    """Neither the builds queued nor the one running: it keeps its lease and runs once."""
    farm.add_worker()
    slow = _post(farm.server, {**hello_files(300), "xbuild.toml": '[build]\nsteps = ["sleep 10", "make", '
                               '"make install DESTDIR=$XBUILD_OUT PREFIX=/usr/local"]\n'}).json()
    _wait(farm.server, slow["id"], states=("running",), timeout=300)
    ids = [_post(farm.server, hello_files(200 + n)).json()["id"] for n in range(3)]
    farm.broker.restart()  # with a build running and builds queued
    jobs = [_wait(farm.server, i, timeout=300) for i in [slow["id"], *ids]]
    assert [j["state"] for j in jobs] == ["succeeded"] * 4
    assert [j["attempts"] for j in jobs] == [1] * 4


def test_nightly_matrix_once_even_with_two_schedulers(embedded, git_repo, tmp_path):
    url, _, head = git_repo
    config = tmp_path / "nightly.toml"
    config.write_text(f'schedule = "0 2 * * *"\nkeep = 3\n[[project]]\nname = "hello"\n'
                      f'path = "{EXAMPLES / "hello-make"}"\ntargets = ["rpi3", "arm64"]\n'
                      f'[[project]]\nname = "hello-git"\ngit = "{url}"\nbranch = "main"\ntargets = ["rpi0"]\n')
    env = dict(embedded.env)
    runs = [xbuild_proc(["nightly", "run-now", "--config", str(config), "--json"], env, tmp_path / f"n{i}.log")
            for i in range(2)]
    for r in runs:
        r.p.wait(600)
        r.log.close()
    outputs = [(tmp_path / f"n{i}.log").read_text() for i in range(2)]
    assert sum("claimed-elsewhere" in o or "already built" in o for o in outputs) == 1
    from xbuild.store import open_store
    store = open_store(env["XBUILD_STORE"])
    (index_key,) = [k for k in store.list("nightly") if k.endswith("index.json")]
    index = json.loads(store.read(index_key))
    assert sorted((b["project"], b["target"], b["state"]) for b in index["builds"]) == [
        ("hello", "arm64", "succeeded"), ("hello", "rpi3", "succeeded"), ("hello-git", "rpi0", "succeeded")]
    assert [b["commit"] for b in index["builds"] if b["project"] == "hello-git"] == [head]
    for b in index["builds"]:  # each build's SBOMs and provenance, linked as objects of the store
        links = b["attestation"]
        assert set(links) == {"spdx", "cyclonedx", "provenance", "signed"} and links["signed"] is False
        assert json.loads(store.read(links["spdx"]))["spdxVersion"] == "SPDX-2.3"
    assert store.read("nightly/latest/hello/rpi3") is not None
    nightly_jobs = [k for k in store.list("jobs/nightly") if k.endswith("job.json")]
    assert len(nightly_jobs) == 3  # no duplicate builds
    again = xbuild("nightly", "run-now", "--config", config, "--json", env=env)
    assert again.returncode == 0 and json.loads(again.stdout)["builds"] == index["builds"]
    # The next night, nothing changed: every build is answered by the cache, not rebuilt.
    night = index_key.split("/")[1]
    later = (datetime.date.fromisoformat(night) + datetime.timedelta(days=1)).isoformat()
    next_night = xbuild("nightly", "run-now", "--config", config, "--night", later, "--json", env=env)
    assert next_night.returncode == 0, next_night.stderr
    builds = json.loads(next_night.stdout)["builds"]
    assert [b["cache"] for b in builds] == ["hit"] * 3
    assert {b["build_id"] for b in builds} == {b["build_id"] for b in index["builds"]}


def _worker_started(server: Server) -> dict[int, str]:
    """serve's processes: the worker, and Celery's prefork child once it is ready."""
    deadline = time.monotonic() + 120
    while len(kids := descendants(server.proc.p.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert len(kids) >= 2, kids
    return kids


def _all_gone(kids: dict[int, str]) -> bool:
    deadline = time.monotonic() + 10
    while [k for k, started in kids.items() if alive(k, started)] and time.monotonic() < deadline:
        time.sleep(0.2)
    return [k for k, started in kids.items() if alive(k, started)] == []


def test_serve_stops_its_worker_and_its_children_on_sigterm(engine, tmp_path):
    import signal
    server = Server(_env(tmp_path), tmp_path)
    try:
        kids = _worker_started(server)
        server.proc.p.send_signal(signal.SIGTERM)  # serve alone, as an init system or CI does
        assert server.proc.p.wait(90) == 0
        assert _all_gone(kids)
    finally:
        server.stop()


@pytest.mark.parametrize("how", ["killed by stop", "died before stop"])
def test_a_test_server_never_outlives_its_test(engine, tmp_path, how):
    """serve's worker has a session of its own: killing serve's group misses it. A serve killed
    (or slower than the test's grace), or one that died by itself (its worker is then no longer
    its child), must not leave its worker running after the suite."""
    import signal
    server = Server(_env(tmp_path), tmp_path)
    try:
        kids = _worker_started(server)
        if how == "died before stop":
            server.proc.p.kill()  # serve alone; its worker lives on, reparented
            server.proc.p.wait()
            assert [k for k, started in kids.items() if alive(k, started)]
    finally:
        server.stop(signal.SIGKILL)  # serve gets no chance to stop its worker itself
    assert _all_gone(kids)


def test_cancel_stops_a_dockerfile_build(engine, tmp_path):
    """A Dockerfile build has no container of xbuild's to kill: the build polls the job's cancel
    and closes its build request, and the engine stops the RUN step."""
    from xbuild.containers.engine import client
    marker = f"xbuild-cancel-{time.time_ns()}"
    env = _env(tmp_path, XBUILD_SERVICE_DOCKERFILE="1")
    server = Server(env, tmp_path)
    try:
        job = _post(server, {"Dockerfile": f"FROM debian:bookworm\nRUN sleep 600 && echo {marker}\n"}).json()
        _wait(server, job["id"], states=("running",))

        def run_steps():
            return [c for c in client().containers.list(all=True)
                    if marker in " ".join(c.attrs["Config"].get("Cmd") or [])]
        deadline = time.monotonic() + 300  # the base image may be made first
        while not run_steps() and time.monotonic() < deadline:
            time.sleep(1)
        assert run_steps(), "the RUN step never started"
        assert requests.post(f"{server.url}/v1/builds/{job['id']}/cancel", headers=_auth()).status_code == 202
        assert _wait(server, job["id"], timeout=120)["state"] == "cancelled"
        deadline = time.monotonic() + 60
        while run_steps() and time.monotonic() < deadline:
            time.sleep(1)
        assert run_steps() == []
    finally:
        server.stop()


def test_the_reaper_removes_its_farms_containers_past_their_deadline(engine, tmp_path, monkeypatch):
    """A build container whose xbuild died keeps running; past its deadline label the reaper (and
    every worker, before each job) removes it: its own farm's only. The engine is shared with
    other farms, laptops' builds and the other tests, whose containers are not its to remove (a
    sweep of the whole engine once took a sandbox test's container from under it)."""
    from xbuild.board import targets
    from xbuild.containers import images
    from xbuild.containers.engine import client
    from xbuild.containers.sandbox import DEADLINE_LABEL
    from xbuild.service import reaper
    from xbuild.service.execute import FARM_LABEL, farm
    from xbuild.toolchain import pick
    monkeypatch.setenv("XBUILD_STORE", (tmp_path / "store").as_uri())  # a farm of this test's own
    ours = farm()
    base = images.ensure(images.builder_def(pick(targets.get("rpi3"), "cross")).parent, lambda line: None)

    def container(deadline: float, farm: str | None):
        labels = {DEADLINE_LABEL: str(deadline), **({FARM_LABEL: farm} if farm else {})}
        return client().containers.run(base.id, ["sleep", "600"], detach=True, network_mode="none",
                                       labels=labels)
    made = {"past": container(time.time() - 5, ours), "future": container(time.time() + 3600, ours),
            "other farm": container(time.time() - 5, "0123456789abcdef"), "no farm": container(time.time() - 5, None)}
    try:
        assert reaper._remove_expired() == 1
        left = {c.id for c in client().containers.list(all=True, filters={"label": DEADLINE_LABEL})}
        assert {name for name, c in made.items() if c.id in left} == {"future", "other farm", "no farm"}
    finally:
        for c in made.values():
            with contextlib.suppress(Exception):  # already gone is the point of the test
                c.remove(force=True)

"""Hostile and careless use of the build service's HTTP API and its client (issue 8): the worker's
secrets asked for through pass_env, Dockerfile projects, git URLs into the farm's own network,
malformed requests, the page's login link, the embedded broker's first publishes, and a server
error as `xbuild submit` reports it. Servers, Redis and workers are real processes on loopback."""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests

from tests.helpers import EXAMPLES, tgz, xbuild
from tests.services import GitDaemon, Redis, Server, xbuild_proc

pytestmark = pytest.mark.security
TOKEN_A, TOKEN_B = "api-token-a-" + uuid.uuid4().hex, "api-token-b-" + uuid.uuid4().hex
SECRET = "aws-secret-" + uuid.uuid4().hex  # the worker's S3 credential, as far as a build can tell
TERMINAL = ("succeeded", "failed", "timed_out", "cancelled")
HOSTILE_TOML = textwrap.dedent("""\
    [build]
    pass_env = ["AWS_SECRET_ACCESS_KEY", "XBUILD_API_TOKENS"]
    steps = ["echo stolen: $AWS_SECRET_ACCESS_KEY $XBUILD_API_TOKENS"]
    """)


def _env(tmp: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k != "XBUILD_DEBUG" and not k.startswith(("XBUILD_SERVICE_", "XBUILD_BROKER"))}
    env.update({"XBUILD_STATE_DIR": str(tmp / "state"), "XBUILD_STORE": (tmp / "store").as_uri(),
                "XBUILD_API_TOKENS": f"{TOKEN_A},{TOKEN_B}", "AWS_SECRET_ACCESS_KEY": SECRET,
                "XBUILD_SERVICE_PASS_ENV": "AWS_SECRET_ACCESS_KEY,MY_OK", "MY_OK": "fine",
                "XBUILD_MAX_UPLOAD_MB": "1", "XBUILD_REAPER_INTERVAL": "2", "XBUILD_LEASE_TTL": "6",
                **extra})
    return env


def _auth(token=TOKEN_A) -> dict:
    return {"Authorization": f"Bearer {token}"}




def _hello() -> dict[str, str]:
    return {p.name: p.read_text() for p in (EXAMPLES / "hello-make").iterdir() if p.is_file()}


def _upload(server, files, project="hello", target="rpi3", token=TOKEN_A):
    return requests.post(f"{server.url}/v1/builds", headers=_auth(token),
                         files={"source": ("s.tar.gz", tgz(files))}, data={"target": target, "project": project})


def _wait(server, job_id, timeout=300, states=TERMINAL) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = requests.get(f"{server.url}/v1/builds/{job_id}", headers=_auth()).json()
        if job["state"] in states:
            return job
        time.sleep(0.3)
    raise AssertionError(f"build {job_id} still {job['state']} after {timeout}s")


def _log(server, job_id) -> str:
    return requests.get(f"{server.url}/v1/builds/{job_id}/log", headers=_auth()).text


def _is_json_error(resp, status) -> dict:
    assert resp.status_code == status, (resp.status_code, resp.text[:500])
    assert resp.headers["Content-Type"].startswith("application/json"), resp.text[:500]
    body = resp.json()
    assert isinstance(body["error"], str) and body["error"] and "<" not in body["error"]
    return body


def _files_containing(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def _git(*args, cwd) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args], cwd=cwd,
                          check=True, capture_output=True, text=True).stdout.strip()


def _bare_repo(root: Path, files: dict[str, str]) -> Path:
    """A bare repository (root/repos/app.git) with one commit of `files`."""
    work = root / "work"
    work.mkdir(parents=True)
    for name, text in files.items():
        (work / name).write_text(text)
    _git("init", "-q", "-b", "main", cwd=work)
    _git("add", ".", cwd=work)
    _git("commit", "-q", "-m", "one", cwd=work)
    (root / "repos").mkdir()
    _git("clone", "-q", "--bare", str(work), str(root / "repos" / "app.git"), cwd=root)
    return root / "repos"


@pytest.fixture(scope="module")
def server(engine, tmp_path_factory):
    """`xbuild serve` on the embedded broker with the defaults a farm would have: private git hosts
    refused, Dockerfile projects off, AWS_SECRET_ACCESS_KEY in the operator's list by mistake."""
    tmp = tmp_path_factory.mktemp("api")
    server = Server(_env(tmp), tmp)
    server.tmp = tmp
    yield server
    server.stop()


@pytest.fixture(scope="module")
def git_server(engine, tmp_path_factory):
    """The same, but private git hosts allowed, so the worker fetches from a loopback git daemon;
    its ssh is a probe that records the environment the worker gives the programs it runs."""
    tmp = tmp_path_factory.mktemp("api-git")
    probe = tmp / "ssh-probe"
    probe.write_text(f"#!/bin/sh\nenv > {tmp / 'ssh-env'}\nexit 1\n")
    probe.chmod(0o755)
    server = Server(_env(tmp, XBUILD_SERVICE_ALLOW_PRIVATE_GIT="1", GIT_SSH_COMMAND=str(probe)), tmp)
    server.tmp = tmp
    yield server
    server.stop()


# --- defect 1: the worker's secrets ------------------------------------------------------------
@pytest.mark.integration
def test_pass_env_naming_the_services_secrets_is_refused_at_upload(server, tmp_path):
    cases = [(HOSTILE_TOML, "AWS_SECRET_ACCESS_KEY", "never receives"),
             ('[target.rpi0]\npass_env = ["XBUILD_API_TOKENS"]\n', "XBUILD_API_TOKENS", "never receives"),
             ('[build]\npass_env = ["aws_secret_access_key"]\n', "aws_secret_access_key", "never receives"),
             ('[build]\npass_env = ["HOME"]\n', "HOME", "XBUILD_SERVICE_PASS_ENV")]
    before = requests.get(f"{server.url}/v1/builds", headers=_auth()).json()["builds"]
    for toml, name, why in cases:
        body = _is_json_error(_upload(server, {**_hello(), "xbuild.toml": toml}), 422)
        assert name in body["error"] and "pass_env" in body["error"] and why in body["error"], body
        assert body["exit_code"] == 23
    assert requests.get(f"{server.url}/v1/builds", headers=_auth()).json()["builds"] == before  # none queued
    # The operator listed AWS_SECRET_ACCESS_KEY: serve said at start that it will be refused anyway.
    assert re.search(r"warning: XBUILD_SERVICE_PASS_ENV lists AWS_SECRET_ACCESS_KEY.*refused",
                     (server.tmp / "serve.log").read_text())
    project = tmp_path / "hostile"
    project.mkdir()
    (project / "xbuild.toml").write_text(HOSTILE_TOML)
    proc = xbuild("submit", "--server", server.url, "--target", "rpi3", project, env={"XBUILD_TOKEN": TOKEN_A})
    assert proc.returncode == 23 and "AWS_SECRET_ACCESS_KEY" in proc.stderr, proc.stderr
    assert SECRET not in proc.stderr + proc.stdout and TOKEN_B not in proc.stderr + proc.stdout
    # A name the operator listed (and not a secret of the service's) still reaches the build.
    ok = _upload(server, {**_hello(), "xbuild.toml": '[build]\npass_env = ["MY_OK"]\n'})
    assert ok.status_code == 201, ok.text
    assert _wait(server, ok.json()["id"])["state"] == "succeeded"


@pytest.mark.integration
def test_a_git_project_asking_for_secrets_fails_on_the_worker(git_server, tmp_path):
    """A git source is never seen by the API: the worker refuses it, and nothing leaks anywhere."""
    repos = _bare_repo(tmp_path, {**_hello(), "xbuild.toml": HOSTILE_TOML})
    daemon = GitDaemon(repos)
    try:
        resp = requests.post(f"{git_server.url}/v1/builds", headers=_auth(),
                             json={"git_url": f"{daemon.url}/app.git", "target": "rpi3"})
        assert resp.status_code == 201, resp.text
        job = _wait(git_server, resp.json()["id"], timeout=120)
        proc = xbuild("submit", "--server", git_server.url, "--target", "rpi3", "--git", f"{daemon.url}/app.git",
                      "--out", tmp_path / "out", env={"XBUILD_TOKEN": TOKEN_A})
    finally:
        daemon.kill()
    assert job["state"] == "failed" and job["exit_code"] == 23 and job["attempts"] == 1, job
    assert "AWS_SECRET_ACCESS_KEY" in job["error"] and "never receives" in job["error"]
    assert proc.returncode == 23 and "never receives" in proc.stderr, proc.stderr
    log = _log(git_server, job["id"])
    for secret in (SECRET, TOKEN_A, TOKEN_B):
        assert secret not in log and secret not in proc.stderr
        assert not _files_containing(git_server.tmp / "store", secret.encode())
    assert not (tmp_path / "out").exists()


@pytest.mark.integration
def test_the_embedded_worker_does_not_hold_the_api_tokens(git_server):
    resp = requests.post(f"{git_server.url}/v1/builds", headers=_auth(),
                         json={"git_url": "git@127.0.0.1:nothing.git", "target": "rpi3"})
    assert resp.status_code == 201, resp.text
    assert _wait(git_server, resp.json()["id"], timeout=120)["state"] == "failed"
    seen = (git_server.tmp / "ssh-env").read_text()  # what the worker's git gave its ssh
    assert "XBUILD_STORE=" in seen  # the probe saw the worker's environment...
    assert "XBUILD_API_TOKENS" not in seen and TOKEN_A not in seen  # ...without the tokens


@pytest.fixture
def farm(engine, tmp_path):
    redis = Redis(tmp_path / "redis")
    env = _env(tmp_path, XBUILD_BROKER_URL=redis.url, XBUILD_SERVICE_ALLOW_PRIVATE_GIT="1")
    try:
        server = Server(env, tmp_path)
    except BaseException:
        redis.kill()  # the teardown below never runs when set-up fails
        raise
    workers = []

    def worker(**extra):
        w = xbuild_proc(["worker", "--name", f"w{len(workers)}@test"], {**env, **extra},
                        tmp_path / f"worker{len(workers)}.log")
        workers.append(w)
        return w

    yield type("Farm", (), {"server": server, "env": env, "worker": staticmethod(worker), "tmp": tmp_path})
    for w in workers:
        w.kill()
    server.stop()
    redis.kill()


@pytest.mark.integration
def test_farm_workers_check_git_hosts_again_and_drop_the_tokens(farm):
    # The server allows private git hosts, this worker does not: the worker's check decides.
    strict = farm.worker(XBUILD_SERVICE_ALLOW_PRIVATE_GIT="")
    resp = requests.post(f"{farm.server.url}/v1/builds", headers=_auth(),
                         json={"git_url": "git://127.0.0.1:9/app.git", "target": "rpi3"})
    assert resp.status_code == 201, resp.text
    job = _wait(farm.server, resp.json()["id"], timeout=120)
    assert job["state"] == "failed" and job["exit_code"] == 23 and "not a public address" in job["error"], job
    strict.kill()
    # `xbuild worker` started with the tokens in its environment drops them at once.
    probe = farm.tmp / "ssh-probe"
    probe.write_text(f"#!/bin/sh\nenv > {farm.tmp / 'ssh-env'}\nexit 1\n")
    probe.chmod(0o755)
    farm.worker(GIT_SSH_COMMAND=str(probe))
    resp = requests.post(f"{farm.server.url}/v1/builds", headers=_auth(),
                         json={"git_url": "git@127.0.0.1:nothing.git", "target": "rpi3"})
    assert _wait(farm.server, resp.json()["id"], timeout=120)["state"] == "failed"
    seen = (farm.tmp / "ssh-env").read_text()
    assert "XBUILD_STORE=" in seen and "XBUILD_API_TOKENS" not in seen and TOKEN_A not in seen


# --- defect 4: Dockerfile projects -------------------------------------------------------------
@pytest.mark.integration
def test_dockerfile_projects_are_off_unless_the_operator_enables_them(server, git_server, tmp_path):
    dockerfile = (EXAMPLES / "flask-hello" / "Dockerfile").read_text()
    for files in ({"Dockerfile": dockerfile},
                  {"Dockerfile": dockerfile, **_hello(), "xbuild.toml": '[build]\nrecipe = "dockerfile"\n'}):
        body = _is_json_error(_upload(server, files), 422)
        assert "Dockerfile projects are off" in body["error"] and "XBUILD_SERVICE_DOCKERFILE=1" in body["hint"]
    # From git, only the worker sees the project: it refuses it before building anything.
    daemon = GitDaemon(_bare_repo(tmp_path, {"Dockerfile": dockerfile}))
    try:
        resp = requests.post(f"{git_server.url}/v1/builds", headers=_auth(),
                             json={"git_url": f"{daemon.url}/app.git", "target": "rpi3"})
        job = _wait(git_server, resp.json()["id"], timeout=120)
    finally:
        daemon.kill()
    assert job["state"] == "failed" and job["exit_code"] == 23 and "Dockerfile projects are off" in job["error"]
    assert "[xbuild] build" not in _log(git_server, job["id"])


def test_the_upload_check_follows_the_operators_settings(monkeypatch, tmp_path):
    from xbuild.errors import ConfigError, RefusedByService
    from xbuild.service import policy
    from xbuild.service.api import _check_upload

    def check(files):
        (tmp_path / "u.tar.gz").write_bytes(tgz(files))
        _check_upload(tmp_path / "u.tar.gz")  # the API's one pass over an upload

    monkeypatch.delenv("XBUILD_SERVICE_DOCKERFILE", raising=False)
    monkeypatch.setenv("XBUILD_SERVICE_PASS_ENV", "VERSION, XBUILD_STORE")
    check({"Dockerfile": "FROM debian:bookworm\n", "Makefile": "all:\n"})  # make's, not Docker's
    check({"./xbuild.toml": '[target.rpi3]\npass_env = ["VERSION"]\n', "Makefile": "all:\n"})
    with pytest.raises(RefusedByService, match="'XBUILD_STORE'.*never receives"):
        check({"./xbuild.toml": '[target.rpi3]\npass_env = ["XBUILD_STORE"]\n'})
    with pytest.raises(RefusedByService, match="Dockerfile projects are off"):
        check({"./Dockerfile": "FROM debian:bookworm\n", "README": "x"})
    with pytest.raises(ConfigError, match=r"^xbuild.toml: not valid TOML"):  # no server path in it
        check({"xbuild.toml": "[build\n"})
    monkeypatch.setenv("XBUILD_SERVICE_DOCKERFILE", "1")
    check({"Dockerfile": "FROM debian:bookworm\n"})
    assert policy.startup_warnings() and "XBUILD_STORE" in policy.startup_warnings()[0]


# --- defect 7: the API's edges -----------------------------------------------------------------
def test_openapi_describes_every_error_as_json():
    from xbuild.service.openapi import SPEC
    responses = [(path, status, r) for path, ops in SPEC["paths"].items() for op in ops.values()
                 for status, r in op["responses"].items() if int(status) >= 400]
    assert {s for _, s, _ in responses} >= {"400", "401", "404", "413", "422", "500"}
    for path, status, r in responses:
        schema = r["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/Error"}, (path, status)
    assert SPEC["components"]["schemas"]["Error"]["required"] == ["error", "hint"]


@pytest.mark.integration
def test_project_names_that_are_not_names_are_made_safe(server):
    for name in (".", "..", "...", "", "-", "./..", "../../etc"):
        resp = _upload(server, {"README": "no build system here\n"}, project=name)
        assert resp.status_code == 201, (name, resp.text)
        project = resp.json()["project"]
        assert project and not project.startswith((".", "-")) and "/" not in project, (name, project)
        job = _wait(server, resp.json()["id"], timeout=120)
        # It reached the build (no recipe in it) on its first attempt: no worker died on the name.
        assert job["state"] == "failed" and job["exit_code"] == 5 and job["attempts"] == 1, (name, job)


@pytest.mark.integration
def test_wrong_json_types_get_json_4xx(server):
    url = f"{server.url}/v1/builds"
    cases = [(["rpi3"], 400), ("rpi3", 400), (None, 400),
             ({"target": ["rpi3"], "git_url": "https://example.org/x.git"}, 422),
             ({"target": {"a": 1}, "git_url": "https://example.org/x.git"}, 422),
             ({"target": "rpi3", "git_url": 5}, 422), ({"target": "rpi3", "git_url": None}, 422),
             ({"target": "rpi3", "git_url": "https://example.org/x.git", "ref": 5}, 422),
             ({"target": "rpi3", "git_url": "https://example.org/x.git", "mode": 3}, 422),
             ({"target": "rpi3", "git_url": "https://example.org/x.git", "no_cache": [1]}, 422)]
    for body, status in cases:
        resp = requests.post(url, headers={**_auth(), "Content-Type": "application/json"}, data=json.dumps(body))
        _is_json_error(resp, status)
    _is_json_error(requests.post(url, headers={**_auth(), "Content-Type": "application/json"}, data=b"{nope"), 400)
    _is_json_error(requests.post(url, headers=_auth(), files={"source": ("s", tgz(_hello()))},
                                 data={"target": "rpi3", "mode": "fast"}), 422)


@pytest.mark.integration
def test_every_error_is_json(server):
    u = server.url
    long_id = "2" * 300
    assert _is_json_error(requests.get(f"{u}/v1/builds"), 401)["hint"]
    assert requests.get(f"{u}/v1/builds").headers["WWW-Authenticate"] == "Bearer"
    _is_json_error(requests.get(f"{u}/v1/builds", headers=_auth("wrong")), 401)
    _is_json_error(requests.get(f"{u}/v1/builds", headers={"Authorization": f"Basic {TOKEN_A}"}), 401)
    _is_json_error(requests.get(f"{u}/v1/builds", headers={"Authorization": f"Bearer{TOKEN_A}"}), 401)
    _is_json_error(requests.get(f"{u}/v1/builds", headers={"Authorization": "Bearer t\u00e9st"}), 401)
    _is_json_error(requests.get(f"{u}/no/such/page", headers=_auth()), 404)
    for path in (long_id, f"{long_id}/log", f"{long_id}/artifacts", f"{long_id}/artifacts/x.tar.gz",
                 "..", "20260101-000000-0000000z", "20260101-000000-00000000"):
        _is_json_error(requests.get(f"{u}/v1/builds/{path}", headers=_auth()), 404)
    _is_json_error(requests.post(f"{u}/v1/builds/{long_id}/cancel", headers=_auth()), 404)
    not_allowed = requests.delete(f"{u}/v1/builds", headers=_auth())
    _is_json_error(not_allowed, 405)
    assert "POST" in not_allowed.headers["Allow"]
    _is_json_error(requests.get(f"{u}/v1/builds/{long_id}/cancel", headers=_auth()), 405)
    too_big = requests.post(f"{u}/v1/builds", headers=_auth(), data={"target": "rpi3"},
                            files={"source": ("s.tar.gz", os.urandom(1536 << 10))})  # limit: 1 MB
    assert "1 MB" in _is_json_error(too_big, 413)["error"]
    far_too_big = requests.post(f"{u}/v1/builds", headers=_auth(), data={"target": "rpi3"},
                                files={"source": ("s.tar.gz", os.urandom(3 << 20))})  # refused by waitress
    assert "1 MB" in _is_json_error(far_too_big, 413)["error"]
    _is_json_error(_upload(server, _hello(), target="rpi9"), 422)
    _is_json_error(requests.post(f"{u}/v1/builds", headers=_auth(), data={"target": "rpi3"}), 400)


@pytest.mark.integration
def test_the_bearer_scheme_is_case_insensitive(server):
    for scheme in ("bearer", "BEARER", "Bearer", "bEaReR"):
        resp = requests.get(f"{server.url}/v1/builds", headers={"Authorization": f"{scheme} {TOKEN_B}"})
        assert resp.status_code == 200 and "builds" in resp.json(), scheme


PRIVATE_GIT_URLS = ["git://127.0.0.1:9418/x.git", "http://localhost/x.git", "https://[::1]/x.git",
                    "http://169.254.169.254/latest/meta-data.git", "https://10.1.2.3/x.git",
                    "http://2130706433/x.git", "http://0.0.0.0/x.git", "git@192.168.1.1:x.git",
                    "ssh://git@[::ffff:127.0.0.1]/x.git", "https://100.64.0.1/x.git",
                    "https://[fe80::1]/x.git", "http://127.1/x.git"]


@pytest.mark.integration
def test_git_urls_into_the_farms_network_are_refused(server):
    before = requests.get(f"{server.url}/v1/builds", headers=_auth()).json()["builds"]
    for url in PRIVATE_GIT_URLS:
        resp = requests.post(f"{server.url}/v1/builds", headers=_auth(), json={"git_url": url, "target": "rpi3"})
        body = _is_json_error(resp, 422)
        assert "not a public address" in body["error"] and "XBUILD_SERVICE_ALLOW_PRIVATE_GIT=1" in body["hint"], url
    unresolvable = requests.post(f"{server.url}/v1/builds", headers=_auth(),
                                 json={"git_url": "https://no-such-host.invalid/x.git", "target": "rpi3"})
    assert "does not resolve" in _is_json_error(unresolvable, 422)["error"]
    assert requests.get(f"{server.url}/v1/builds", headers=_auth()).json()["builds"] == before


def test_git_hosts_are_parsed_like_git_does():
    from xbuild.service.policy import git_host
    assert git_host("git@github.com:org/app.git") == "github.com"
    assert git_host("ssh://git@[::1]:22/app.git") == "::1"
    assert git_host("https://user:pw@Example.org:8443/app.git") == "example.org"
    assert git_host("https://[::1/app.git") is None


def test_a_git_jobs_record_without_its_url_is_refused_before_any_fetch():
    """The worker fetches the URL the check returns; a record naming git but no URL (a record is
    data) is refused, not passed to git as None."""
    from xbuild.errors import RefusedByService
    from xbuild.request import BuildRequest
    from xbuild.service.jobs import Job
    from xbuild.service.policy import check_git_job
    operators = Job(id="j", tenant="t", request=BuildRequest("rpi3"), source="git", git_url="http://10.0.0.1/a.git",
                    nightly="2026-01-01")
    assert check_git_job(operators) == "http://10.0.0.1/a.git"  # nightly.toml's own: a private host is fine
    with pytest.raises(RefusedByService, match="no git_url"):
        check_git_job(Job(id="j", tenant="t", request=BuildRequest("rpi3"), source="git"))


class _Redirect(http.server.BaseHTTPRequestHandler):
    """Answers everything with a redirect to `target`; counts what the target was asked."""
    target = ""

    def do_GET(self):  # noqa: N802 - http.server's name
        self.send_response(302)
        self.send_header("Location", self.target + self.path)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.mark.integration
def test_git_fetches_follow_no_redirect(git_server, tmp_path):
    """A host that passes the check must not hand the fetch on to one that would not have."""
    repos = _bare_repo(tmp_path, _hello())
    _git("update-server-info", cwd=repos / "app.git")  # served as plain files ("dumb" http)
    asked = []

    class Files(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(repos), **kw)

        def log_message(self, *args):
            asked.append(self.path)

    files = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Files)
    _Redirect.target = f"http://127.0.0.1:{files.server_address[1]}"
    redirect = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Redirect)
    servers = [files, redirect]
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    try:
        # the repository itself is reachable where it is served...
        direct = subprocess.run(["git", "ls-remote", f"{_Redirect.target}/app.git"], capture_output=True, text=True)
        assert direct.returncode == 0 and "refs/heads/main" in direct.stdout, direct.stderr
        asked.clear()
        resp = requests.post(f"{git_server.url}/v1/builds", headers=_auth(),
                             json={"git_url": f"http://127.0.0.1:{redirect.server_address[1]}/app.git",
                                   "target": "rpi3"})
        job = _wait(git_server, resp.json()["id"], timeout=300)
    finally:
        for s in servers:
            s.shutdown()
            s.server_close()
    assert job["state"] == "failed" and job["exit_code"] == 4 and "cannot fetch" in job["error"], job
    assert asked == []  # ...but the worker never went there


def _browser_dom(url: str) -> str:
    exe = shutil.which("chromium-headless-shell") or shutil.which("chromium")
    if exe is None:
        if os.environ.get("XBUILD_REQUIRE_INTEGRATION") == "1":
            pytest.fail("no headless browser: apt-get install chromium-headless-shell")
        pytest.skip("no headless browser: apt-get install chromium-headless-shell")
    proc = subprocess.run([exe, "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                           "--virtual-time-budget=10000", "--dump-dom", url],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@pytest.mark.integration
def test_a_link_with_a_token_signs_nobody_in(server):
    """A stranger's link (#token=<the stranger's token>) must not show the stranger's builds and
    artifacts to the visitor as if they were the visitor's own."""
    job = _upload(server, {"README": "x\n"}, token=TOKEN_B).json()
    dom = _browser_dom(f"{server.url}/#token={TOKEN_B}&build={job['id']}")
    assert job["id"] not in dom
    assert re.search(r'<form id="login"(?![^>]*hidden)', dom), dom[:2000]  # it asks for a token
    assert re.search(r'<main id="app" hidden', dom)


# --- defect 8: publishing from many threads, many processes ----------------------------------
_PUBLISHERS = textwrap.dedent("""
    import os, sys, tempfile, threading, time
    os.environ.pop("XBUILD_BROKER_URL", None)
    from xbuild.service import celery_app
    import kombu.transport.sqlalchemy, sqlalchemy.dialects.sqlite, sqlalchemy.orm  # before the forks
    celery_app.app.amqp

    class Job:
        tenant, id, queue = "t", "20260101-000000-00000000", "xbuild.armhf"

    def publish(start):
        errors = []
        def one():
            time.sleep(max(0.0, start - time.time()))
            try:
                celery_app.submit(Job)
            except Exception as exc:
                errors.append(repr(exc))
        threads = [threading.Thread(target=one) for _ in range(4)]
        for t in threads: t.start()
        for t in threads: t.join()
        print(*errors[:1], flush=True)
        os._exit(1 if errors else 0)

    failed = 0
    for _ in range(int(sys.argv[1])):
        celery_app.app.conf.broker_url = f"sqla+sqlite:///{tempfile.mkdtemp(dir=sys.argv[2])}/broker.sqlite"
        start, pids = time.time() + 0.3, []
        for _ in range(4):
            pid = os.fork()
            if pid == 0:
                publish(start)
            pids.append(pid)
        failed += any(os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) for p in pids)
    print(f"failed rounds: {failed}")
    """)


def test_first_publishes_to_a_fresh_embedded_broker_all_succeed(tmp_path):
    """Several processes (the API, its worker, `nightly run-now`) each with threads publish their
    first message to a fresh SQLite broker at the same moment. Before the fix most rounds lost a
    publish (IntegrityError, or AttributeError: 'NoneType' object has no attribute 'client')."""
    proc = subprocess.run([sys.executable, "-c", _PUBLISHERS, "10", str(tmp_path)], capture_output=True,
                          text=True, timeout=600, env={**os.environ, "XBUILD_STATE_DIR": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("failed rounds: 0"), proc.stdout[-3000:]


def _submit_at_once(server, n: int) -> list[tuple[int, str]]:
    """n uploads released at the same instant; their statuses and the start of their bodies."""
    barrier, codes, source = threading.Barrier(n), [], tgz({"README": "x\n"})

    def post():
        barrier.wait()
        resp = requests.post(f"{server.url}/v1/builds", headers=_auth(), data={"target": "rpi3"},
                             files={"source": ("s.tar.gz", source)})
        codes.append((resp.status_code, resp.text[:300]))

    threads = [threading.Thread(target=post) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return codes


@pytest.mark.integration
def test_concurrent_first_submits_to_fresh_servers_are_all_accepted(engine, tmp_path):
    for n in range(3):
        workdir = tmp_path / str(n)
        workdir.mkdir()
        server = Server(_env(workdir), workdir)
        try:
            codes = _submit_at_once(server, 16)
        finally:
            server.stop()
        assert [c for c, _ in codes] == [201] * 16, codes


# --- the client: a server error is a server error ----------------------------------------------
@pytest.mark.integration
def test_submit_reports_a_server_error_as_one(engine, tmp_path):
    (tmp_path / "not-a-dir").write_text("")  # a store the server cannot write
    server = Server(_env(tmp_path, XBUILD_STORE=(tmp_path / "not-a-dir" / "store").as_uri()), tmp_path)
    try:
        raw = requests.post(f"{server.url}/v1/builds", headers=_auth(), files={"source": ("s", tgz(_hello()))},
                            data={"target": "rpi3"})
        body = _is_json_error(raw, 500)
        assert "the build server failed" in body["error"] and str(tmp_path) not in raw.text
        # retried for a moment (a 500 may be an older server's or a proxy's word for an outage)
        proc = xbuild("submit", "--server", server.url, "--target", "rpi3", EXAMPLES / "hello-make",
                      env={"XBUILD_TOKEN": TOKEN_A, "XBUILD_RETRY_SECONDS": "3"})
    finally:
        server.stop()
    assert proc.returncode == 22, proc.stderr
    assert "retrying: POST /v1/builds failed" in proc.stderr
    assert "server error" in proc.stderr and "HTTP 500" in proc.stderr and "the build server failed" in proc.stderr
    assert "not reachable" not in proc.stderr and "cannot reach" not in proc.stderr and "Traceback" not in proc.stderr
    assert "Traceback" in (tmp_path / "serve.log").read_text()  # the details are in the operator's log
    gone = xbuild("submit", "--server", server.url, "--target", "rpi3", EXAMPLES / "hello-make",
                  env={"XBUILD_TOKEN": TOKEN_A, "XBUILD_RETRY_SECONDS": "3"})
    assert gone.returncode == 18 and "cannot reach" in gone.stderr  # no server: still "unreachable"

"""A tenant's (or a project's) mistake or mischief is a clear user error: never an internal
error, never a path on the server (issue 16, item 10)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import requests

from tests.helpers import make_project, tgz, xbuild
from tests.services import GitDaemon, embedded_server

pytestmark = pytest.mark.security

DEEP_TOML = '[build]\nsteps = ' + "[" * 5000 + "\n"
DEEP_JSON = "[" * 100_000
HELLO = {"Makefile": "all:\n\techo hi > hi.txt\n", "xbuild.toml": '[build]\nartifacts = ["hi.txt"]\n'}


def test_a_deeply_nested_xbuild_toml_is_a_config_error(tmp_path):
    project = make_project(tmp_path / "deep", {"Makefile": "all:\n", "xbuild.toml": DEEP_TOML})
    result = xbuild("--target", "rpi3", project)
    assert result.returncode == 6, result.stderr
    assert "nested too deeply" in result.stderr and "Traceback" not in result.stderr


def test_a_deeply_nested_manifest_in_the_output_folder_is_refused_clearly(tmp_path):
    """The project's own xbuild-out/rpi3/manifest.json (read to tell an older xbuild's output)."""
    project = make_project(tmp_path / "p", {**HELLO, "xbuild-out/rpi3/manifest.json": DEEP_JSON})
    result = xbuild("--target", "rpi3", project)
    assert result.returncode == 25, result.stderr
    assert "internal error" not in result.stderr


def test_json_from_elsewhere_nested_too_deeply_is_a_value_error():
    from xbuild.schema import json_value
    with pytest.raises(ValueError, match="nested too deeply"):
        json_value(DEEP_JSON)
    assert json_value('{"a": [1]}') == {"a": [1]}


# --- the service -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(engine, tmp_path_factory):
    with embedded_server(tmp_path_factory.mktemp("svc-errors")) as srv:
        yield srv


def _upload(server, files: dict[str, str], project: str) -> requests.Response:
    from tests.integration.test_service import _auth
    return requests.post(f"{server.url}/v1/builds", headers=_auth(), data={"target": "rpi3", "project": project},
                         files={"source": ("s.tar.gz", tgz(files))})


@pytest.mark.integration
def test_the_api_refuses_a_deeply_nested_xbuild_toml(server):
    refused = _upload(server, {"Makefile": "all:\n", "xbuild.toml": DEEP_TOML}, "deep")
    assert refused.status_code == 422, refused.text
    assert "nested too deeply" in refused.json()["error"]
    assert server.env["XBUILD_STATE_DIR"] not in refused.text


@pytest.mark.integration
@pytest.mark.parametrize("name", ["source.tar.gz", "out", "ccache", "src"])
def test_a_project_named_like_the_workers_own_files_builds(server, name):
    """The worker's files sit beside the project, never under a name the request chose."""
    from tests.integration.test_service import _auth, _wait
    job = _wait(server, _upload(server, HELLO, name).json()["id"], timeout=900)
    assert job["state"] == "succeeded", job
    assert job["project"] == name
    log = requests.get(f"{server.url}/v1/builds/{job['id']}/log", headers=_auth()).text
    assert "hi.txt" in log and "recording build" in log, log
    assert server.env["XBUILD_STATE_DIR"] not in log and server.env["XBUILD_STORE"] not in log, log


@pytest.mark.integration
def test_a_git_sources_broken_xbuild_toml_names_no_server_path(server, tmp_path):
    """A git source's xbuild.toml is first read on the worker: its error names the file as the
    project does, with no path of the server's."""
    from tests.integration.test_service import _auth, _wait
    work = make_project(tmp_path / "work", {"Makefile": "all:\n", "xbuild.toml": DEEP_TOML})
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "-C", str(work)]
    for args in (["init", "-q"], ["add", "."], ["commit", "-qm", "x"]):
        subprocess.run([*git, *args], check=True, capture_output=True)
    (tmp_path / "repos").mkdir()
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(tmp_path / "repos" / "deep.git")],
                   check=True, capture_output=True)
    daemon = GitDaemon(tmp_path / "repos")
    try:
        posted = requests.post(f"{server.url}/v1/builds", headers=_auth(),
                               json={"git_url": f"{daemon.url}/deep.git", "target": "rpi3"})
        assert posted.status_code == 201, posted.text
        job = _wait(server, posted.json()["id"], timeout=600)
    finally:
        daemon.stop()
    assert job["state"] == "failed" and job["exit_code"] == 6, job
    assert job["error"].startswith("xbuild.toml: ") and "nested too deeply" in job["error"]
    state = server.env["XBUILD_STATE_DIR"]
    assert state not in str(job) and str(Path(state).resolve()) not in str(job)

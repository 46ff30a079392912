"""Dockerfile projects: an image for the board's platform, loaded and run under qemu with a port
forwarded, answering over HTTP."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import EXAMPLES, make_project, xbuild
from tests.services import free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def flask_images(engine, tmp_path_factory):
    project = shutil.copytree(EXAMPLES / "flask-hello", tmp_path_factory.mktemp("flask") / "flask-hello")
    built = {}
    for target in ("rpi3", "arm64"):
        proc = xbuild("--target", target, project, "--json")
        assert proc.returncode == 0, proc.stderr[-3000:]
        built[target] = json.loads(proc.stdout)
    return built


@pytest.mark.parametrize("target,arch,variant", [("rpi3", "arm", "v7"), ("arm64", "arm64", "v8")])
def test_flask_image_runs_on_the_board_platform(flask_images, target, arch, variant):
    from xbuild.engine import client
    result = flask_images[target]
    (artifact,) = result["artifacts"]
    assert artifact["path"].endswith(f"flask-hello-{target}.image.tar") and result["recipe"] == "dockerfile"
    image = client().images.get(f"flask-hello:{target}")
    assert (image.attrs["Os"], image.attrs["Architecture"], image.attrs.get("Variant")) == ("linux", arch, variant)
    manifest = json.loads(Path(result["manifest"]).read_text())
    assert manifest["image"]["platform"] == f"linux/{arch}/{variant}"
    assert manifest["image"]["bases"][0]["from"] == "debian:bookworm-slim"

    port = free_port()
    run = subprocess.Popen([sys.executable, "-m", "xbuild", "run", "--target", target, "--publish",
                            f"{port}:80", artifact["path"]], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        body, deadline = None, time.monotonic() + 120
        while time.monotonic() < deadline and body is None:
            try:
                body = requests.get(f"http://127.0.0.1:{port}/", timeout=2).text
            except requests.RequestException:
                time.sleep(1)
        assert body == "Hello from inside a Docker container"
    finally:
        run.terminate()
        run.wait(60)
        run.stdout.close()
    left = client().containers.list(all=True, filters={"label": "org.xbuild.build"})
    assert not [c.name for c in left if c.name.startswith("xbuild-run-")]  # removed on SIGTERM


def test_a_second_build_is_a_cache_hit(flask_images, tmp_path):
    project = shutil.copytree(EXAMPLES / "flask-hello", tmp_path / "flask-hello")
    proc = xbuild("--target", "rpi3", project, "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["cache"] == "hit"


def test_an_unresolvable_base_is_named(engine, tmp_path):
    project = make_project(tmp_path / "p", {"Dockerfile": "FROM registry.invalid/nothing/here:1\nCMD true\n"})
    proc = xbuild("--target", "rpi3", project)
    assert proc.returncode == 20, proc.stderr
    assert "registry.invalid/nothing/here:1" in proc.stderr and "debian:<suite>" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_failing_step_is_shown(engine, tmp_path):
    project = make_project(tmp_path / "p", {"Dockerfile": "FROM debian:bookworm-slim\nRUN echo ok\n"
                                                          "RUN exit 3\nCMD true\n"})
    proc = xbuild("--target", "arm64", project)
    assert proc.returncode == 7, proc.stderr
    assert "RUN exit 3" in proc.stderr and "Traceback" not in proc.stderr

"""Dockerfile projects: an image for the board's platform, loaded and run under qemu with a port
forwarded, answering over HTTP."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

from tests.helpers import EXAMPLES, make_project, xbuild
from tests.services import Registry, free_port

pytestmark = pytest.mark.integration


# The example under a name of this run's own: its image is loaded as NAME:<target>, and other
# runs of these tests on the same engine load (and remove) theirs under their own names.
NAME = f"flask-{uuid.uuid4().hex[:10]}"


def _flask(where: Path) -> Path:
    return shutil.copytree(EXAMPLES / "flask-hello", where / NAME)


@pytest.fixture(scope="module")
def flask_images(engine, tmp_path_factory):
    from docker.errors import ImageNotFound

    from xbuild.containers.engine import client
    project = _flask(tmp_path_factory.mktemp("flask"))
    built = {}
    for target in ("rpi3", "arm64"):
        proc = xbuild("--target", target, project, "--json")
        assert proc.returncode == 0, proc.stderr[-3000:]
        built[target] = json.loads(proc.stdout)
    yield built
    for target in built:  # what the tests loaded
        with contextlib.suppress(ImageNotFound):
            client().images.remove(f"{NAME}:{target}")


def _load(archive: str):
    """The saved image, loaded as a user would (`docker load`): the build left no tag behind."""
    from xbuild.containers.engine import client
    with open(archive, "rb") as f:
        (image,) = client().images.load(f)
    return image


@pytest.mark.parametrize("target,arch,variant", [("rpi3", "arm", "v7"), ("arm64", "arm64", "v8")])
def test_flask_image_runs_on_the_board_platform(flask_images, target, arch, variant):
    result = flask_images[target]
    (artifact,) = result["artifacts"]
    assert artifact["path"].endswith(f"{NAME}-{target}.image.tar") and result["recipe"] == "dockerfile"
    image = _load(artifact["path"])
    assert image.tags == [f"{NAME}:{target}"]
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
        assert [c.name for c in _publishing(port)][0].startswith("xbuild-run-")
    finally:
        run.terminate()
        run.wait(60)
        run.stdout.close()
    # Removed on SIGTERM (other builds share the engine: this run's container is the one on its port).
    assert _publishing(port) == []


def _publishing(port: int) -> list:
    """xbuild's containers that publish this host port (a free port this test chose)."""
    from xbuild.containers.engine import client
    from xbuild.containers.sandbox import BUILD_LABEL
    boxes = client().containers.list(all=True, sparse=True, filters={"label": BUILD_LABEL})
    found = []
    for box in boxes:
        try:
            box.reload()
        except Exception:  # noqa: BLE001 - another build's container, gone while we looked
            continue
        bindings = box.attrs["HostConfig"].get("PortBindings") or {}
        if any(b.get("HostPort") == str(port) for bs in bindings.values() for b in bs or []):
            found.append(box)
    return found


def test_app_images_are_not_xbuilds_own(flask_images):
    """An app image is built FROM xbuild's base: it must not be listed (or pruned) as one."""
    from xbuild.containers.images import LABEL, listing
    assert _load(flask_images["rpi3"]["artifacts"][0]["path"]).labels[LABEL] == "app"
    tags = [t for img in listing() for t in img["tags"]]
    assert tags and all(t.startswith("xbuild/") for t in tags)


def test_a_second_build_is_a_cache_hit(flask_images, tmp_path):
    project = _flask(tmp_path)
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


@pytest.fixture(scope="module")
def registry(engine, tmp_path_factory):
    reg = Registry(tmp_path_factory.mktemp("registry"))
    yield reg
    reg.stop()


def _registry_platform(registry, repo: str, tag: str) -> tuple[str, str, str]:
    """What the registry itself says the pushed image is: its config blob's os/arch/variant."""
    accept = ("application/vnd.docker.distribution.manifest.v2+json,"
              "application/vnd.oci.image.manifest.v1+json")
    base = f"http://{registry.host}/v2/{repo}"
    manifest = requests.get(f"{base}/manifests/{tag}", headers={"Accept": accept}, timeout=30).json()
    config = requests.get(f"{base}/blobs/{manifest['config']['digest']}", timeout=30).json()
    return config["os"], config["architecture"], config.get("variant")


def test_push_to_a_registry_then_build_from_it(flask_images, registry, tmp_path):
    from xbuild.containers.engine import client
    project = _flask(tmp_path)
    repo = f"{registry.host}/team/flask-hello"
    from docker.errors import ImageNotFound
    with contextlib.suppress(ImageNotFound):  # loaded by the tests above; a cache hit must push the published archive
        client().images.remove(f"{NAME}:rpi3")
    proc = xbuild("--target", "rpi3", project, "--push", repo, "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert result["cache"] == "hit" and result["pushed"].startswith(f"{repo}:rpi3@sha256:")
    assert _registry_platform(registry, "team/flask-hello", "rpi3") == ("linux", "arm", "v7")

    # A base that is not Debian's comes from the registry, for the board's platform, by digest.
    client().images.remove(f"{repo}:rpi3")
    derived = make_project(tmp_path / "derived", {"Dockerfile": f"FROM {repo}:rpi3\nLABEL derived=yes\n"})
    proc = xbuild("--target", "rpi3", derived, "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    (base,) = json.loads(Path(json.loads(proc.stdout)["manifest"]).read_text())["image"]["bases"]
    assert base["how"] == "pull" and base["resolved"] == result["pushed"].replace(":rpi3@", "@")
    client().images.remove(f"{repo}:rpi3")  # the pulled base: its registry ends with the test


def test_push_is_refused_for_archives_and_bad_names(engine, tmp_path):
    hello = shutil.copytree(EXAMPLES / "hello-make", tmp_path / "hello")
    proc = xbuild("--target", "rpi3", hello, "--push", "127.0.0.1:5000/x")
    assert proc.returncode == 6 and "Dockerfile" in proc.stderr
    flask = shutil.copytree(EXAMPLES / "flask-hello", tmp_path / "flask")
    proc = xbuild("--target", "rpi3", flask, "--push", "Bad Name!")
    assert proc.returncode == 6 and "repository" in proc.stderr and "Traceback" not in proc.stderr


def test_a_pi_zero_image_is_debian_armel_which_the_arm1176_runs(engine, tmp_path):
    """FROM debian:<suite> for rpi0: Debian armhf is ARMv7 (SIGILL on a Pi Zero), so the image is
    Debian armel, labelled arm/v6, and it runs as the arm1176."""
    project = make_project(tmp_path / "zero", {"Dockerfile": (
        "FROM debian:bookworm-slim\nRUN dpkg --print-architecture > /arch\nCMD [\"cat\", \"/arch\"]\n")})
    proc = xbuild("--target", "rpi0", project, "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    image = _load(result["artifacts"][0]["path"])
    assert (image.attrs["Architecture"], image.attrs.get("Variant")) == ("arm", "v6")
    run = xbuild("run", "--target", "rpi0", result["artifacts"][0]["path"])  # QEMU_CPU=arm1176
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "armel"

"""The build cache and publishing through the CLI, with a real S3 server as the store."""

from __future__ import annotations

import json
import os
import shutil
import uuid

import pytest

from tests.helpers import EXAMPLES, xbuild

pytestmark = pytest.mark.integration


@pytest.fixture
def project(tmp_path):
    return shutil.copytree(EXAMPLES / "hello-make", tmp_path / "hello-make")


def _build(project, env, *extra):
    proc = xbuild("--target", "rpi3", project, "--json", *extra, env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout), proc.stderr


def test_second_build_is_a_cache_hit_until_the_source_changes(engine, s3, project):
    env = s3.env(f"s3://xbuild-cache-{uuid.uuid4().hex[:8]}/c")
    env["XBUILD_CREATE_BUCKET"] = "1"
    first, _ = _build(project, env)
    assert first["cache"] == "miss"
    second, err = _build(project, env)
    assert second["cache"] == "hit" and "hit" in err
    assert second["artifacts"][0]["sha256"] == first["artifacts"][0]["sha256"]
    assert second["build_id"] == first["build_id"]
    os.utime(project / "hello.c", (1, 1))  # a new mtime is not a change
    assert _build(project, env)[0]["cache"] == "hit"
    (project / "hello.c").write_text((project / "hello.c").read_text() + "\n/* changed */\n")
    third, _ = _build(project, env)
    assert third["cache"] == "miss" and third["build_id"] != first["build_id"]
    assert _build(project, env, "--no-cache")[0]["cache"] == "miss"


def test_a_corrupted_cache_object_is_reported_and_replaced(engine, project, tmp_path):
    env = {"XBUILD_STORE": (tmp_path / "store").as_uri()}
    first, _ = _build(project, env)
    objects = tmp_path / "store" / "hello-make" / "objects" / "sha256"
    archive = objects / first["artifacts"][0]["sha256"]
    archive.write_bytes(b"bit rot")
    again, err = _build(project, env)
    assert again["cache"] == "miss" and "corrupted" in err
    assert again["artifacts"][0]["sha256"] == first["artifacts"][0]["sha256"]
    assert archive.read_bytes() != b"bit rot"  # replaced by the rebuild
    assert _build(project, env)[0]["cache"] == "hit"


def test_publish_then_list_and_get(engine, s3, project, tmp_path):
    env = s3.env(f"file://{tmp_path}/cache")
    url = f"s3://firmware-builds-{uuid.uuid4().hex[:6]}/myproj"
    built, _ = _build(project, env, "--publish", url, "--create-bucket")
    assert built["published"] == f"{url}/{built['build_id']}"
    listing = xbuild("artifacts", "ls", url, "--target", "rpi3", "--json", env=env)
    assert listing.returncode == 0, listing.stderr
    (record,) = json.loads(listing.stdout)["builds"]
    assert record["build_id"] == built["build_id"]
    got = xbuild("artifacts", "get", f"{url}/{built['build_id']}", "--out", tmp_path / "got", env=env)
    assert got.returncode == 0, got.stderr
    local = project / "xbuild-out" / "rpi3"
    for name in ("hello-make-rpi3.tar.gz", "SHA256SUMS", "manifest.json"):
        assert (tmp_path / "got" / name).read_bytes() == (local / name).read_bytes()
    # Credentials never reach the manifest, the log or the record.
    for path in list((tmp_path / "got").iterdir()):
        assert env["AWS_SECRET_ACCESS_KEY"] not in path.read_text(errors="replace")


@pytest.mark.parametrize("example", ["hello-make", "cmake-zlib", "autotools-hello", "handconf",
                                     "meson-hello"])
def test_every_example_verifies(engine, example):
    proc = xbuild("verify", "--target", "rpi3", EXAMPLES / example, "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert report["status"] == "reproducible" and report["files"] >= 2

"""The store contract, against a real S3-compatible server (SeaweedFS) and the file:// store alike:
publish, list, get with verification, corruption, interrupted publish, credentials, buckets, names."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

from xbuild.errors import ConfigError, StoreError
from xbuild.store import open_store, publish

pytestmark = pytest.mark.integration


def _out_dir(root: Path, size: int = 3000) -> Path:
    """An output directory shaped like a build's, with random (incompressible) content."""
    out = root / "out"
    out.mkdir(parents=True)
    (out / "demo-rpi3.tar.gz").write_bytes(os.urandom(size))
    (out / "manifest.json").write_text('{"name": "demo"}\n')
    (out / "build.log").write_text("compiling\n")
    from xbuild.host.archive import sha256_file
    (out / "SHA256SUMS").write_text(f"{sha256_file(out / 'demo-rpi3.tar.gz')}  demo-rpi3.tar.gz\n")
    return out


def _record(build_id: str = "rpi3-0123456789abcdef0123", target: str = "rpi3") -> dict:
    return {"schema": 1, "build_id": build_id, "project": "demo", "target": target,
            "mode": "cross", "recipe": "make", "cache_key": "k" * 64}


@pytest.fixture(params=["file", "s3"])
def store(request, tmp_path, monkeypatch):
    if request.param == "file":
        return open_store((tmp_path / "store").as_uri())
    server = request.getfixturevalue("s3_env")
    # One bucket for the session, a fresh prefix per test (a bucket is a SeaweedFS collection).
    return open_store(f"s3://xbuild-contract/{uuid.uuid4().hex[:12]}", create=True), server


def _store(store):
    return store[0] if isinstance(store, tuple) else store


def test_publish_list_get(store, tmp_path):
    s = _store(store)
    out = _out_dir(tmp_path)
    done = publish.publish(s, "", out, _record())
    assert done.url.endswith("/rpi3-0123456789abcdef0123")
    (listed,) = publish.list_builds(s, "")
    assert listed["build_id"] == "rpi3-0123456789abcdef0123" and listed["target"] == "rpi3"
    assert publish.list_builds(s, "", target="rpi0") == []
    assert json.loads(s.read("latest/rpi3")) == {"build_id": "rpi3-0123456789abcdef0123"}
    got = tmp_path / "got"
    publish.fetch(s, "", listed, got)
    for f in out.iterdir():
        assert (got / f.name).read_bytes() == f.read_bytes()


def test_same_content_is_stored_once(store, tmp_path):
    s = _store(store)
    out = _out_dir(tmp_path)
    publish.publish(s, "", out, _record("rpi3-aaaaaaaaaaaaaaaaaaaa"))
    publish.publish(s, "", out, _record("rpi3-bbbbbbbbbbbbbbbbbbbb"))
    objects = [k for k in s.list("") if k.startswith("objects/")]
    assert len(objects) == 4  # archive, manifest, log, sums: shared by both builds
    assert len(publish.list_builds(s, "")) == 2


def test_corrupted_object_is_detected(store, tmp_path):
    s = _store(store)
    record = publish.publish(s, "", _out_dir(tmp_path), _record()).record
    archive = next(f for f in record["files"] if f["name"].endswith(".tar.gz"))
    s.write(archive["object"], b"bit rot")  # behind xbuild's back
    with pytest.raises(publish.CorruptObject, match="corrupted"):
        publish.fetch(s, "", record, tmp_path / "got")
    assert not (tmp_path / "got").exists()  # nothing half-written
    assert not s.has(archive["object"], archive["sha256"])  # so the next publish replaces it


def test_unsafe_names_are_refused(store, tmp_path):
    s = _store(store)
    with pytest.raises(ConfigError):
        publish.publish(s, "", _out_dir(tmp_path), _record("../escape"))
    with pytest.raises(ConfigError):
        publish.read_record(s, "", "/etc")
    with pytest.raises(ConfigError):
        publish.read_record(s, "a/../../b", "x")


def test_s3_prefix_with_dotdot_is_refused(s3_env):
    with pytest.raises(ConfigError):
        open_store("s3://bucket-x/../other")


def test_wrong_credentials(s3_env, monkeypatch):
    open_store("s3://creds-bucket/p", create=True)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    with pytest.raises(StoreError, match="rejected the credentials") as err:
        open_store("s3://creds-bucket/p")
    assert "not-the-secret" not in err.value.message and "not-the-secret" not in (err.value.hint or "")


def test_missing_bucket_is_an_error_unless_asked_to_create(s3_env):
    name = f"missing-{uuid.uuid4().hex[:10]}"
    with pytest.raises(StoreError, match="does not exist") as err:
        open_store(f"s3://{name}/p")
    assert "--create-bucket" in err.value.hint
    open_store(f"s3://{name}/p", create=True)
    open_store(f"s3://{name}/p")  # now it exists


def test_interrupted_publish_leaves_no_visible_build_and_a_retry_completes(s3_env, monkeypatch, tmp_path):
    """Kill the server in the middle of a multipart upload, restart it, retry."""
    monkeypatch.setenv("XBUILD_S3_MULTIPART_MB", "5")
    monkeypatch.setenv("XBUILD_S3_PART_MB", "5")
    monkeypatch.setenv("XBUILD_S3_MAX_ATTEMPTS", "2")
    bucket = f"s3://interrupt-{uuid.uuid4().hex[:8]}/demo"
    s = open_store(bucket, create=True)
    out = _out_dir(tmp_path, size=12 << 20)  # three parts
    original_put = s.put_file

    def put_then_crash(key, path, sha256, progress=None):
        def on_part(n):
            s3_env.kill()  # dies after the first part is in
        return original_put(key, path, sha256, progress=on_part)

    monkeypatch.setattr(s, "put_file", put_then_crash)
    with pytest.raises(StoreError):
        publish.publish(s, "", out, _record())
    s3_env.start()
    reader = open_store(bucket)
    assert publish.list_builds(reader, "") == []          # no partial build is visible
    assert reader.read("rpi3-0123456789abcdef0123/manifest.json") is None
    publish.publish(reader, "", out, _record())            # the retry completes it
    (build,) = publish.list_builds(reader, "")
    publish.fetch(reader, "", build, tmp_path / "got")
    assert (tmp_path / "got/demo-rpi3.tar.gz").read_bytes() == (out / "demo-rpi3.tar.gz").read_bytes()


def test_cli_errors_for_stores(s3_env, tmp_path):
    from tests.helpers import xbuild
    bad = xbuild("artifacts", "ls", "s3://no-such-bucket-xyz/p")
    assert bad.returncode == 15 and "does not exist" in bad.stderr and "Traceback" not in bad.stderr
    creds = xbuild("artifacts", "ls", "s3://no-such-bucket-xyz/p", env={"AWS_SECRET_ACCESS_KEY": "nope"})
    assert creds.returncode == 15 and "credentials" in creds.stderr and "nope" not in creds.stderr
    dotdot = xbuild("artifacts", "get", "s3://bucket-abc/proj/..", "--out", tmp_path / "x")
    assert dotdot.returncode == 6 and "Traceback" not in dotdot.stderr

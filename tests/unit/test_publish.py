"""xbuild.store.publish on a real file:// store: publishing, listing, fetching, and the checks on records
read back (a store is shared: what it holds may be anyone's writing)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xbuild.errors import ConfigError, OutputDirInUse, StoreError
from xbuild.host.atomic import MARKER
from xbuild.store import open_store, publish


def output(tmp_path: Path, name: str = "out", content: bytes = b"archive bytes") -> Path:
    out = tmp_path / name
    out.mkdir()
    (out / "app-rpi3.tar.gz").write_bytes(content)
    (out / "manifest.json").write_text('{"xbuild": {}}\n')
    (out / "build.log").write_text("log\n")
    (out / MARKER).write_text("")  # xbuild's marker is not part of the build
    return out


def record(build_id="rpi3-aaaa", target="rpi3") -> dict:
    return {"schema": 1, "build_id": build_id, "project": "app", "target": target, "mode": "cross",
            "recipe": "make", "cache_key": "k", "source_tree_sha256": "s" * 64, "image": "sha256:i"}


@pytest.fixture
def store(tmp_path):
    return open_store((tmp_path / "store").as_uri())


def test_publish_then_fetch_gives_the_same_files(tmp_path, store):
    done = publish.publish(store, "proj", output(tmp_path), record())
    assert done.url.endswith("/proj/rpi3-aaaa")
    assert sorted(f["name"] for f in done.record["files"]) == ["app-rpi3.tar.gz", "build.log", "manifest.json"]
    got = publish.read_record(store, "proj", "rpi3-aaaa")
    assert got == done.record
    publish.fetch(store, "proj", got, tmp_path / "fetched")
    assert (tmp_path / "fetched" / "app-rpi3.tar.gz").read_bytes() == b"archive bytes"
    assert sorted(p.name for p in (tmp_path / "fetched").iterdir()) == [
        MARKER, "app-rpi3.tar.gz", "build.log", "manifest.json"]
    latest = json.loads((tmp_path / "store" / "proj" / "latest" / "rpi3").read_text())
    assert latest == {"build_id": "rpi3-aaaa"}


def test_objects_are_stored_once_by_content(tmp_path, store):
    publish.publish(store, "", output(tmp_path, "a"), record("rpi3-aaaa"))
    publish.publish(store, "", output(tmp_path, "b"), record("rpi3-bbbb"))
    objects = list((tmp_path / "store" / "objects" / "sha256").iterdir())
    assert len(objects) == 3  # the same three files: each object once


class Counting:
    """The real store, with every call it gets counted."""
    def __init__(self, store):
        self.store, self.calls = store, []
        self.url = store.url

    def __getattr__(self, name):
        fn = getattr(self.store, name)
        return lambda *a, **k: (self.calls.append(name), fn(*a, **k))[1]


def test_publishing_a_build_that_is_there_reads_its_record_and_writes_nothing(tmp_path, store):
    first = publish.publish(store, "proj", output(tmp_path), record())
    counting = Counting(store)
    again = publish.publish(counting, "proj", tmp_path / "out", record(), trust_record=True)
    assert counting.calls == ["read", "read"]  # the record and latest: no HEAD per object, no write
    assert again.record == first.record        # published_at included: the first publish's


def test_without_trust_every_object_is_checked_and_a_damaged_one_replaced(tmp_path, store):
    publish.publish(store, "proj", output(tmp_path), record())
    damaged = next((tmp_path / "store" / "proj" / "objects" / "sha256").iterdir())
    damaged.write_bytes(b"bit rot")
    publish.publish(store, "proj", tmp_path / "out", record())  # a rebuild after a corrupt hit
    assert damaged.read_bytes() != b"bit rot"


def test_a_record_that_differs_is_published_again(tmp_path, store):
    publish.publish(store, "proj", output(tmp_path), record())
    (tmp_path / "out" / "build.log").write_text("another log\n")  # the same id, other files
    counting = Counting(store)
    again = publish.publish(counting, "proj", tmp_path / "out", record(), trust_record=True)
    assert "put_file" in counting.calls and "write" in counting.calls
    assert publish.read_record(store, "proj", "rpi3-aaaa") == again.record
    log = next(f for f in again.record["files"] if f["name"] == "build.log")
    assert (tmp_path / "store" / "proj" / log["object"]).read_text() == "another log\n"


def test_list_builds_filters_by_target(tmp_path, store):
    publish.publish(store, "", output(tmp_path, "a"), record("rpi3-aaaa", "rpi3"))
    publish.publish(store, "", output(tmp_path, "b", b"other"), record("rpi4-bbbb", "rpi4"))
    assert sorted(r["build_id"] for r in publish.list_builds(store, "")) == ["rpi3-aaaa", "rpi4-bbbb"]
    assert [r["build_id"] for r in publish.list_builds(store, "", "rpi4")] == ["rpi4-bbbb"]
    assert publish.read_record(store, "", "rpi5-none") is None


def test_a_corrupted_object_is_refused_and_the_old_output_kept(tmp_path, store):
    done = publish.publish(store, "", output(tmp_path), record())
    sha = next(f["sha256"] for f in done.record["files"] if f["name"] == "app-rpi3.tar.gz")
    (tmp_path / "store" / "objects" / "sha256" / sha).write_bytes(b"bit rot")
    dest = output(tmp_path, "previous", b"previous build")
    with pytest.raises(publish.CorruptObject, match="app-rpi3.tar.gz"):
        publish.fetch(store, "", done.record, dest)
    assert (dest / "app-rpi3.tar.gz").read_bytes() == b"previous build"


def test_fetch_refuses_a_directory_of_the_users_files(tmp_path, store):
    done = publish.publish(store, "", output(tmp_path), record())
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes").write_text("mine")
    with pytest.raises(OutputDirInUse):
        publish.fetch(store, "", done.record, mine)
    assert [p.name for p in mine.iterdir()] == ["notes"]


def test_sha256sums_names_outside_the_record_are_not_followed(tmp_path, store):
    out = output(tmp_path)
    (tmp_path / "secret").write_text("outside")
    (out / "SHA256SUMS").write_text(f"{'0' * 64}  ../secret\n")
    done = publish.publish(store, "", out, record())
    publish.fetch(store, "", done.record, tmp_path / "fetched")  # not compared, not refused
    assert (tmp_path / "fetched" / "SHA256SUMS").is_file()


@pytest.mark.parametrize("bad_id", ["..", "a/b", "", "/abs"])
def test_build_ids_are_single_plain_names(store, bad_id):
    with pytest.raises(ConfigError):
        publish.read_record(store, "", bad_id)


def test_records_are_checked_when_read(tmp_path, store):
    publish.publish(store, "", output(tmp_path), record())
    path = tmp_path / "store" / "rpi3-aaaa" / "manifest.json"
    good = json.loads(path.read_text())
    for bad, why in [("[1, 2]", "not a JSON object"), ("{", "not valid JSON"),
                     (json.dumps({**good, "mode": None}), "'mode' must be"),
                     (json.dumps({**good, "files": [{**good["files"][0], "size": True}]}), "byte count"),
                     (json.dumps({**good, "files": [{**good["files"][0], "name": "x\n"}]}), "plain file name")]:
        path.write_text(bad)
        with pytest.raises(StoreError, match=why):
            publish.read_record(store, "", "rpi3-aaaa")


@pytest.mark.parametrize("url,hint", [("file://tmp/x", "file:///tmp/x"), ("file://host/", "file:///host/"),
                                      ("file:relative", "file:///absolute/path")])
def test_file_urls_with_a_host_or_no_path_are_refused(url, hint):
    with pytest.raises(StoreError) as exc:
        open_store(url)
    assert hint in exc.value.hint


def test_plain_paths_and_localhost_and_escaped_file_urls_are_stores(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert open_store("rel/store").root == tmp_path / "rel" / "store"
    assert open_store(f"file://localhost{tmp_path}/s").root == tmp_path / "s"
    spaced = tmp_path / "my store"
    assert open_store(spaced.as_uri()).root == spaced  # "my%20store" is the directory "my store"

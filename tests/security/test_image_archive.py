"""`xbuild run IMAGE.tar`: an image archive never names what the engine calls it (issue 16,
item 7). A crafted archive tagged xbuild/builder:<tag> used to replace that builder.

The archives here are the board's real runtime image (read from the engine, never changed),
re-tagged with a name under xbuild/ that no one else uses; what the test adds to the engine it
removes (a tag only: the image keeps its own names)."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import tarfile
import uuid
from pathlib import Path

import pytest

from tests.helpers import xbuild

pytestmark = [pytest.mark.security, pytest.mark.integration]


def _tags_like(prefix: str) -> set[str]:
    from xbuild.containers.engine import client
    return {t for img in client().images.list() for t in img.tags if t.startswith(prefix)}


@pytest.fixture(scope="module")
def saved(engine, tmp_path_factory) -> Path:
    """`docker save` of rpi3's runtime image (linux/arm), as the engine writes it."""
    from xbuild.board import targets
    from xbuild.containers import images
    from xbuild.containers.engine import client
    image = client().images.get(images.runtime(targets.get("rpi3"), lambda line: None).id)
    path = tmp_path_factory.mktemp("image") / "runtime.tar"
    with path.open("wb") as f:
        for chunk in image.save(named=False):
            f.write(chunk)
    return path


@pytest.fixture
def evil_name():
    """A name under xbuild/ that no one uses (and, on exit, removed: only the tag, if a broken
    `xbuild run` applied it, never the image it named)."""
    from docker.errors import APIError

    from xbuild.containers.engine import client
    suffix = uuid.uuid4().hex[:12]
    name = f"xbuild/builder:i16-evil-{suffix}"
    yield name
    for tag in (name, f"i16-two-{suffix}:rpi3", f"i16-three-{suffix}:rpi3"):
        with contextlib.suppress(APIError):
            client().images.remove(tag)


def _crafted(saved: Path, dest: Path, tag: str, architecture: str | None = None) -> Path:
    """saved, re-tagged `tag` in manifest.json and repositories; with `architecture`, its config
    says that instead (a config of its own, so another image id)."""
    repo, _, short = tag.rpartition(":")
    with tarfile.open(saved) as src, tarfile.open(dest, "w") as out:
        manifest = json.load(src.extractfile("manifest.json"))
        config_name = manifest[0]["Config"]
        for member in src.getmembers():
            if member.name in ("manifest.json", "repositories", "index.json"):
                continue
            if not member.isfile():
                out.addfile(member)
                continue
            data = src.extractfile(member).read()
            if member.name == config_name and architecture:
                doc = json.loads(data)
                doc["architecture"] = architecture
                data = json.dumps(doc).encode()
                config_name = hashlib.sha256(data).hexdigest() + ".json"
                member = tarfile.TarInfo(config_name)
            member.size = len(data)
            out.addfile(member, io.BytesIO(data))
        image_id = hashlib.sha256(src.extractfile(manifest[0]["Config"]).read()).hexdigest()
        for name, doc in (("manifest.json", [{**manifest[0], "Config": config_name, "RepoTags": [tag]}]),
                          ("repositories", {repo: {short: image_id}})):
            raw = json.dumps(doc).encode()
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            out.addfile(info, io.BytesIO(raw))
    return dest


def test_an_archives_own_tags_are_never_applied(saved, evil_name, tmp_path):
    """It runs (the board's architecture), under a name of xbuild's, and leaves no name behind."""
    archive = _crafted(saved, tmp_path / "evil.image.tar", evil_name)
    before = _tags_like("xbuild-run-")
    run = xbuild("run", "--target", "rpi3", archive, "--", "/bin/echo", "ran")
    assert run.returncode == 0 and run.stdout.strip() == "ran", run.stderr
    assert evil_name not in _tags_like("xbuild/"), "the archive's tag replaced an xbuild image"
    assert _tags_like("xbuild-run-") <= before


def test_the_architecture_is_checked_before_anything_is_loaded(saved, evil_name, tmp_path):
    archive = _crafted(saved, tmp_path / "amd64.image.tar", evil_name, architecture="amd64")
    run = xbuild("run", "--target", "rpi3", archive, "--", "/bin/true")
    assert run.returncode == 14 and "the image is amd64, not arm" in run.stderr, run.stderr
    assert evil_name not in _tags_like("xbuild/")


def test_an_archive_of_two_images_is_refused(saved, evil_name, tmp_path):
    two, three = (evil_name.replace("xbuild/builder:i16-evil", f"i16-{n}") + ":rpi3" for n in ("two", "three"))
    archive = _crafted(saved, tmp_path / "two.image.tar", two)
    with tarfile.open(archive) as tar:
        members = [(m, tar.extractfile(m).read() if m.isfile() else b"") for m in tar.getmembers()]
    with tarfile.open(archive, "w") as out:
        for member, data in members:
            if member.name == "manifest.json":
                (entry,) = json.loads(data)
                data = json.dumps([entry, {**entry, "RepoTags": [three]}]).encode()
                member.size = len(data)
            out.addfile(member, io.BytesIO(data) if member.isfile() else None)
    run = xbuild("run", "--target", "rpi3", archive, "--", "/bin/true")
    assert run.returncode == 14 and "one image" in run.stderr, run.stderr
    assert not {two, three} & _tags_like("i16-")

"""Loading an image archive (`docker save`'s format) that may come from anywhere, `xbuild run`'s
.image.tar, without letting it choose what the engine calls it.

`docker load` applies whatever names an archive gives (manifest.json's RepoTags, the legacy
`repositories`, an OCI index's annotations): an archive naming xbuild/builder:<tag> would replace
the builder that every later build uses. So the engine never gets the archive itself, but a copy
made here: the one image's config and layers, and a manifest.json whose only name is one xbuild
chooses (xbuild-run-<random>:<target>, never an xbuild/ name), nothing else. The config must say
the board's architecture before anything is sent, and the loaded image's id must be the hash of
that config (what was checked is what runs). On the way out the name goes again (the image too,
unless another name holds it)."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import posixpath
import tarfile
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from xbuild.board.targets import Target
from xbuild.errors import BadArtifact
from xbuild.host.archive import safe_members
from xbuild.schema import json_value

MAX_ENTRIES = 10_000          # a `docker save` of one image holds a few per layer
MAX_JSON = 8 << 20            # manifest.json, the image config
RUN_REPO = "xbuild-run-"      # never under xbuild/ (images.REPO_PREFIX): those are xbuild's own


@contextlib.contextmanager
def loaded(archive: Path, target: Target) -> Iterator:
    """The archive's image, checked for the board's architecture and loaded under a name of
    xbuild's choosing; that name is removed again on exit."""
    from docker.errors import APIError

    from xbuild.containers.engine import client
    name = f"{RUN_REPO}{uuid.uuid4().hex[:10]}:{target.name}"
    with tempfile.TemporaryFile(prefix="xbuild-image-") as copy:
        image_id = _rewrite(archive, target, name, copy)
        copy.seek(0)
        try:
            for message in client().api.load_image(copy, quiet=True):
                if "error" in message:  # the engine reports a failed load in the stream
                    raise BadArtifact(f"{archive}: the engine refused the image: {message['error']}")
            copy.close()  # the disk it takes is not needed while the program runs
            image = client().images.get(name)
            if image.id != image_id:
                raise BadArtifact(f"{archive}: the engine loaded {image.id}, not the image checked")
            yield image
        finally:
            with contextlib.suppress(APIError):
                client().images.remove(name)


def _rewrite(archive: Path, target: Target, name: str, dest) -> str:
    """Write the copy the engine loads into dest; returns the image's id."""
    try:
        with tarfile.open(archive) as tar:
            files = _index(tar, str(archive))
            manifest = _manifest(tar, files, archive)
            config_name, layers = manifest["Config"], manifest["Layers"]
            config = _read(tar, files, config_name, archive)
            _check_platform(config, target, archive)
            with tarfile.open(fileobj=dest, mode="w", format=tarfile.PAX_FORMAT) as out:
                for member_name in (config_name, *layers):
                    member = files[member_name]
                    info = tarfile.TarInfo(member_name)
                    info.size, info.mode = member.size, 0o644
                    out.addfile(info, tar.extractfile(member))
                _add(out, "manifest.json", [{"Config": config_name, "RepoTags": [name], "Layers": layers}])
    except (OSError, tarfile.TarError, EOFError) as exc:
        raise BadArtifact(f"{archive}: not a readable image archive ({exc})") from None
    return "sha256:" + hashlib.sha256(config).hexdigest()


def _index(tar: tarfile.TarFile, where: str) -> dict[str, tarfile.TarInfo]:
    """Every regular file by name, a link (docker save links a layer shared by two images) by
    the name of the file it leads to; checked as every archive xbuild reads is."""
    files: dict[str, tarfile.TarInfo] = {}
    links: dict[str, str] = {}
    for count, member in enumerate(safe_members(tar, where)):
        if count > MAX_ENTRIES:
            raise BadArtifact(f"{where}: over {MAX_ENTRIES} entries: not one image's `docker save`")
        if member.isfile():
            files[member.name] = member
        elif member.issym() or member.islnk():
            base = posixpath.dirname(member.name) if member.issym() else ""
            links[member.name] = posixpath.normpath(posixpath.join(base, member.linkname))
    for link, to in links.items():
        if to in files:
            files[link] = files[to]
    return files


def _manifest(tar: tarfile.TarFile, files: dict, archive: Path) -> dict:
    """manifest.json's one image: its config and its layers, each a file of the archive."""
    doc = json_value(_read(tar, files, "manifest.json", archive))
    if not (isinstance(doc, list) and len(doc) == 1 and isinstance(doc[0], dict)):
        raise BadArtifact(f"{archive}: manifest.json must describe one image",
                          hint="give the .image.tar of one xbuild build")
    entry = doc[0]
    config, layers = entry.get("Config"), entry.get("Layers")
    if not (isinstance(config, str) and isinstance(layers, list) and all(isinstance(x, str) for x in layers)
            and all(n in files for n in (config, *layers))):
        raise BadArtifact(f"{archive}: manifest.json names a config or layers the archive does not hold")
    return {"Config": config, "Layers": layers}


def _read(tar: tarfile.TarFile, files: dict, name: str, archive: Path) -> bytes:
    member = files.get(name)
    if member is None or member.size > MAX_JSON:
        raise BadArtifact(f"{archive}: no {name} of at most {MAX_JSON >> 20} MB")
    f = tar.extractfile(member)
    assert f is not None  # a regular file
    return f.read(MAX_JSON)


def _check_platform(config: bytes, target: Target, archive: Path) -> None:
    try:
        arch = json_value(config).get("architecture")
    except (ValueError, AttributeError):
        raise BadArtifact(f"{archive}: the image config is not a JSON object") from None
    _, want, _ = target.os_arch_variant
    if arch != want:
        raise BadArtifact(f"{archive}: the image is {arch}, not {want} for {target.name}",
                          hint="run it with the target it was built for")


def _add(out: tarfile.TarFile, name: str, doc) -> None:
    data = json.dumps(doc).encode()
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o644
    out.addfile(info, io.BytesIO(data))

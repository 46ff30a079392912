"""`xbuild verify --against BUILD`: rebuild a build from its recorded inputs, on this machine, and
compare every file bit for bit, in the manner of Debian's rebuilders.

BUILD is an output folder or a published build (STORE_URL/<build-id>). The inputs are the ones its
manifest records: the source (the tree whose hash the manifest names: the project given, or the
source archive `--publish` stored beside the build), the board, release, mode and options, the
build's SOURCE_DATE_EPOCH and version; the builder image is made again from the same recipe
(images are named by what they are made of)."""

from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path

from xbuild.errors import ConfigError, StoreError
from xbuild.host import safefs
from xbuild.host.archive import extract
from xbuild.pipeline import spec as specs
from xbuild.pipeline.build import run_build
from xbuild.pipeline.context import NO_CACHE
from xbuild.pipeline.observer import Observer
from xbuild.project import sources
from xbuild.request import BuildRequest, Mode
from xbuild.store import is_segment

SOURCE_NAME = "source.tar.gz"  # the project as published beside a build (delivery.Publish)


def _reference(build: str, into: Path) -> tuple[Path, dict | None]:
    """(a folder holding the build's files, the store record when it was published)."""
    if Path(build).is_dir():
        return Path(build), None
    from xbuild.store import publish
    store, record = publish.open_build(build)
    publish.fetch(store, "", record, into / "reference", sums=False)
    if record.get("source"):
        publish.get_source(store, "", record, into / SOURCE_NAME)
    return into / "reference", record


def _source(project: str | None, manifest: dict, record: dict | None, work: Path) -> Path:
    """The project the build was made from: the one given, or the published source, each checked
    against the tree hash the manifest records."""
    want = manifest["source_tree_sha256"]
    if project is None:
        archive = work / SOURCE_NAME
        if record is None or not archive.is_file():
            raise ConfigError("the build's source is not with it (only `--publish` stores it)",
                              hint="give the project folder too: xbuild verify --against BUILD PROJECT")
        tree = work / "src"
        extract(archive, tree, "the published source")
    else:
        tree = Path(project)
    found = sources.tree_hash(tree, sources.excluder(tree, tree / specs.OUT_DIRNAME, specs.OUT_DIRNAME))
    if found != want:
        raise ConfigError(f"{tree} is not the source of this build: its tree hash is {found[:16]}..., the "
                          f"build's {want[:16]}...", hint="check out the revision the build was made from")
    return tree


def against(build: str, project: str | None, progress: Observer) -> dict:
    with tempfile.TemporaryDirectory(prefix="xbuild-rebuild-") as tmp:
        work = Path(tmp)
        reference, record = _reference(build, work)
        manifest = _manifest(reference, build)
        options = manifest["options"]
        tree = _source(project, manifest, record, work)
        request = BuildRequest(options["target"], os=options["os"], mode=Mode(options["mode"]),
                               static=options["static"], deb=options["deb"], keep_debug=options["keep_debug"],
                               packages=tuple(options.get("packages", ())))
        spec = specs.resolve(tree, request, out=work / "rebuilt")
        # What the project's folder or git history gave the first build (its name, version, time)
        # is recorded: a copy in another folder, without its .git, gets the same.
        spec = dataclasses.replace(spec, name=manifest["name"], source_date_epoch=options["source_date_epoch"],
                                   version=options["version"])
        progress.phase("verify", f"rebuilding {manifest['name']} for {options['target']} from its recorded inputs")
        run_build(spec, progress, cache=NO_CACHE, compiler_cache=False)
        rebuilt = json.loads((work / "rebuilt" / "manifest.json").read_text())
        # The reference's archives as they are, not as its manifest says: what is compared is what
        # a user would install.
        first = _files(manifest) | {f"(archive) {a['name']}": _digest(reference / a["name"])
                                    for a in manifest["artifacts"]}
        second = _files(rebuilt)
        differ = sorted(k for k in first.keys() | second.keys() if first.get(k) != second.get(k))
        return {"status": "reproducible" if not differ else "differs", "target": options["target"],
                "against": build, "files": len(first), "differences": differ}


MAX_MANIFEST = 64 << 20  # as attest verify reads a build's documents


def _manifest(reference: Path, build: str) -> dict:
    """The reference's manifest, read bounded and checked where it becomes a path or a request: a
    published build is anyone's writing, and its name, version and artifact names name files here."""
    raw = safefs.read_prefix(reference / "manifest.json", MAX_MANIFEST + 1) \
        if safefs.is_regular(reference / "manifest.json") else b""
    try:
        manifest = json.loads(raw)
        options = manifest["options"]
        fine = (is_segment(manifest["name"]) and isinstance(options["version"], str)
                and is_segment(options["version"]) and type(options["source_date_epoch"]) is int
                and all(isinstance(options[k], str) for k in ("target", "os"))
                and options["mode"] in [m.value for m in Mode]
                and isinstance(manifest["source_tree_sha256"], str)
                and all(is_segment(a["name"]) and isinstance(a["sha256"], str) for a in manifest["artifacts"])
                and all(isinstance(f["path"], str) and isinstance(f["sha256"], str) for f in manifest["files"]))
    except (ValueError, TypeError, KeyError):
        fine = False
    if not fine or len(raw) > MAX_MANIFEST:
        raise StoreError(f"{build}: its manifest.json is not one xbuild wrote (missing, too large, or a "
                         "name, version or option that is not what a build records)",
                         hint="check the build's address; a build someone altered cannot be rebuilt from")
    return manifest


def _digest(path: Path) -> str:
    from xbuild.host.archive import sha256_file
    return sha256_file(path) if path.is_file() and not path.is_symlink() else "(missing)"


def _files(manifest: dict) -> dict[str, str]:
    files = {f["path"]: f["sha256"] for f in manifest["files"]}
    files.update({f"(archive) {a['name']}": a["sha256"] for a in manifest["artifacts"]})
    return files

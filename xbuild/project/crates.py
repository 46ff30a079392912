"""A Cargo project's dependencies, fetched on the host (no network in the sandbox), in Python:
no cargo runs here, and nothing of the project's .cargo/config acts (credential providers,
`net.git-fetch-with-cli` and the like run programs). The project is data: its Cargo.lock names
exactly which crates, at which version, with which sha256; those are downloaded from
XBUILD_CARGO_REGISTRY (`<registry>/<name>/<name>-<version>.crate`, the crates.io download
layout), each bounded in size and time, checked against the lock's checksum before it is kept
(cached by that checksum), then unpacked safely into a directory source
(`<name>-<version>/` with its `.cargo-checksum.json`) that the build reads offline.

Only crates.io sources are fetched: a git dependency or another registry in the lock is refused
with a clear error (vendor them: `cargo vendor`). A vendored project (a source replacement in
its .cargo/config.toml, which the sandboxed cargo reads) needs no fetch at all."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

from xbuild import environment
from xbuild.errors import CrateFetchFailed, CratesNotLocked, XBuildError
from xbuild.host import archive, downloads, safefs
from xbuild.host.downloads import site as _site

CRATES_IO = "registry+https://github.com/rust-lang/crates.io-index"
REGISTRY = "XBUILD_CARGO_REGISTRY"
MAX_LOCK = 8 << 20        # Cargo.lock read at most this far (a large workspace's is ~200 KB)
MAX_CRATE = 64 << 20      # one .crate, compressed (crates.io caps uploads at 10 MB)
MAX_UNPACKED = 512 << 20  # one crate unpacked
MAX_FILES = 20_000        # entries of one crate
MAX_CRATES = 5_000        # crates in one lock
TIMEOUT = 120             # seconds for one crate
HTTP_TIMEOUT = 20         # seconds to connect / between bytes
# A lock's name and version join a URL and a path: plain names only (Cargo's own rules are
# stricter: ASCII alphanumerics, - and _; SemVer with pre-release and build metadata).
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}\Z")
_VERSION = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+(?:[-+][0-9A-Za-z.+-]{1,100})?\Z")
_SHA256 = re.compile(r"[0-9a-f]{64}\Z")
VENDOR_HINT = ("vendor the dependencies (`cargo vendor`, with the .cargo/config.toml it prints) "
               "and build again: a vendored project builds as it is")


@dataclass(frozen=True)
class Crate:
    name: str
    version: str
    checksum: str

    @property
    def dirname(self) -> str:
        return f"{self.name}-{self.version}"

    def to_json(self) -> dict:
        return {"name": self.name, "version": self.version, "checksum": self.checksum}


def vendored(project: Path) -> bool:
    """Whether the project replaces crates.io by a source of its own (`cargo vendor`'s
    .cargo/config.toml): read as data, bounded, like a detection marker; the sandboxed cargo
    acts on it, the host never does."""
    for name in (".cargo/config.toml", ".cargo/config"):
        path = project / name
        if not safefs.is_regular(path):
            continue
        with contextlib.suppress(OSError):
            text = safefs.read_prefix(path, MAX_LOCK).decode("utf-8", "replace")
            if "replace-with" in text and "directory" in text:
                return True
    return False


def locked(project: Path) -> list[Crate] | None:
    """The registry crates the project's Cargo.lock names (None: no lock). A git or non-crates.io
    source is CratesNotLocked: they cannot be fetched by checksum."""
    path = project / "Cargo.lock"
    if not path.exists() and not path.is_symlink():
        return None
    if not safefs.is_regular(path):
        raise CratesNotLocked(f"{path} is not a regular file", hint="commit Cargo.lock as a plain file")
    raw = safefs.read_prefix(path, MAX_LOCK + 1)
    if len(raw) > MAX_LOCK:
        raise CratesNotLocked(f"{path} is larger than {MAX_LOCK >> 20} MB", hint=VENDOR_HINT)
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise CratesNotLocked(f"{path} is not a readable lock file: {exc}",
                              hint="run `cargo generate-lockfile` and commit Cargo.lock") from None
    packages = data.get("package", [])
    if not isinstance(packages, list) or len(packages) > MAX_CRATES:
        raise CratesNotLocked(f"{path}: [[package]] is not a list of at most {MAX_CRATES} crates",
                              hint=VENDOR_HINT)
    return [c for p in packages if (c := _crate(path, p)) is not None]


def _crate(lock: Path, p: object) -> Crate | None:
    if not isinstance(p, dict):
        raise CratesNotLocked(f"{lock}: a [[package]] entry is not a table", hint=VENDOR_HINT)
    name, version, source = p.get("name"), p.get("version"), p.get("source")
    if source is None:  # a workspace member or a path dependency: part of the project
        return None
    what = f"{lock}: {name} {version}"
    if not isinstance(source, str) or not source.startswith("registry+"):
        kind = "git" if isinstance(source, str) and source.startswith("git+") else "non-registry"
        raise CratesNotLocked(f"{what} comes from a {kind} source ({str(source)[:200]}), which "
                              "xbuild does not fetch: only crates.io crates, by checksum", hint=VENDOR_HINT)
    if source != CRATES_IO:
        raise CratesNotLocked(f"{what} comes from another registry than crates.io ({source[:200]}), "
                              "which xbuild does not fetch", hint=VENDOR_HINT)
    checksum = p.get("checksum")
    if not (isinstance(name, str) and _NAME.match(name) and isinstance(version, str)
            and _VERSION.match(version) and isinstance(checksum, str) and _SHA256.match(checksum)):
        raise CratesNotLocked(f"{lock}: the entry {str(name)[:64]!r} {str(version)[:64]!r} has no valid "
                              "name, version and sha256 checksum",
                              hint="run `cargo generate-lockfile` and commit Cargo.lock")
    return Crate(name, version, checksum)


def registry() -> str:
    return environment.text(REGISTRY).rstrip("/")


def fetch(crates: list[Crate], cache: Path, dest: Path, log=lambda line: None) -> None:
    """Each crate, from `cache` (by checksum) or downloaded into it, unpacked into `dest` as a
    Cargo directory source. Nothing unchecked is ever kept in the cache."""
    cache.mkdir(parents=True, exist_ok=True)
    dest.mkdir(parents=True, exist_ok=True)
    base = registry()
    for crate in crates:
        kept = cache / f"{crate.checksum}.crate"
        if not safefs.is_regular(kept):
            log(f"fetching {crate.dirname} from {_site(base)}")
            _download(f"{base}/{crate.name}/{crate.dirname}.crate", crate, kept)
        unpack(kept, crate, dest)


def _download(url: str, crate: Crate, kept: Path) -> None:
    """url into `kept` only when it is at most MAX_CRATE bytes, arrived within TIMEOUT and its
    sha256 is the lock's."""
    def fill(out) -> None:
        try:
            got = downloads.get(url, out, limit=MAX_CRATE, seconds=TIMEOUT, timeout=HTTP_TIMEOUT)
        except downloads.NotFound:
            raise CrateFetchFailed(f"the registry {_site(url)} has no {crate.dirname}",
                                   hint=f"check {REGISTRY}, or {VENDOR_HINT}") from None
        except downloads.TooLarge:
            raise CrateFetchFailed(f"{crate.dirname} is larger than {MAX_CRATE >> 20} MB",
                                   hint=VENDOR_HINT) from None
        except downloads.TooSlow:
            raise CrateFetchFailed(f"{crate.dirname} did not arrive within {TIMEOUT} s",
                                   hint=VENDOR_HINT) from None
        except downloads.Failed as exc:  # unreachable (an answer of another type is never asked)
            raise CrateFetchFailed(f"the crate registry {_site(url)} could not be reached: {exc}",
                                   hint=f"check {REGISTRY}, or {VENDOR_HINT}") from None
        if got != crate.checksum:
            raise CrateFetchFailed(f"{crate.dirname} from {_site(url)} has sha256 {got}, "
                                   f"and Cargo.lock says {crate.checksum}: not used",
                                   hint="the registry serves another file than the one locked; "
                                        "check the lock and the registry")

    safefs.write_replacing(kept, fill)  # renamed into the cache only when it was checked


def unpack(crate_file: Path, crate: Crate, dest: Path) -> None:
    """A .crate (a tar.gz of `<name>-<version>/`) into dest/<name>-<version>/ with the checksum
    file a directory source needs; an entry outside that folder, a link out of it, a device, or
    too much is refused (host/archive.py)."""
    target = dest / crate.dirname
    try:
        tmp = Path(tempfile.mkdtemp(prefix=".unpack-", dir=dest))
        try:
            archive.extract(crate_file, tmp, f"the crate {crate.dirname}", limit=MAX_UNPACKED,
                            files=MAX_FILES, depth=64)
            top = [p.name for p in tmp.iterdir()]
            if top != [crate.dirname] or not (tmp / crate.dirname).is_dir() or (tmp / crate.dirname).is_symlink():
                raise CrateFetchFailed(f"the crate {crate.dirname} holds {', '.join(sorted(top)[:5]) or 'nothing'} "
                                       f"at its top, not the one folder {crate.dirname}/")
            manifest = tmp / crate.dirname / "Cargo.toml"
            if not safefs.is_regular(manifest):
                raise CrateFetchFailed(f"the crate {crate.dirname} has no Cargo.toml")
            # An empty files map: cargo checks no file, only the package's checksum against the lock.
            (tmp / crate.dirname / ".cargo-checksum.json").write_text(
                json.dumps({"package": crate.checksum, "files": {}}))
            if target.exists():
                shutil.rmtree(target)
            (tmp / crate.dirname).rename(target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    except XBuildError as exc:
        if isinstance(exc, CrateFetchFailed):
            raise
        raise CrateFetchFailed(f"the crate {crate.dirname} was refused: {exc.message}") from None


MAX_MANIFESTS = 200  # Cargo.toml files read to tell whether a lock-less project needs crates


def needs_crates(project: Path) -> bool:
    """Whether a project without a Cargo.lock depends on any crate it does not hold itself: a
    dependency that is not a `path` one, in its Cargo.toml, its workspace members' (those named
    without a glob) or its path dependencies' (read as data, bounded). Unsure (a glob, a manifest
    that cannot be read) counts as needing them."""
    root = _manifest(project)
    if root is None:
        return True
    shared = root.get("workspace", {}).get("dependencies", {}) if isinstance(root.get("workspace"), dict) else {}
    members = root.get("workspace", {}).get("members", []) if isinstance(root.get("workspace"), dict) else []
    todo: list[Path] = [project]
    if not isinstance(members, list) or any(not isinstance(m, str) or any(c in m for c in "*?[") for m in members):
        return True
    todo += [project / m for m in members]
    seen: set[Path] = set()
    while todo:
        folder = todo.pop()
        try:
            folder = folder.resolve()
        except OSError:
            return True
        if folder in seen:
            continue
        if len(seen) >= MAX_MANIFESTS or project.resolve() not in (folder, *folder.parents):
            return True  # too many, or a path out of the project (not in the build's copy)
        seen.add(folder)
        manifest = root if folder == project.resolve() else _manifest(folder)
        if manifest is None:
            return True
        for dep in _dependencies(manifest):
            if isinstance(dep, dict) and dep.get("workspace") is True:
                continue  # named in [workspace.dependencies], checked below
            if not isinstance(dep, dict) or "path" not in dep or "git" in dep:
                return True
            todo.append(folder / str(dep["path"]))
    for dep in shared.values() if isinstance(shared, dict) else ():
        if not isinstance(dep, dict) or "path" not in dep or "git" in dep:
            return True
    return False


def _manifest(folder: Path) -> dict | None:
    path = folder / "Cargo.toml"
    if not safefs.is_regular(path):
        return None
    try:
        return tomllib.loads(safefs.read_prefix(path, MAX_LOCK).decode("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None


def _dependencies(manifest: dict) -> list:
    """Every dependency's value, of every kind, for every target."""
    tables = [manifest]
    target = manifest.get("target")
    if isinstance(target, dict):
        tables += [t for t in target.values() if isinstance(t, dict)]
    out: list = []
    for table in tables:
        for kind in ("dependencies", "dev-dependencies", "build-dependencies", "dev_dependencies",
                     "build_dependencies"):
            deps = table.get(kind)
            if isinstance(deps, dict):
                out += deps.values()
    return out

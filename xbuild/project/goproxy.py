"""A Go module's dependencies fetched on the host, for a sandbox that has no network (docs/go.md):
exactly the module versions the project's go.sum names, from a module proxy (the GOPROXY
protocol: `<module>/@v/<version>.mod|.zip`), each checked against go.sum's `h1:` before it is
kept, laid out as a GOPROXY tree the build reads with `GOPROXY=file://…` (Go checks go.sum
against it once more itself).

No `go` runs on the host: go.mod and go.sum are the project's, untrusted, and `go mod download`
would follow a `toolchain` line or a `replace` to a host path. go.sum names every module version
the build needs (Go refuses to build without its line), so nothing is resolved here. A module a
proxy does not serve (a private one) is vendored by its project instead (`go mod vendor`)."""

from __future__ import annotations

import os
import re
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from xbuild.errors import ConfigError, GoModuleError, GoModuleMismatch, IndexUnreachable, PackageUnavailable
from xbuild.host.archive import max_output
from xbuild.host.safefs import is_regular
from xbuild.project.gomodule import MAX_ZIP, Sum, escape, hash_go_mod, hash_zip

PROXY = "https://proxy.golang.org"
MAX_MOD = 16 << 20  # Go's own limit on a go.mod file (modfetch's MaxGoMod)
TIMEOUT = 60
TOTAL_SECONDS = 1800  # the whole fetch, every module of go.sum
MAX_SUMS = 10_000  # go.sum lines: a large program's is a few hundred
# golang.org/x/mod/module.CheckPath, in short: slash-separated elements of these characters, none
# empty, none starting or ending with a dot; a version is semantic (CheckPathMajor aside).
_ELEMENT = r"[A-Za-z0-9_~+-](?:[A-Za-z0-9._~+-]*[A-Za-z0-9_~+-])?"
_PATH = re.compile(rf"{_ELEMENT}(?:/{_ELEMENT})*")
_VERSION = re.compile(r"v\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+incompatible)?")


@dataclass(frozen=True)
class Fetched:
    module: str
    version: str
    sum: str          # the zip's h1: (go.sum's), or the go.mod's for a go.mod-only line

    def to_json(self) -> dict:
        return {"module": self.module, "version": self.version, "h1": self.sum}


def check(entry: Sum) -> None:
    version = entry.version.removesuffix("/go.mod")
    if not _PATH.fullmatch(entry.module) or ".." in entry.module.split("/"):
        raise GoModuleError(f"go.sum names {entry.module[:200]!r}, which is not a Go module path",
                          hint="regenerate go.sum with `go mod tidy`")
    if not _VERSION.fullmatch(version):
        raise GoModuleError(f"go.sum gives {entry.module} the version {version[:100]!r}, which is not "
                          "a module version", hint="regenerate go.sum with `go mod tidy`")


def _get(url: str, dest: Path, limit: int, deadline: float = float("inf"),
         check: Callable[[Path], None] = lambda path: None) -> None:
    """url into dest, whole and checked or not at all: a temporary file, checked, then renamed
    (another build may be reading dest, and must never see a file that failed its check)."""
    part = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    try:
        _download(url, part, limit, deadline)
        check(part)
        os.replace(part, dest)
    finally:
        part.unlink(missing_ok=True)


def _download(url: str, dest: Path, limit: int, deadline: float) -> None:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response, dest.open("wb") as out:
            size = 0
            while chunk := response.read(1 << 16):
                if time.monotonic() > deadline:  # a proxy that trickles: each read in time, the whole not
                    raise GoModuleError(f"fetching go.sum's modules took more than {TOTAL_SECONDS} s "
                                        f"(at {url})", hint="vendor the dependencies (`go mod vendor`)")
                size += len(chunk)
                if size > limit:
                    raise GoModuleError(f"{url} is larger than {limit} bytes: more than Go allows for one "
                                          "file, or than is left of XBUILD_MAX_OUTPUT_MB for the fetch")
                out.write(chunk)
    except urllib.error.HTTPError as exc:
        if exc.code in (404, 410):  # the proxy protocol's "no such module or version"
            raise PackageUnavailable(f"the Go module proxy has no {url.rsplit('/@v/', 1)[0]} "
                                     f"{url.rsplit('/', 1)[1]} ({exc.code})",
                                     hint="a private module or one the proxy does not serve: vendor "
                                          "the dependencies (`go mod vendor`) and commit vendor/") from None
        raise IndexUnreachable(f"the Go module proxy answered {exc.code} for {url}") from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, FileNotFoundError):  # a file:// proxy's 404
            raise PackageUnavailable(f"the Go module proxy has no {url}",
                                     hint="vendor the dependencies (`go mod vendor`) and commit vendor/") from None
        raise IndexUnreachable(f"the Go module proxy is not reachable: {reason} ({url})",
                               hint="check the network; or vendor the dependencies (`go mod vendor`) "
                                    "and commit vendor/, which needs no network") from None


def fetch(sums: list[Sum], dest: Path, *, proxy: str = PROXY,
          log: Callable[[str], None] = lambda line: None, total: int | None = None) -> list[Fetched]:
    """Every module version of `sums` fetched from `proxy` into `dest`, a GOPROXY tree
    (`<escaped module>/@v/<escaped version>.mod|.zip`), each checked against its go.sum hash.
    A version with only a `/go.mod` line gets its go.mod alone: Go reads it to resolve the module
    graph, never its code. What it downloads is bounded: each file as Go bounds it, all of them
    together by `total` bytes (XBUILD_MAX_OUTPUT_MB) and TOTAL_SECONDS."""
    if len(sums) > MAX_SUMS:
        raise GoModuleError(f"go.sum has {len(sums)} lines, more than xbuild fetches ({MAX_SUMS})",
                          hint="vendor the dependencies (`go mod vendor`) and commit vendor/")
    for entry in sums:
        check(entry)
    zips = {(s.module, s.version): s.hash for s in sums if not s.go_mod_only}
    mods = {(s.module, s.version.removesuffix("/go.mod")): s.hash for s in sums if s.go_mod_only}
    missing = sorted(set(zips) - set(mods))
    if missing:
        module, version = missing[0]
        raise GoModuleError(f"go.sum has {module} {version} without its /go.mod line",
                          hint="regenerate go.sum with `go mod tidy`")
    out, budget = [], _Budget(total or max_output(), time.monotonic() + TOTAL_SECONDS)
    for (module, version), wanted in sorted(mods.items()):
        where = dest / escape(module) / "@v"
        where.mkdir(parents=True, exist_ok=True)
        base = f"{proxy.rstrip('/')}/{escape(module)}/@v/{escape(version)}"
        mod = where / f"{escape(version)}.mod"
        if not _kept(mod, _hash_mod_file, wanted):
            budget.get(base + ".mod", mod, MAX_MOD, _verifier(module, version + "/go.mod", _hash_mod_file, wanted))
        if (module, version) in zips:
            zipped = where / f"{escape(version)}.zip"
            if not _kept(zipped, hash_zip, zips[(module, version)]):
                log(f"go module {module} {version}")
                budget.get(base + ".zip", zipped, MAX_ZIP, _verifier(module, version, hash_zip,
                                                                     zips[(module, version)]))
            out.append(Fetched(module, version, zips[(module, version)]))
        else:
            out.append(Fetched(module, version + "/go.mod", wanted))
    return out


@dataclass
class _Budget:
    """What one fetch may still download, and until when."""
    left: int
    deadline: float

    def get(self, url: str, dest: Path, limit: int, check: Callable[[Path], None]) -> None:
        if time.monotonic() > self.deadline:
            raise GoModuleError(f"fetching go.sum's modules took more than {TOTAL_SECONDS} s",
                                hint="vendor the dependencies (`go mod vendor`) and commit vendor/")
        if self.left <= 0:
            raise GoModuleError(f"go.sum's modules add up to more than {max_output() >> 20} MB "
                                "(XBUILD_MAX_OUTPUT_MB)", hint="vendor the dependencies (`go mod vendor`)")
        _get(url, dest, min(limit, self.left), self.deadline, check)
        self.left -= dest.stat().st_size


def _hash_mod_file(path: Path) -> str:
    return hash_go_mod(path.read_bytes())


def _kept(path: Path, digest: Callable[[Path], str], wanted: str) -> bool:
    """A file an earlier fetch kept (checked then, checked again now: the cache is only a cache)."""
    if not is_regular(path):
        return False
    try:
        return digest(path) == wanted
    except (OSError, ValueError, zipfile.BadZipFile, ConfigError):
        return False


def _verifier(module: str, version: str, digest: Callable[[Path], str], wanted: str) -> Callable[[Path], None]:
    def check(path: Path) -> None:
        try:
            got = digest(path)
        except (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError, EOFError, ValueError) as exc:
            raise GoModuleMismatch(f"{module} {version} from the Go module proxy is not a module zip "
                                   f"({str(exc)[:200]}); go.sum says {wanted}") from None
        _verify(module, version, got, wanted)
    return check


def _verify(module: str, version: str, got: str, wanted: str) -> None:
    if got != wanted:
        raise GoModuleMismatch(
            f"{module} {version} from the Go module proxy does not match go.sum: {got}, go.sum says {wanted}",
            hint="the module changed since go.sum was written (or the proxy serves another one): "
                 "check it, then `go mod tidy`; vendoring (`go mod vendor`) builds from vendor/ alone")

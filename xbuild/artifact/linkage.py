"""The gate's link check: is every symbol the artifact's programs and libraries leave undefined
defined by the artifact itself or by the release's libraries they need? What `ld --no-undefined`
or dpkg-shlibdeps would catch, and what the board's dynamic linker finds only at run time: a
cross `configure` that guessed `malloc(0)` wrong ships a library calling `rpl_malloc`, which
nothing defines (`symbol lookup error` on the board).

The release's libraries are read from the build's image, where its packages for the board's
architecture are installed: each needed soname (and what it needs in turn) is copied out of a
fresh container of the image (no project code ever ran in it; created, never started) and its
exported symbols cached by image id and soname, as images are immutable."""

from __future__ import annotations

import contextlib
import json
import posixpath
import tarfile
import tempfile
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from xbuild.artifact import depends, elf
from xbuild.artifact.abi import AbiProblem
from xbuild.board.requirement import AbiRequirement
from xbuild.board.targets import Target
from xbuild.containers.sandbox import Box, Container, Limits
from xbuild.host import safefs
from xbuild.host.paths import cache_dir
from xbuild.toolchain import multiarch

# A library bigger than this is not read: its symbols count as unknown (no failure).
MAX_LIBRARY = 512 << 20
MAX_LINKS = 8  # symbolic links followed from a soname to its file


@dataclass(frozen=True)
class Library:
    needed: tuple[str, ...]
    defined: frozenset[str]


class Release:
    """The libraries of the board's release in the build image `image_id`, by soname."""

    @classmethod
    def of(cls, image_id: str, target: Target) -> Release:
        """Where a builder image keeps the board's libraries: the multiarch directories (the
        release's packages), the cross toolchain's own (a cross image's libc6-<arch>-cross, all
        there is of libc when no package pulled in libc6:<arch>), then a native image's."""
        triplet = multiarch(target)
        dirs = (f"/lib/{triplet}", f"/usr/lib/{triplet}", f"/usr/{target.triple}/lib",
                "/lib", "/usr/lib")
        return cls(image_id, target.debian_arch, dirs, target.abi)

    def __init__(self, image_id: str, arch: str, dirs: Iterable[str], requirement: AbiRequirement):
        """dirs: where the image keeps the architecture's libraries, searched in order."""
        self.image_id, self.arch, self.dirs, self.requirement = image_id, arch, tuple(dirs), requirement
        self.known: dict[str, Library | None] = {}
        self._box: Box | None = None  # made on the first library not in the cache
        self._stack = contextlib.ExitStack()

    def libraries(self, sonames: Iterable[str]) -> dict[str, Library | None]:
        """`sonames` and everything they need, transitively; None for one the image lacks."""
        todo = [s for s in sonames if s not in self.known]
        with self._stack:  # the container, if one was made, is removed at the end
            while todo:
                soname = todo.pop()
                if soname in self.known:
                    continue
                lib = self.known[soname] = self._library(soname)
                todo += [s for s in (lib.needed if lib else ()) if s not in self.known]
        self._box = None
        return self.known

    def _library(self, soname: str) -> Library | None:
        path = cache_dir("symbols", f"{self.image_id.replace(':', '-')}-{self.arch}",
                         f"{soname}.json")
        try:
            data = json.loads(path.read_text())
            return Library(tuple(data["needed"]), frozenset(data["defined"])) if data else None
        except (OSError, ValueError, KeyError, TypeError):
            pass
        lib, certain = self._fetch(soname)
        if certain:  # what the image has (or lacks) never changes; an engine failure might pass
            path.parent.mkdir(parents=True, exist_ok=True)
            safefs.write_text(path, json.dumps(lib and {"needed": lib.needed, "defined": sorted(lib.defined)}))
        return lib

    def _fetch(self, soname: str) -> tuple[Library | None, bool]:
        """(the library, whether the answer is certain) from the image's first directory that
        holds `soname` as a library of the board's machine."""
        from docker.errors import APIError, NotFound
        if self._box is None:  # created, never started: only files are copied out of it
            self._box = self._stack.enter_context(Container(
                self.image_id, None, name=f"xbuild-symbols-{uuid.uuid4().hex[:10]}", env={},
                limits=Limits(timeout=120, memory="256m"), user=None))
        certain = True
        for directory in self.dirs:
            try:
                lib = self._read(posixpath.join(directory, soname))
            except NotFound:
                continue
            except (APIError, OSError, tarfile.TarError, elf.ElfError):
                certain = False  # an unreadable copy: unknown, asked again next time
                continue
            if lib is not None:
                return lib, True
        return None, certain

    def _read(self, path: str) -> Library | None:
        """The library at `path` in the image, following its links; None when it is no
        library of the board's machine (a cross image's host libraries share /usr/lib)."""
        from xbuild.host.archive import save_stream
        assert self._box is not None
        with tempfile.TemporaryDirectory(prefix="xbuild-symbols-") as tmp:
            for _ in range(MAX_LINKS):
                tar = Path(tmp, "lib.tar")
                with tar.open("wb") as f:
                    save_stream(self._box.get(path), f, MAX_LIBRARY, f"the image's {path}")
                with tarfile.open(tar) as archive:
                    member = archive.next()
                    if member is None:
                        return None
                    if member.issym():  # a link's target, relative to its own directory
                        path = posixpath.normpath(posixpath.join(posixpath.dirname(path),
                                                                 member.linkname))
                        continue
                    source = archive.extractfile(member) if member.isfile() else None
                    if source is None:
                        return None
                    copy = Path(tmp, "lib")
                    with copy.open("wb") as out:
                        while chunk := source.read(1 << 20):
                            out.write(chunk)
                info = elf.read_elf(copy)
                req = self.requirement
                if info is None or (info.machine, info.bits, info.endian) != \
                        (req.machine, req.bits, req.endian):
                    return None
                return Library(info.needed, elf.read_symbols(copy).defined)
        return None


def check(tree: Path, files: list[dict], links: dict[str, str], release: Release) -> list[AbiProblem]:
    """Each undefined symbol of the artifact's programs and shared libraries with a SONAME that
    neither the artifact nor the release's libraries they need (transitively, with the dynamic
    linker) define. files: artifacts.describe's entries of `tree`; links: depends.links of it.

    A shared object without SONAME is not checked: a plugin or a Python extension module,
    dlopen'd by a host program whose symbols (Py*, the host's plugin API) it uses, and which need
    not be part of the artifact. A file whose needed libraries are not all found in the image is
    not checked either: depends warns about those sonames already."""
    elves = {f["path"]: elf.ElfInfo(**f["elf"]) for f in files
             if f.get("elf") and f["elf"]["kind"] in ("executable", "shared-object")
             and not f["elf"]["static"]}
    if not elves:
        return []
    symbols, problems = {}, []
    for path in list(elves):
        try:
            symbols[path] = elf.read_symbols(tree / path)
        except elf.ElfError as exc:  # the loader could not use it either
            problems.append(AbiProblem(path, f"unreadable dynamic symbols: {exc}"))
            del elves[path]
    ours = frozenset().union(*(s.defined for s in symbols.values()))
    # the artifact's own libraries, by every name the loader may look them up by
    shipped = {name: elves.get(path) for name, path in depends.shipped(files, links).items()}
    loader = (posixpath.basename(release.requirement.loader),) if release.requirement.loader else ()

    checked = {path: info for path, info in elves.items()
               if info.kind == "executable" or info.soname}
    known = release.libraries({s for info in elves.values() for s in (*info.needed, *loader)
                               if s not in shipped})
    where = release.requirement.os or "the target"
    for path, info in sorted(checked.items()):
        scope = _scope((*info.needed, *loader), shipped, known)
        if scope is None:
            continue
        for name in sorted(symbols[path].undefined - ours):
            if not any(name in lib.defined for lib in scope.values()):
                theirs = [s for s in info.needed if s in scope] or list(scope)
                problems.append(AbiProblem(path, f"undefined symbol {name} (defined by neither "
                                                 f"the artifact nor {_names(theirs)} of {where})",
                                            symbol=name))
    return problems


def _scope(needed: Iterable[str], shipped: dict, known: dict[str, Library | None]
           ) -> dict[str, Library] | None:
    """The release's libraries a file's lookups reach, by soname; None when one is not found."""
    scope: dict[str, Library] = {}
    seen: set[str] = set()
    todo = list(needed)
    while todo:
        soname = todo.pop()
        if soname in seen:
            continue
        seen.add(soname)
        if soname in shipped:
            todo.extend(shipped[soname].needed if shipped[soname] else ())
            continue
        lib = known.get(soname)
        if lib is None:
            return None
        scope[soname] = lib
        todo.extend(lib.needed)
    return scope


def _names(sonames: list[str]) -> str:
    if len(sonames) <= 3:
        return ", ".join(sonames) if sonames else "the libraries it needs"
    return f"{', '.join(sonames[:3])} or the {len(sonames) - 3} other libraries it needs"

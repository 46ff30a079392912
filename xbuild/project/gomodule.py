"""A Go module's go.mod and go.sum, read on the host as data (never by running go in the project,
whose go.mod can name toolchains to download and `replace` paths anywhere on the host), and the
module hash go.sum records, computed here to check what a host-side fetch brings (docs/go.md).

go.mod's grammar (golang.org/ref/mod#go-mod-file) is line-based: a verb and its arguments, or a
verb and a parenthesised block of them; `//` starts a comment; a module path or version may be
quoted. Only the lines a build needs are kept: module, go, toolchain, require, replace. A
workspace's go.work (golang.org/ref/mod#go-work-file) has the same grammar: go, use, replace."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from xbuild.errors import GoModuleError
from xbuild.host import safefs
from xbuild.host.safefs import is_regular, read_project_file

GO_MOD, GO_SUM, VENDOR_LIST = "go.mod", "go.sum", "vendor/modules.txt"
GO_WORK, GO_WORK_SUM = "go.work", "go.work.sum"
# A workspace's module directory, as xbuild passes it to `go build` (./DIR/...) unquoted: plain.
_PLAIN_DIR = re.compile(r"[A-Za-z0-9._+-]+(?:/[A-Za-z0-9._+-]+)*")
MAX_ZIP = 500 << 20  # Go's own limit on a module zip (golang.org/x/mod/zip: MaxZipFile)


@dataclass(frozen=True)
class GoModule:
    path: str                                  # the module path: example.com/app
    go: str | None                             # the `go` line: "1.22" or "1.22.3"
    toolchain: str | None                      # the `toolchain` line: "go1.27.3"
    requires: tuple[tuple[str, str], ...]      # (module, version), as listed
    vendored: bool                             # vendor/modules.txt is there: built with -mod=vendor
    replaces: tuple[tuple[str, str], ...] = ()  # (module, its replacement: a module or a directory)


@dataclass(frozen=True)
class Workspace:
    """A go.work: the modules it uses (their directories in the project: "." or "cmd/app"), built
    together, each seeing the others' code instead of a published version."""
    go: str | None
    uses: tuple[str, ...]
    replaces: tuple[tuple[str, str], ...] = ()

    @property
    def packages(self) -> tuple[str, ...]:
        """What `go build` builds by default: every used module's packages (in a workspace,
        ./... from the root reaches only a module at the root)."""
        return tuple("./..." if use == "." else f"./{use}/..." for use in self.uses)


@dataclass(frozen=True)
class Sum:
    module: str
    version: str      # "v1.0.0", or "v1.0.0/go.mod" for the go.mod file's own hash
    hash: str         # "h1:…"

    @property
    def go_mod_only(self) -> bool:
        return self.version.endswith("/go.mod")


def _fields(line: str) -> list[str]:
    line = line.split("//", 1)[0]
    return [f[1:-1] if len(f) >= 2 and f[0] == f[-1] and f[0] in '"`' else f
            for f in re.findall(r'"(?:[^"\\]|\\.)*"|`[^`]*`|\S+', line)]


def _directives(text: str) -> Iterator[tuple[str, list[str]]]:
    """(verb, arguments) of each directive of a go.mod or go.work, a block's lines each under the
    block's verb (`require (` ... `)`: one ("require", [module, version]) per line)."""
    block: str | None = None
    for raw in text.splitlines():
        fields = _fields(raw)
        if not fields:
            continue
        if block is not None:
            if fields == [")"]:
                block = None
            else:
                yield block, fields
        elif fields[1:] == ["("]:
            block = fields[0]
        else:
            yield fields[0], fields[1:]


def parse_mod(text: str) -> tuple[str | None, str | None, str | None, list[tuple[str, str]]]:
    """(module path, go version, toolchain, requires) of a go.mod's text."""
    found: dict[str, str] = {}
    requires: list[tuple[str, str]] = []
    for verb, args in _directives(text):
        if verb == "require" and len(args) >= 2:
            requires.append((args[0], args[1]))
        elif verb in ("module", "go", "toolchain") and args:
            found[verb] = args[0]
    return found.get("module"), found.get("go"), found.get("toolchain"), requires


def parse_work(text: str) -> tuple[str | None, list[str]]:
    """(go version, the `use` directories) of a go.work's text."""
    go, uses = None, []
    for verb, args in _directives(text):
        if verb == "go" and args:
            go = args[0]
        elif verb == "use" and args:
            uses.append(args[0])
    return go, uses


def parse_replaces(text: str) -> list[tuple[str, str]]:
    """(module, replacement) of each `replace old [v] => new [v]`, in a block or not."""
    return [(args[0], args[arrow + 1]) for verb, args in _directives(text)
            if verb == "replace" and "=>" in args and 0 < (arrow := args.index("=>")) < len(args) - 1]


def is_directory(replacement: str) -> bool:
    """A replacement that is a directory, not a module (golang.org/x/mod/modfile.IsDirectoryPath)."""
    return replacement in (".", "..") or replacement.startswith(("./", "../", "/", ".\\", "..\\")) \
        or bool(re.match(r"[A-Za-z]:[\\/]", replacement))


def outside(replacement: str) -> bool:
    """A directory replacement that leaves the project (Go reads it in the sandbox, where only the
    project is): absolute, or climbing above the module's root."""
    if replacement.startswith("/") or re.match(r"[A-Za-z]:[\\/]", replacement):
        return True
    depth = 0
    for part in replacement.replace("\\", "/").split("/"):
        depth += -1 if part == ".." else 0 if part in ("", ".") else 1
        if depth < 0:
            return True
    return False


def read_module(project: Path) -> GoModule:
    """The project's go.mod (a regular file of at most 1 MiB, else UnsafeProjectFile)."""
    text = read_project_file(project / GO_MOD, "the Go module file").decode("utf-8", errors="replace")
    module, go, toolchain, requires = parse_mod(text)
    if not module:
        raise GoModuleError(f"{project.name}/{GO_MOD} has no module line",
                          hint="a go.mod starts with `module <path>` (`go mod init <path>` writes it)")
    return GoModule(module, go, toolchain, tuple(requires), is_regular(project / VENDOR_LIST),
                    tuple(parse_replaces(text)))


def read_workspace(project: Path) -> Workspace | None:
    """The project's go.work, None without one. Every module it uses must be a plain directory of
    the project (no link on the way: Go would follow it out of the project) with a go.mod."""
    where = project / GO_WORK
    if not os.path.lexists(where):  # a link or a FIFO there is refused by the read below
        return None
    text = read_project_file(where, "the Go workspace file").decode("utf-8", errors="replace")
    go, uses = parse_work(text)
    if not uses:
        raise GoModuleError(f"{project.name}/{GO_WORK} uses no module",
                            hint="add `use ./dir` for each module of the workspace (`go work use`)")
    plain = []
    for use in uses:
        # As Go reads it on Linux: a backslash is part of a name (so refused below, not rewritten).
        rel = use.removeprefix("./").rstrip("/") or "."
        if rel != "." and (not _PLAIN_DIR.fullmatch(rel) or ".." in rel.split("/")):
            raise GoModuleError(f"{GO_WORK} uses {use[:200]!r}: a workspace module must be a directory "
                                "inside the project, named plainly", hint="move the module into the project")
        if not _plain_directory(project, rel) or not is_regular(project / rel / GO_MOD):
            raise GoModuleError(f"{GO_WORK} uses {use[:200]!r}, which is not a directory of the project "
                                f"with a {GO_MOD} (or is reached through a link)",
                                hint="`go work use` lists the module directories; fix or remove the line")
        plain.append(rel)
    return Workspace(go, tuple(dict.fromkeys(plain)), tuple(parse_replaces(text)))


def _plain_directory(project: Path, rel: str) -> bool:
    """rel is a directory of project reached through directories alone (no symbolic link)."""
    parts = [] if rel == "." else rel.split("/")
    return all(safefs.is_directory(project.joinpath(*parts[:n])) for n in range(1, len(parts) + 1))


def parse_sum(text: str) -> list[Sum]:
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 3 or not fields[2].startswith("h1:"):
            raise GoModuleError(f"go.sum line {number} is not `<module> <version> h1:<hash>`: {line[:200]!r}",
                              hint="regenerate it with `go mod tidy`")
        out.append(Sum(*fields))
    return out


def read_sums(project: Path, name: str = GO_SUM) -> list[Sum]:
    """The project's go.sum (or a workspace's go.work.sum); none when it has none (a module
    without dependencies)."""
    if not is_regular(project / name):
        return []
    return parse_sum(read_project_file(project / name, "the Go checksum file", limit=16 << 20)
                     .decode("utf-8", errors="replace"))


def hash_files(files: list[tuple[str, bytes]]) -> str:
    """Go's dirhash "h1:" of (name, contents) pairs (golang.org/x/mod/sumdb/dirhash.Hash1)."""
    return _h1([(name, hashlib.sha256(data).hexdigest()) for name, data in files])


def _h1(digests: list[tuple[str, str]]) -> str:
    """The SHA-256 of the sorted lines "<sha256 hex>  <name>\\n", base64."""
    summary = "".join(f"{digest}  {name}\n" for name, digest in sorted(digests))
    return "h1:" + base64.b64encode(hashlib.sha256(summary.encode()).digest()).decode()


def hash_go_mod(data: bytes) -> str:
    """The `<version>/go.mod` line's hash: the go.mod file alone, named "go.mod"."""
    return hash_files([("go.mod", data)])


def hash_zip(path: Path) -> str:
    """A module zip's hash, as go.sum records it: every file under its names in the zip
    ("<module>@<version>/..."). Bounded: Go refuses a module zip over 500 MB, and so does this."""
    if path.stat().st_size > MAX_ZIP:
        raise GoModuleError(f"{path.name} is larger than a Go module zip may be ({MAX_ZIP >> 20} MB)")
    with zipfile.ZipFile(path) as z:
        infos = [i for i in z.infolist() if not i.is_dir()]
        if sum(i.file_size for i in infos) > MAX_ZIP:
            raise GoModuleError(f"{path.name} unpacks to more than {MAX_ZIP >> 20} MB")
        digests = []
        for info in infos:  # streamed: a module zip may be large
            h = hashlib.sha256()
            with z.open(info) as member:
                while chunk := member.read(1 << 20):
                    h.update(chunk)
            digests.append((info.filename, h.hexdigest()))
    return _h1(digests)


def escape(path: str) -> str:
    """A module path or version as the module proxy and cache spell it: each capital letter is
    "!" and its lower case (golang.org/x/mod/module.EscapePath), so no two paths collide on a
    case-insensitive file system."""
    return re.sub(r"[A-Z]", lambda m: "!" + m.group(0).lower(), path)

"""The runtime dependencies of an artifact, as the board's OS release names them.

Every ELF's needed sonames that the artifact does not ship itself are looked up in the shlibs
files of the packages installed in the build's image (/var/lib/dpkg/info/*.shlibs: what
dpkg-shlibdeps falls back on), which are the release's own packages for the target architecture.
libc6's lower bound is the newest GLIBC_ version the files need, like dpkg-shlibdeps' symbols do.

The table of an image is read once, in a fresh container of that image (no project code has run
in it), and cached by image id: images are immutable."""

from __future__ import annotations

import json
import os
import posixpath
import re
import uuid
from pathlib import Path
from typing import NamedTuple

from xbuild.board.requirement import glibc_tuple
from xbuild.containers.sandbox import Container, Limits
from xbuild.host import safefs
from xbuild.host.paths import cache_dir

# Lists the target architecture's shlibs files: multiarch ones are named <pkg>:<arch>.shlibs (on
# an image of that very architecture, the others are its own too). A cross toolchain's runtime
# libraries (libstdc++6-armhf-cross...) are the only ones of their kind a cross image holds: their
# shlibs name the board's package (`libstdc++ 6 libstdc++6:armhf`), read second ("cross").
_SCRIPT = r"""
native=$(dpkg --print-architecture)
for f in /var/lib/dpkg/info/*.shlibs; do
  kind=shlibs
  case "$f" in
    *:"$XBUILD_DEB_ARCH".shlibs) ;;
    *-"$XBUILD_DEB_ARCH"-cross.shlibs) kind=cross ;;
    *:*.shlibs) continue ;;
    *) [ "$native" = "$XBUILD_DEB_ARCH" ] || continue ;;
  esac
  sed -n "s/^\([^ :][^ ]*\) \([^ ]*\) \(.*\)$/$kind \1 \2 \3/p" "$f"
done
"""


def _sonames(name: str, version: str) -> tuple[str, ...]:
    """deb-shlibs(5): `libfoo 3` is libfoo.so.3; `libfoo-1.2 0`... and `libfoo 1.2` may be
    libfoo-1.2.so."""
    return (f"{name}.so.{version}", f"{name}-{version}.so")


def table(image_id: str, arch: str) -> dict[str, str]:
    """soname -> dependency ("libssl3 (>= 3.0.20)") for the `arch` packages in the image."""
    path = cache_dir("shlibs", f"{image_id.replace(':', '-')}-{arch}-v2.json")  # v2: with "cross"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        pass
    found: dict[str, str] = {}
    cross: dict[str, str] = {}

    def line(text: str) -> None:
        kind, _, rest = text.partition(" ")
        if kind in ("shlibs", "cross") and rest.count(" ") >= 2:
            name, version, dep = rest.split(" ", 2)
            for soname in _sonames(name, version):
                (found if kind == "shlibs" else cross).setdefault(soname, _board_name(dep.strip(), arch))

    with Container(image_id, ["sh", "-c", _SCRIPT], name=f"xbuild-shlibs-{uuid.uuid4().hex[:10]}",
                   env={"XBUILD_DEB_ARCH": arch}, limits=Limits(timeout=120, memory="256m"),
                   user=None) as box:
        complete = box.run(line) == 0
    table = {**cross, **found}  # the board's own packages installed in the image come first
    if complete:  # else what was read, not cached: the next build asks again
        path.parent.mkdir(parents=True, exist_ok=True)
        safefs.write_text(path, json.dumps(table, sort_keys=True))
    return table


def _board_name(dep: str, arch: str) -> str:
    """`libstdc++6:armhf (>= 12)` as the board names it: `libstdc++6 (>= 12)` (its own arch)."""
    return re.sub(rf"([^\s,|(:]+):{re.escape(arch)}(?=[\s,|]|$)", r"\1", dep)


def links(tree: Path) -> dict[str, str]:
    """{path: target} of the tree's symbolic links (the manifest's `files` lists regular files
    only): a library's SONAME link is how the board finds it."""
    return {p.relative_to(tree).as_posix(): os.readlink(p)
            for p in sorted(tree.rglob("*")) if p.is_symlink()}


def shipped(files: list[dict], links: dict[str, str]) -> dict[str, str]:
    """{name: path of the shipped file} for every name under which the artifact's own libraries
    are found: every shipped file's name, each ELF library's SONAME (what ldconfig links it as on
    the board), and the name of each link (lib/libi2c.so.0 -> libi2c.so.0.1.1) that leads, through
    links in the tree, to a shipped file. files: artifacts.describe's entries; links: `links`."""
    regular = {f["path"] for f in files}
    names = {p.rsplit("/", 1)[-1]: p for p in sorted(regular)}
    names.update({f["elf"]["soname"]: f["path"] for f in files if (f.get("elf") or {}).get("soname")})
    for path in links:
        if (end := _link_end(path, links)) in regular:
            names[path.rsplit("/", 1)[-1]] = end
    return names


def _link_end(path: str, links: dict[str, str]) -> str | None:
    """Where a chain of the tree's links ends, read as paths alone (nothing on disk is followed):
    None when it leaves the tree or loops."""
    for _ in range(40):  # the kernel's own limit on links in one lookup
        if path not in links:
            return path
        target = links[path]
        if target.startswith("/"):
            return None  # absolute: the board's own file, not the artifact's
        path = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
        if path.startswith("../") or path == "..":
            return None
    return None


class Resolved(NamedTuple):
    depends: list[str]           # Depends entries, sorted, as the board's release names them
    unresolved: list[dict]       # [{file, soname}] no package provides
    stand_ins: list[dict]        # [{file, soname, package}]: the release's own table lacks the
                                 # soname, so Depends names the stand-in suite's package
    stand_in_depends: list[str]  # a stand-in release's Depends as its stand-in suite names them


def resolve(files: list[dict], shlibs: dict[str, str], links: dict[str, str] | None = None,
            own: dict[str, str] | None = None) -> Resolved:
    """The runtime dependencies of the artifact's files (artifacts.describe's entries; links:
    `links` of the same tree). shlibs: the suite's table (`table`); own: the release's own
    (Release.sonames) when its suite only stands in for it: its names come first."""
    own_names = shipped(files, links or {})
    glibc = max((f["elf"]["glibc"] for f in files if f.get("elf", {}).get("glibc")),
                key=glibc_tuple, default=None)
    deps: dict[str, str] = {}
    suites: dict[str, str] = {}
    missing, stand_ins = [], []
    for f in files:
        for soname in (f.get("elf") or {}).get("needed", ()):
            if soname in own_names:
                continue
            suite, mine = shlibs.get(soname), (own or {}).get(soname)
            if suite is None and mine is None:
                missing.append({"file": f["path"], "soname": soname})
                continue
            _add(suites, suite, glibc)
            if own is not None and mine is None:
                stand_ins.append({"file": f["path"], "soname": soname, "package": _name(suite)})
            _add(deps, mine or suite, glibc)
    return Resolved([deps[p] for p in sorted(deps)], missing, stand_ins,
                    [suites[p] for p in sorted(suites)] if own is not None else [])


def _name(dep: str | None) -> str:
    return (dep or "").split(" ", 1)[0]


def _add(deps: dict[str, str], dep: str | None, glibc: str | None) -> None:
    package = _name(dep)
    if package == "libc6" and glibc:  # what the files need, not what the image has
        dep = f"libc6 (>= {glibc})"
    if dep is not None:
        deps[package] = dep


def packages(depends: list[str]) -> list[str]:
    """The package names of Depends entries: what `apt install` takes."""
    return [re.split(r"[ (]", d, maxsplit=1)[0] for d in depends]

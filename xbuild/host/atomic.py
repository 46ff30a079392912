"""Output directories that change all at once: readers see the old contents or the new, never a
mix, and a failure part-way leaves the old contents in place.

Only a directory xbuild made (it holds the MARKER file) or an empty one is ever replaced: `--out`
given a directory of the user's files, or the project itself, is refused before anything runs. So
is one that is, holds or is reached through a link a project could have placed (safefs.physical)."""

from __future__ import annotations

import contextlib
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from xbuild.errors import LinkInOutputPath, OutputDirInUse
from xbuild.host import safefs
from xbuild.schema import json_value

MARKER = ".xbuild-out"
_MARKER_TEXT = ("This directory was made by xbuild. The next build or download into it replaces it "
                "whole:\nkeep nothing else here.\n")


def _made_by_xbuild(d: Path) -> bool:
    if safefs.is_regular(d / MARKER):
        return True
    # An output of an xbuild from before the marker: its own manifest, and nothing but the files
    # its SHA256SUMS lists (plus the log). Read bounded: the directory may be the project's.
    try:
        manifest = json_value(safefs.read_prefix(d / "manifest.json", 1 << 20))
        sums = safefs.read_prefix(d / "SHA256SUMS", 1 << 20).decode()
        listed = {line.partition("  ")[2] for line in sums.splitlines()}
    except (OSError, ValueError):
        return False
    return (isinstance(manifest, dict) and isinstance(manifest.get("xbuild"), dict)
            and all(p.is_file() and not p.is_symlink() and p.name in listed | {"SHA256SUMS", "build.log"}
                    for p in d.iterdir()))


def check_out(dest: Path, project: Path | None = None) -> None:
    """Refuse an output directory whose replacement would delete what xbuild did not make, and one
    that is, holds or is reached through a link inside the project (LinkInOutputPath)."""
    dest = safefs.physical(dest, project.resolve() if project is not None else None)
    if project is not None and project.resolve().is_relative_to(dest):
        raise OutputDirInUse(f"the output directory {dest} is the project or contains it: replacing "
                             "it would delete the project",
                             hint="give an --out outside the project (or none: the default is "
                                  "PROJECT/xbuild-out/TARGET)")
    try:
        if not dest.exists():
            return
        if not dest.is_dir():
            raise OutputDirInUse(f"the output directory {dest} is a file", hint="give a directory")
        if _made_by_xbuild(dest):  # replaced whole by a rename: a link in it is never followed
            return  # (a --keep tree holds the project's own links)
        if links := safefs.links_in(dest):
            raise LinkInOutputPath(f"the output directory {dest} holds symbolic links "
                                   f"({', '.join(links[:5])}): xbuild never writes through a link")
        found = sorted(p.name for p in dest.iterdir())
    except OSError as exc:
        raise OutputDirInUse(f"cannot read the output directory {dest}: {exc.strerror}") from None
    if found:
        shown = ", ".join(found[:5]) + (f" and {len(found) - 5} more" if len(found) > 5 else "")
        raise OutputDirInUse(f"the output directory {dest} holds files xbuild did not make ({shown}); "
                             "replacing it would delete them")


def swap_in(new: Path, dest: Path) -> None:
    """Replace dest with new by renames (both on one file system); new is marked as xbuild's."""
    dest = safefs.physical(dest)
    check_out(dest)  # again: it may have been filled while the build ran
    safefs.write_text(new / MARKER, _MARKER_TEXT)
    old = None
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old-{uuid.uuid4().hex[:8]}")
        dest.rename(old)
    new.rename(dest)
    if old is not None:
        safefs.remove_tree(old)


def remove_made(dest: Path) -> bool:
    """Remove dest if it is a directory xbuild made (a --keep tree an earlier build left); a
    link, a file or a directory of anyone else's stays. Renamed away first: a reader never sees
    half of it. True when it was removed."""
    try:
        if dest.is_symlink() or not dest.is_dir() or not _made_by_xbuild(dest):
            return False
        old = dest.with_name(f".{dest.name}.old-{uuid.uuid4().hex[:8]}")
        dest.rename(old)
    except OSError:
        return False
    safefs.remove_tree(old)
    return True


@contextlib.contextmanager
def replacing(dest: Path, what: str = "tmp", project: Path | None = None) -> Iterator[Path]:
    """A fresh directory beside dest to fill; it becomes dest only if the block succeeds. Refused
    up front (OutputDirInUse) when dest holds what xbuild did not make, or contains `project`."""
    dest = safefs.physical(dest, project.resolve() if project is not None else None)
    check_out(dest, project)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.{what}-", dir=dest.parent))
    try:
        yield tmp
        swap_in(tmp, dest)
    finally:
        safefs.remove_tree(tmp)

"""Output directories that change all at once: readers see the old contents or the new, never a
mix, and a failure part-way leaves the old contents in place.

Only a directory xbuild made (it holds the MARKER file) or an empty one is ever replaced: `--out`
given a directory of the user's files, or the project itself, is refused before anything runs."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Iterator

from xbuild.errors import OutputDirInUse
from xbuild.schema import json_value

MARKER = ".xbuild-out"
_MARKER_TEXT = ("This directory was made by xbuild. The next build or download into it replaces it "
                "whole:\nkeep nothing else here.\n")


def _made_by_xbuild(d: Path) -> bool:
    if (d / MARKER).is_file():
        return True
    # An output of an xbuild from before the marker: its own manifest, and nothing but the files
    # its SHA256SUMS lists (plus the log).
    try:
        manifest = json_value((d / "manifest.json").read_text())
        listed = {line.partition("  ")[2] for line in (d / "SHA256SUMS").read_text().splitlines()}
    except (OSError, ValueError):
        return False
    return (isinstance(manifest, dict) and isinstance(manifest.get("xbuild"), dict)
            and all(p.is_file() and not p.is_symlink() and p.name in listed | {"SHA256SUMS", "build.log"}
                    for p in d.iterdir()))


def check_out(dest: Path, project: Path | None = None) -> None:
    """Refuse an output directory whose replacement would delete what xbuild did not make."""
    dest = dest.resolve()
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
        if _made_by_xbuild(dest):
            return
        found = sorted(p.name for p in dest.iterdir())
    except OSError as exc:
        raise OutputDirInUse(f"cannot read the output directory {dest}: {exc.strerror}") from None
    if found:
        shown = ", ".join(found[:5]) + (f" and {len(found) - 5} more" if len(found) > 5 else "")
        raise OutputDirInUse(f"the output directory {dest} holds files xbuild did not make ({shown}); "
                             "replacing it would delete them")


def swap_in(new: Path, dest: Path) -> None:
    """Replace dest with new by renames (both on one file system); new is marked as xbuild's."""
    dest = dest.resolve()
    check_out(dest)  # again: it may have been filled while the build ran
    (new / MARKER).write_text(_MARKER_TEXT)
    old = None
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old-{uuid.uuid4().hex[:8]}")
        dest.rename(old)
    new.rename(dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def replacing(dest: Path, what: str = "tmp", project: Path | None = None) -> Iterator[Path]:
    """A fresh directory beside dest to fill; it becomes dest only if the block succeeds. Refused
    up front (OutputDirInUse) when dest holds what xbuild did not make, or contains `project`."""
    dest = dest.resolve()
    check_out(dest, project)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.{what}-", dir=dest.parent))
    try:
        yield tmp
        swap_in(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

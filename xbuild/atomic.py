"""Output directories that change all at once: readers see the old contents or the new, never a
mix, and a failure part-way leaves the old contents in place."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Iterator


def swap_in(new: Path, dest: Path) -> None:
    """Replace dest with new by renames (both on one file system)."""
    old = None
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old-{uuid.uuid4().hex[:8]}")
        dest.rename(old)
    new.rename(dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def replacing(dest: Path, what: str = "tmp") -> Iterator[Path]:
    """A fresh directory beside dest to fill; it becomes dest only if the block succeeds."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.{what}-", dir=dest.parent))
    try:
        yield tmp
        swap_in(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

"""Where xbuild keeps what it may rebuild (one cache directory per user, XDG_CACHE_HOME), and the one
checked way a name becomes a path component.

A name from the command line, a request, a job record, a project, an image archive or a cache
(a board, a release, a job id, a tenant, a namespace) joins a path only through `component`: no
separator, no `.` or `..`, no control character, nothing hidden, so no name can point a read, a
write or an `rm -r` anywhere but where its caller meant."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TypeGuard

from xbuild.errors import UnsafeName

# A letter or digit, then letters, digits and . _ + ~ - (~: Debian versions, x_0~1_armhf.deb): no
# hidden file, no option, no separator, no control character; at most NAME_MAX bytes.
_COMPONENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+~-]{0,254}\Z")


def is_component(name: object) -> TypeGuard[str]:
    return isinstance(name, str) and bool(_COMPONENT.match(name)) and name not in (".", "..")


def component(name: object, what: str = "a name") -> str:
    """name itself when it is one plain path component; otherwise UnsafeName (exit 46)."""
    if not is_component(name):
        raise UnsafeName(f"{what} {name!r} cannot name a file: only letters, digits and . _ + ~ - "
                         "are allowed, starting with a letter or digit (no '/', no '..', no "
                         "control characters)")
    return name


def under(base: Path, *names: object, what: str = "a name") -> Path:
    """base/<name>/<name>...: each name checked by `component`."""
    return base.joinpath(*(component(n, what) for n in names))


def cache_dir(*parts: str) -> Path:
    """~/.cache/xbuild/<parts...>: read each time, so a test or a service may point it elsewhere.
    Each part is checked: a board, a suite or an image id joins the path only as a plain name."""
    return under(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "xbuild"), *parts,
                 what="a cache directory name")

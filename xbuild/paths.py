"""Where xbuild keeps what it may rebuild: one cache directory per user (XDG_CACHE_HOME)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """~/.cache/xbuild/<parts...>: read each time, so a test or a service may point it elsewhere."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "xbuild", *parts)

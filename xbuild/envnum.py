"""Numbers read from the environment (XBUILD_MAX_*_MB, XBUILD_MAX_PIDS, ...), through one parser:
a wrong value is the same clear ConfigError (exit 6) wherever it is read, never a ValueError deep
inside a build or a worker."""

from __future__ import annotations

import os

from xbuild.errors import ConfigError

MB = 1 << 20


def number(name: str, default: float, *, fraction: bool = False, zero: bool = False) -> float:
    """$name as a number (a whole one unless `fraction`; above 0 unless `zero`), else default."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw) if fraction else int(raw, 10)
    except ValueError:
        value = -1
    if value < 0 or (value == 0 and not zero) or value != value or value == float("inf"):
        what = "a number" if fraction else "a whole number"
        raise ConfigError(f"{name}={raw!r} is not {what}{'' if zero else ' above 0'}",
                          hint=f"e.g. {name}={default:g}")
    return value


def megabytes(name: str, default_mb: float, *, fraction: bool = False, zero: bool = False) -> int:
    """$name, a size in MB, as bytes."""
    return int(number(name, default_mb, fraction=fraction, zero=zero) * MB)

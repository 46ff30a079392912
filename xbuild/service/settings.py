"""Service settings, all from the environment (the CLI options set the same variables)."""

from __future__ import annotations

import os
from pathlib import Path

from xbuild import environment


def state_dir() -> Path:
    base = environment.text("XBUILD_STATE_DIR") or os.path.join(
        os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share", "xbuild")
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path


def broker_url() -> str:
    """XBUILD_BROKER_URL, or the embedded default: kombu's SQLAlchemy transport on SQLite."""
    return environment.text("XBUILD_BROKER_URL") or f"sqla+sqlite:///{state_dir() / 'broker.sqlite'}"


def embedded() -> bool:
    return broker_url().startswith("sqla+sqlite")


def result_backend() -> str:
    url = broker_url()
    if url.startswith(("redis://", "rediss://")):
        return url
    return f"db+sqlite:///{state_dir() / 'results.sqlite'}"


def api_tokens() -> list[str]:
    return environment.names("XBUILD_API_TOKENS")


def max_upload_mb() -> int:
    return environment.whole("XBUILD_MAX_UPLOAD_MB")


def max_attempts() -> int:
    return environment.whole("XBUILD_MAX_ATTEMPTS")


# A job whose lease is gone is requeued by the reaper at most this long after its worker died.
def reaper_interval() -> float:
    return environment.number("XBUILD_REAPER_INTERVAL")


def lease_ttl() -> float:
    return environment.number("XBUILD_LEASE_TTL")

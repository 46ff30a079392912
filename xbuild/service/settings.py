"""Service settings, all from the environment (the CLI options set the same variables)."""

from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    base = os.environ.get("XBUILD_STATE_DIR") or os.path.join(
        os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share", "xbuild")
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path


def broker_url() -> str:
    """XBUILD_BROKER_URL, or the embedded default: kombu's SQLAlchemy transport on SQLite."""
    return os.environ.get("XBUILD_BROKER_URL") or f"sqla+sqlite:///{state_dir() / 'broker.sqlite'}"


def embedded() -> bool:
    return broker_url().startswith("sqla+sqlite")


def result_backend() -> str:
    url = broker_url()
    if url.startswith(("redis://", "rediss://")):
        return url
    return f"db+sqlite:///{state_dir() / 'results.sqlite'}"


def api_tokens() -> list[str]:
    return [t.strip() for t in os.environ.get("XBUILD_API_TOKENS", "").split(",") if t.strip()]


MAX_UPLOAD_MB = int(os.environ.get("XBUILD_MAX_UPLOAD_MB", "200"))
MAX_ATTEMPTS = int(os.environ.get("XBUILD_MAX_ATTEMPTS", "3"))
# A job whose lease is gone is requeued by the reaper at most this long after its worker died.
REAPER_INTERVAL = float(os.environ.get("XBUILD_REAPER_INTERVAL", "10"))
LEASE_TTL = float(os.environ.get("XBUILD_LEASE_TTL", "30"))

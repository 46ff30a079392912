"""Riding out an outage: a call tried again, with exponential backoff and jitter, for a bounded time.

A store, broker or API restart takes seconds to a minute. Whoever has nobody to hand the failure to
(a CI job waiting with `xbuild submit --wait`, `xbuild artifacts get`, a worker in the middle of a
build) waits it out for XBUILD_RETRY_SECONDS (300) and says so, then fails as it did before.
Only what is safe to do twice is retried: reads, whole-object writes, a submit carrying an
idempotency key."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
FIRST, CAP = 1.0, 30.0  # seconds: the first wait, and the longest


def retry_seconds() -> float:
    """XBUILD_RETRY_SECONDS: how long an outage is ridden out (0: not at all)."""
    from xbuild import environment
    return environment.number("XBUILD_RETRY_SECONDS")


class Transient(Exception):
    """What a call raises for a failure worth retrying: `error` is raised when time is up;
    `retry_after` is the server's own word on when to come back (HTTP Retry-After)."""

    def __init__(self, error: BaseException, retry_after: float | None = None):
        super().__init__(str(error))
        self.error, self.retry_after = error, retry_after


def backoff(attempt: int) -> float:
    """Exponential, with jitter: clients that lost the same server do not come back in step."""
    return random.uniform(0.5, 1.0) * min(CAP, FIRST * 2 ** (attempt - 1))


def patiently(fn: Callable[[], T], seconds: float, what: str,
              say: Callable[[str], None] | None = None) -> T:
    """fn(), tried again while it raises Transient, for up to `seconds` in all; then its error."""
    deadline = time.monotonic() + seconds
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn()
        except Transient as failed:
            wait = max(backoff(attempt), min(failed.retry_after or 0.0, CAP))
            if time.monotonic() + wait > deadline:
                raise failed.error from None
            if say is not None:
                say(f"retrying: {what} failed ({failed.error}); attempt {attempt}, next in {wait:.1f} s "
                    f"(for up to {seconds:g} s in all, XBUILD_RETRY_SECONDS)")
            time.sleep(wait)

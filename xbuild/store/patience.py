"""How long this process's store calls ride out an outage: set by whoever runs them (a worker,
`xbuild artifacts get`), read by the store that makes the calls (s3.py)."""

from __future__ import annotations

from collections.abc import Callable

# How long a store call rides out an outage of its server (StoreUnavailable) beyond the S3
# client's own few retries. 0 in the API: it answers 503 with Retry-After and its client retries.
# A worker mid-build and `xbuild artifacts get` have nobody to hand the outage to: they wait
# (xbuild.host.retry, XBUILD_RETRY_SECONDS) and say so.
_RIDE_OUT: dict = {"seconds": 0.0, "say": None}


def ride_out_outages(seconds: float, say: Callable[[str], None] | None = None) -> None:
    """From now on, in this process (and the processes it forks), store calls wait out an outage."""
    _RIDE_OUT.update(seconds=seconds, say=say)


def patience() -> tuple[float, Callable[[str], None] | None]:
    return _RIDE_OUT["seconds"], _RIDE_OUT["say"]

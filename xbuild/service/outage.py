"""Whose fault: an error of the store or the broker being down or restarting is nobody's request's
fault and passes by itself. The API answers it with a 503 and Retry-After, never a 500 (which says
"a bug: do not retry"), and clients retry (xbuild.host.retry)."""

from __future__ import annotations

from collections.abc import Iterator

RETRY_AFTER = 5  # seconds: about a broker's or a store's restart; clients back off from there


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        # what it was raised from, or during (unless hidden on purpose: `raise ... from None`)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)


def _transient_types() -> tuple[type[BaseException], ...]:
    """The exceptions of an outage: the store's (after its client's own retries), the broker
    client's (kombu wraps a refused or dropped connection in OperationalError), the lease's Redis
    or AMQP connection, a socket's."""
    from kombu.exceptions import OperationalError

    from xbuild.errors import StoreUnavailable
    found: list[type[BaseException]] = [StoreUnavailable, OperationalError, ConnectionError, TimeoutError]
    try:
        import redis
        found += [redis.ConnectionError, redis.TimeoutError]
    except ImportError:
        pass
    try:
        import amqp
        found += [amqp.exceptions.RecoverableConnectionError, amqp.exceptions.ConnectionForced]
    except ImportError:
        pass
    return tuple(found)


def is_outage(exc: BaseException) -> bool:
    """Did a store or broker outage cause this (anywhere in its chain of causes)?"""
    kinds = _transient_types()
    return any(isinstance(e, kinds) for e in _causes(exc))

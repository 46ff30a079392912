"""Riding out an outage (xbuild/host/retry.py) and telling an outage from a fault (service/outage.py,
store/s3.py): which failures are retried, for how long, and what the user is told."""

from __future__ import annotations

import pytest

from xbuild.errors import ServerError, StoreError, StoreUnavailable
from xbuild.host import retry


@pytest.fixture
def waits(monkeypatch) -> list[float]:
    """The waits patiently() chose, instead of sleeping them."""
    slept: list[float] = []
    monkeypatch.setattr(retry.time, "sleep", slept.append)
    return slept


def _failing(times: int, error: Exception, retry_after: float | None = None):
    calls = {"n": 0}

    def fn() -> str:
        calls["n"] += 1
        if calls["n"] <= times:
            raise retry.Transient(error, retry_after)
        return "ok"
    return fn, calls


def test_an_outage_is_retried_with_growing_waits_and_said(waits):
    said: list[str] = []
    fn, calls = _failing(4, ServerError("HTTP 503"))
    assert retry.patiently(fn, 300, "GET /v1/builds/x", said.append) == "ok"
    assert calls["n"] == 5 and len(waits) == 4 and len(said) == 4
    assert waits[-1] > waits[0]  # exponential (with jitter: each within [half, whole] of its step)
    assert "GET /v1/builds/x failed (HTTP 503); attempt 1" in said[0] and "XBUILD_RETRY_SECONDS" in said[0]


def test_retry_after_is_respected(waits):
    fn, _ = _failing(1, ServerError("HTTP 503"), retry_after=7)
    retry.patiently(fn, 300, "x")
    assert waits == [7]


def test_when_time_is_up_the_error_itself_is_raised(waits):
    fn, calls = _failing(1000, ServerError("HTTP 503"))
    with pytest.raises(ServerError, match="HTTP 503"):
        retry.patiently(fn, 0, "x")
    assert calls["n"] == 1 and waits == []


def test_anything_else_is_not_retried(waits):
    def fn():
        raise ValueError("a bug")
    with pytest.raises(ValueError):
        retry.patiently(fn, 300, "x")
    assert waits == []


def test_an_outage_is_told_by_its_causes():
    from kombu.exceptions import OperationalError

    from xbuild.service.outage import is_outage
    try:
        try:
            raise ConnectionRefusedError(111, "refused")
        except ConnectionRefusedError as exc:
            raise OperationalError("Error 111 connecting") from exc
    except OperationalError as exc:
        assert is_outage(exc)
    try:
        try:
            raise StoreUnavailable("s3://b: InternalError while reading")
        except StoreUnavailable:
            raise RuntimeError("while saving") from None
    except RuntimeError as exc:
        assert not is_outage(exc)  # "from None": the cause is hidden on purpose
    assert not is_outage(RuntimeError("a bug"))
    assert not is_outage(StoreError("s3://b: the server rejected the credentials"))
    assert issubclass(StoreUnavailable, StoreError)  # whoever caught a StoreError still does


@pytest.mark.parametrize(("status", "code", "outage"), [
    (500, "InternalError", True), (503, "SlowDown", True), (503, "ServiceUnavailable", True),
    (400, "RequestTimeout", True), (403, "AccessDenied", False), (404, "NoSuchKey", False),
    (400, "BadDigest", False)])
def test_s3_answers_of_an_outage(status, code, outage):
    from botocore.exceptions import ClientError

    from xbuild.store.s3 import _outage
    exc = ClientError({"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
                      "GetObject")
    assert _outage(exc) is outage


def test_s3_connection_failures_are_an_outage():
    from botocore.exceptions import ConnectionClosedError, EndpointConnectionError, ParamValidationError

    from xbuild.store.s3 import _outage
    assert _outage(EndpointConnectionError(endpoint_url="http://127.0.0.1:1"))
    assert _outage(ConnectionClosedError(endpoint_url="http://127.0.0.1:1"))
    assert not _outage(ParamValidationError(report="bad"))

"""One bounded download over HTTP(S), for what xbuild fetches on the host itself (the package
index's pages and sdists: project/pypi.py; a locked crate: project/crates.py): streamed into a
sink while it is hashed, at most `limit` bytes, all of it within `seconds`; the ways it can fail
told apart, for the caller to name in its own words and exit code."""

from __future__ import annotations

import hashlib
import time
from typing import BinaryIO
from urllib.parse import urlsplit


class Failed(Exception):
    """A download that did not complete; the subclass says why."""


class NotFound(Failed):
    """The server answered 404."""


class WrongType(Failed):
    """The answer is not of the content type asked for (its type is the message)."""


class TooLarge(Failed):
    """More than `limit` bytes came."""


class TooSlow(Failed):
    """The whole did not arrive within `seconds` (a server that trickles: each read in time)."""


class Unreachable(Failed):
    """No answer, or an error status; the message carries no credentials of the URL's."""


def site(url: str) -> str:
    """Where url points, without the credentials a URL may carry (user:token@host)."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname or url[:100])


def redact(text: str, url: str) -> str:
    """text without url's credentials (an error of requests' quotes the URL)."""
    userinfo = urlsplit(url).netloc.rpartition("@")[0]
    return text.replace(userinfo + "@", "***@") if userinfo else text


def get(url: str, sink: BinaryIO, *, limit: int, seconds: float, timeout: float,
        accept: str | None = None) -> str:
    """url's body into sink; its sha256. timeout: what a socket may wait (to connect, between
    bytes); accept: the content type the answer must have."""
    import requests  # imported when used: the CLI's --help stays fast

    deadline, h = time.monotonic() + seconds, hashlib.sha256()
    try:
        with requests.get(url, headers={"Accept": accept} if accept else None, stream=True,
                          timeout=timeout) as r:
            if r.status_code == 404:
                raise NotFound(url)
            r.raise_for_status()
            if accept and not r.headers.get("Content-Type", "").startswith(accept):
                raise WrongType(str(r.headers.get("Content-Type")))
            written = 0
            for chunk in r.iter_content(1 << 16):
                written += len(chunk)
                if written > limit:
                    raise TooLarge(url)
                if time.monotonic() > deadline:
                    raise TooSlow(url)
                h.update(chunk)
                sink.write(chunk)
    except requests.RequestException as exc:
        raise Unreachable(redact(str(exc), url)[:300]) from None
    return h.hexdigest()

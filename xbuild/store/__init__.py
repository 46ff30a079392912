"""Artifact stores: `file://` (the embedded default, under the user's cache directory) and `s3://`
(any S3-compatible server through boto3). Both offer the same small object interface, so the
publishing and cache logic above them (xbuild/store/publish.py) is written once."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import urlparse
from urllib.request import url2pathname

from xbuild import environment
from xbuild.errors import ConfigError, StoreError
from xbuild.host.paths import is_component


def default_url() -> str:
    from xbuild.host.paths import cache_dir
    return cache_dir("store").as_uri()


def configured_url() -> str:
    return environment.text("XBUILD_STORE") or default_url()


def is_segment(name: str) -> bool:
    """A plain name: no `/`, not `.` or `..`, nothing odd (paths.is_component: the one check of
    a name that becomes a path, in a file store's directory or a bucket's key alike)."""
    return is_component(name)


def to_segment(name: str) -> str:
    """Any name (a project's folder, a tenant's upload) made a plain segment: odd characters
    become "-", never ".", "..", hidden or empty."""
    return re.sub(r"[^A-Za-z0-9._+-]", "-", name).lstrip(".-") or "project"


def check_segments(path: str, what: str) -> list[str]:
    """Split a store path, refusing `..`, absolute paths and odd names (they could escape a
    file store's root, or collide in an S3 bucket)."""
    if path.startswith("/"):
        raise ConfigError(f"{what} {path!r} must not be an absolute path")
    parts = [p for p in path.split("/") if p]
    for p in parts:
        if not is_component(p):
            raise ConfigError(f"{what} {path!r}: {p!r} is not allowed",
                              hint="use letters, digits, '.', '_', '+' and '-' (no '..')")
    return parts


class Store(Protocol):
    url: str

    def put_file(self, key: str, path: Path, sha256: str, progress: Callable[[int], None] | None = None) -> None:
        """Upload, verified by the server (Content-MD5) and checked afterwards."""

    def get_file(self, key: str, dest: Path) -> None: ...
    def open(self, key: str) -> BinaryIO: ...              # a stream to read; StoreError when missing
    def read(self, key: str) -> bytes | None: ...          # None when missing
    def write(self, key: str, data: bytes) -> None: ...
    def exists(self, key: str) -> bool: ...
    def has(self, key: str, sha256: str) -> bool: ...      # present with this content
    def list(self, prefix: str) -> list[str]: ...           # keys under prefix, relative to the store
    def delete(self, key: str) -> None: ...


def check_url(url: str) -> None:
    """Refuse a store URL that cannot be right, without connecting (before a build, not after it)."""
    parsed = urlparse(url)
    if parsed.scheme == "file" and parsed.netloc not in ("", "localhost"):
        # file://tmp/x is the path /x on a host called "tmp": not what anyone means
        raise StoreError(f"{url}: {parsed.netloc!r} is read as a host name, and the path as "
                         f"{parsed.path or '/'!r}",
                         hint=f"write file:///{parsed.netloc}{parsed.path} (three slashes) or "
                              f"the plain path /{parsed.netloc}{parsed.path}")
    if parsed.scheme == "file" and not parsed.path.startswith("/"):
        raise StoreError(f"{url}: a file:// URL needs an absolute path (file:///...)",
                         hint="write file:///absolute/path/to/dir, or a plain path")
    if parsed.scheme == "s3":
        if not 3 <= len(parsed.netloc) <= 63:
            raise StoreError(f"{url}: bucket name {parsed.netloc!r} must have 3 to 63 characters")
        check_segments(parsed.path.strip("/"), "store prefix")
    elif parsed.scheme not in ("", "file") or not url:
        raise StoreError(f"unsupported store URL {url!r}",
                         hint="use a directory (file:///path/to/dir or a plain path) or "
                              "s3://bucket/prefix (XBUILD_STORE, --publish)")


def open_store(url: str, *, create: bool = False) -> Store:
    check_url(url)
    parsed = urlparse(url)
    if parsed.scheme == "s3":
        from xbuild.store.s3 import S3Store
        prefix = "/".join(check_segments(parsed.path.strip("/"), "store prefix"))
        return S3Store(parsed.netloc, prefix, url, create=create)
    from xbuild.store.local import FileStore
    if parsed.scheme == "file":
        return FileStore(Path(url2pathname(parsed.path)), url)
    path = Path(url).expanduser().resolve()  # a plain path
    return FileStore(path, path.as_uri())

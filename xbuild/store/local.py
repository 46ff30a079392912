"""A store in a local directory: writes go to a temporary file and are renamed into place, so a
reader never sees a partial object."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from xbuild.errors import StoreError
from xbuild.host.archive import sha256_file


class FileStore:
    def __init__(self, root: Path, url: str):
        self.root, self.url = root, url

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise StoreError(f"key {key!r} leaves the store")
        return path

    def _atomic(self, dest: Path, fill) -> None:
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as f:
                fill(f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, dest)
        except OSError as exc:
            raise StoreError(f"{self.url}: cannot write {dest.name}: {exc.strerror}") from None

    def put_file(self, key, path, sha256, progress=None) -> None:
        dest = self._path(key)
        with path.open("rb") as src:
            self._atomic(dest, lambda f: shutil.copyfileobj(src, f, 1 << 20))
        if sha256_file(dest) != sha256:
            dest.unlink()
            raise StoreError(f"{self.url}: {key} changed while it was stored")
        if progress:
            progress(path.stat().st_size)

    def get_file(self, key, dest) -> None:
        try:
            shutil.copyfile(self._path(key), dest)
        except FileNotFoundError:
            raise StoreError(f"{self.url}: object {key} is missing") from None

    def open(self, key):
        try:
            return self._path(key).open("rb")
        except FileNotFoundError:
            raise StoreError(f"{self.url}: object {key} is missing") from None

    def read(self, key):
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def write(self, key, data) -> None:
        self._atomic(self._path(key), lambda f: f.write(data))

    def exists(self, key) -> bool:
        return self._path(key).is_file()

    def has(self, key, sha256) -> bool:
        path = self._path(key)
        return path.is_file() and sha256_file(path) == sha256

    def list(self, prefix):
        base = self._path(prefix) if prefix else self.root
        if not base.is_dir():
            return []
        return sorted(p.relative_to(self.root).as_posix() for p in base.rglob("*")
                      if p.is_file() and not p.name.startswith(".tmp-"))

    def delete(self, key) -> None:
        self._path(key).unlink(missing_ok=True)

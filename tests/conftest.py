"""Shared fixtures. Integration tests (marked `integration`) use the real Docker engine, real qemu
and real builder images; images are cached by content hash, so each is built once per machine and
shared by every test. Under XBUILD_REQUIRE_INTEGRATION=1 (scripts/test.sh, CI) a missing engine or
binfmt handler fails the run instead of skipping it. Plain helpers (the CLI, project makers,
uploads) are in tests/helpers.py, which bench/ imports too."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.helpers import EXAMPLES, xbuild


def pytest_configure(config):
    # A store of the session's own: no test answers from (or fills) the user's cache.
    import tempfile
    os.environ["XBUILD_STORE"] = Path(tempfile.mkdtemp(prefix="xbuild-test-store-")).as_uri()


@pytest.fixture(scope="session")
def engine():
    """Skip (or, when integration is required, fail) unless the engine and qemu handlers work."""
    problem = None
    try:
        from xbuild.containers import binfmt
        from xbuild.containers.engine import client
        client().ping()
        for arch in ("arm", "aarch64"):
            if (p := binfmt.handler(arch).problem()) is not None:
                problem = p
    except Exception as exc:  # noqa: BLE001 - any failure here means "no engine"
        problem = f"Docker engine not reachable: {exc}"
    if problem:
        if os.environ.get("XBUILD_REQUIRE_INTEGRATION") == "1":
            pytest.fail(f"integration tests required but: {problem}")
        pytest.skip(problem)


class Builds:
    """Builds of the bundled examples, each made once per session and shared between tests."""

    def __init__(self, tmp: Path):
        self.tmp, self.cache = tmp, {}

    def project(self, example: str) -> Path:
        dest = self.tmp / "src" / example
        if not dest.exists():
            shutil.copytree(EXAMPLES / example, dest)
        return dest

    def get(self, example: str, target: str, mode: str = "cross", os: str | None = None) -> dict:
        key = (example, target, mode, os)
        if key not in self.cache:
            out = self.tmp / "out" / f"{example}-{target}-{mode}{'-' + os if os else ''}"
            proc = xbuild("--target", target, self.project(example), "--mode", mode,
                          "--out", out, "--json", *(["--os", os] if os else []))
            assert proc.returncode == 0, f"build failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr[-3000:]}"
            self.cache[key] = json.loads(proc.stdout)
        return self.cache[key]


@pytest.fixture(scope="session")
def builds(engine, tmp_path_factory) -> Builds:
    return Builds(tmp_path_factory.mktemp("builds"))


@pytest.fixture(scope="session")
def s3(tmp_path_factory):
    """One SeaweedFS for the session (stores use their own buckets)."""
    from tests.s3server import SeaweedFS
    server = SeaweedFS(tmp_path_factory.mktemp("seaweedfs"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def s3_env(s3, monkeypatch):
    """The process environment of a client of the test server."""
    for k, v in s3.env("").items():
        if k != "XBUILD_STORE":
            monkeypatch.setenv(k, v)
    return s3

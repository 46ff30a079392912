"""Shared fixtures. Integration tests (marked `integration`) use the real Docker engine, real qemu
and real builder images; images are cached by content hash, so each is built once per machine and
shared by every test. Under XBUILD_REQUIRE_INTEGRATION=1 (scripts/test.sh, CI) a missing engine or
binfmt handler fails the run instead of skipping it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def pytest_configure(config):
    # A store of the session's own: no test answers from (or fills) the user's cache.
    import tempfile
    os.environ["XBUILD_STORE"] = Path(tempfile.mkdtemp(prefix="xbuild-test-store-")).as_uri()


def xbuild(*args, env: dict | None = None, cwd=None, timeout: int = 1800) -> subprocess.CompletedProcess:
    """The real CLI, as a user runs it."""
    full_env = {k: v for k, v in os.environ.items() if k != "XBUILD_DEBUG"}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "xbuild", *map(str, args)], capture_output=True,
                          text=True, env=full_env, cwd=cwd, timeout=timeout)


def tgz(files: dict[str, str | bytes], evil: str | None = None) -> bytes:
    """A project upload (.tar.gz) made from a dict of files; `evil` adds one member of that name."""
    import io
    import tarfile
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in {**files, **({evil: "x"} if evil else {})}.items():
            data = data.encode() if isinstance(data, str) else data
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def make_project(root: Path, files: dict[str, str]) -> Path:
    """A project generated from a dict of files (a value starting with #! becomes executable)."""
    root.mkdir(parents=True, exist_ok=True)
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if text.startswith("#!"):
            path.chmod(0o755)
    return root


def containers_with_env(mark: str) -> list:
    """A test's own containers, found by a variable (NAME=VALUE) only its build passes in
    (`pass_env`): the engine is shared with other builds and tests, whose containers are not
    the test's to count or remove."""
    from docker.errors import NotFound
    from xbuild.engine import client
    from xbuild.sandbox import BUILD_LABEL
    found = []
    for summary in client().api.containers(all=True, filters={"label": BUILD_LABEL}):
        try:  # other builds share the engine: theirs may go while we look
            found.append(client().containers.get(summary["Id"]))
        except NotFound:
            continue
    return [c for c in found if mark in (c.attrs["Config"].get("Env") or [])]


@pytest.fixture(scope="session")
def engine():
    """Skip (or, when integration is required, fail) unless the engine and qemu handlers work."""
    problem = None
    try:
        from xbuild import binfmt
        from xbuild.engine import client
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

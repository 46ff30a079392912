"""The hostile-tree tier (issue 16): generated project trees that break the rule of
tests/security/README.md, run through the real CLI and through a real `serve` + worker.

Each case asserts that the error is clear (its exit code, its message, no traceback), that nothing
outside the job changed (a sentinel home, and the files the tree's links point at), that the CLI's
peak RSS stays bounded (wait4's ru_maxrss of the CLI process itself), and that nothing hangs (every
run has a deadline; a run still going then is a failure, not a slow pass). The trees are small, and
the defects host-side, so most cases end before any container starts."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import make_project
from tests.services import embedded_server

pytestmark = pytest.mark.security
MiB = 1 << 20
RSS_BOUND_MB = 300
DEADLINE = 300  # seconds: a hang, not a slow machine, is what passes it
FAILING = {"xbuild.toml": '[build]\nsteps = ["echo line-the-project-chose; exit 3"]\n'}
# Detection reads the project (a marker in `configure`), then the settings are refused: the whole
# host-side path runs, and no container starts.
REFUSED_AFTER_DETECTION = {"xbuild.toml": '[build]\nsteps = ["true"]\nmake_args = ["x"]\n'}


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    rss_mb: float

    def clear(self, code: int, *words: str) -> None:
        """Exit `code`, an `error:` line holding each word, and no traceback."""
        assert self.code == code, f"exit {self.code}, wanted {code}:\n{self.stderr[-3000:]}"
        assert "Traceback" not in self.stderr and "internal error" not in self.stderr, self.stderr
        assert self.stderr.startswith("error: ") or "\nerror: " in self.stderr, self.stderr
        for word in words:
            assert word in self.stderr, f"{word!r} not in:\n{self.stderr}"
        assert self.rss_mb < RSS_BOUND_MB, f"peak RSS {self.rss_mb:.0f} MB"


@dataclass
class World:
    """A sentinel home (HOME, and the targets of the trees' links), a cache of the run's own."""
    root: Path

    @property
    def home(self) -> Path:
        return self.root / "home"

    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if k != "XBUILD_DEBUG"}
        env.update({"HOME": str(self.home), "XDG_CACHE_HOME": str(self.root / "cache"),
                    "XBUILD_COMPILER_CACHE": "off"})
        return env

    def xbuild(self, *args, timeout: int = DEADLINE, **extra: str) -> Run:
        """The real CLI as its own process: its exit code, output and peak RSS (wait4)."""
        out, err = self.root / "stdout", self.root / "stderr"
        with out.open("wb") as o, err.open("wb") as e:
            proc = subprocess.Popen([sys.executable, "-m", "xbuild", *map(str, args)], stdout=o,
                                    stderr=e, env={**self.env(), **extra}, cwd=self.root)
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                pytest.fail(f"xbuild {' '.join(map(str, args))} still running after {timeout} s")
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
        return Run(proc.returncode, out.read_text(errors="replace"), err.read_text(errors="replace"),
                   usage.ru_maxrss / 1024)


def snapshot(root: Path) -> dict:
    """Every entry under root: type, mode, size, content digest or link target (no link followed)."""
    seen = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode):
                with open(path, "rb") as f:
                    what = hashlib.sha256(f.read()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                what = os.readlink(path)
            else:
                what = ""
            seen[os.path.relpath(path, root)] = (stat.S_IFMT(st.st_mode), st.st_mode & 0o7777, st.st_size,
                                                 st.st_mtime_ns, what)
    return seen


@pytest.fixture
def world(tmp_path):
    w = World(tmp_path)
    make_project(w.home, {".bashrc": "# the user's shell\n", ".ssh/id_ed25519": "SECRET-KEY\n",
                          "notes/todo.txt": "the user's notes\n"})
    (w.home / "empty").mkdir()
    before = snapshot(w.home)
    yield w
    assert snapshot(w.home) == before, "something outside the job changed"


def project(world: World, files: dict[str, str], name: str = "app") -> Path:
    return make_project(world.root / name, files)


# --- links a project ships where xbuild writes (issue 16, item 2) ------------------------------
@pytest.mark.integration
def test_a_failed_log_named_link_to_bashrc_is_replaced_not_written_through(engine, world):
    """The issue's case: the build fails, and its log is copied where the project's link pointed."""
    app = project(world, FAILING)
    (app / "xbuild-out").mkdir()
    (app / "xbuild-out" / "rpi3.failed.log").symlink_to(world.home / ".bashrc")
    run = world.xbuild("--target", "rpi3", app)
    run.clear(7, "exit code 3")
    log = app / "xbuild-out" / "rpi3.failed.log"
    assert not log.is_symlink() and "line-the-project-chose" in log.read_text()


@pytest.mark.parametrize("where,link_to", [
    ("xbuild-out", "home"),                 # the output folder's parent
    ("xbuild-out/rpi3", "home/empty"),      # the output folder itself, to an empty directory
    ("xbuild-out/rpi3", "home/new-dir"),    # ... to a directory the build would make
])
def test_an_output_folder_that_is_a_link_is_refused_before_the_build(world, where, link_to):
    app = project(world, FAILING)
    (app / where).parent.mkdir(parents=True, exist_ok=True)
    (app / where).symlink_to(world.root / link_to)
    world.xbuild("--target", "rpi3", app).clear(45, "symbolic link", str(world.root / link_to))
    assert not (world.root / "home" / "new-dir").exists()


def test_an_out_reached_through_a_link_inside_the_project_is_refused(world):
    app = project(world, FAILING)
    (app / "build").symlink_to(world.home)
    world.xbuild("--target", "rpi3", "--out", app / "build" / "out", app).clear(45, str(app / "build"))


def test_an_output_folder_holding_a_link_to_a_fifo_is_refused_without_reading_it(world):
    """An old output (no marker) is recognised by reading its manifest: never through a link (a
    FIFO there would block the CLI for good)."""
    app = project(world, FAILING)
    out = app / "xbuild-out" / "rpi3"
    out.mkdir(parents=True)
    os.mkfifo(world.root / "fifo")
    (out / "manifest.json").symlink_to(world.root / "fifo")
    (out / "SHA256SUMS").symlink_to(world.root / "fifo")
    world.xbuild("--target", "rpi3", app, timeout=60).clear(45, "manifest.json")


@pytest.mark.integration
def test_keep_refuses_a_kept_tree_that_is_a_link_before_the_build(engine, world):
    app = project(world, FAILING)
    (app / "xbuild-out").mkdir()
    (app / "xbuild-out" / "rpi3.failed").symlink_to(world.home / "empty")
    run = world.xbuild("--target", "rpi3", "--keep", app)
    run.clear(45, "rpi3.failed")
    assert "line-the-project-chose" not in run.stderr  # refused before the build ran


# --- reads: bounded, regular files only, the size limit first (item 5) -------------------------
def _sparse(path: Path, size: int, head: bytes = b"") -> None:
    with path.open("wb") as f:
        f.write(head)
        f.truncate(size)  # apparent size only: no blocks on disk


def test_a_sparse_configure_within_the_limit_is_read_as_a_prefix(world):
    app = project(world, REFUSED_AFTER_DETECTION)
    _sparse(app / "configure", 512 * MiB, b"#!/bin/sh\n# Generated by GNU Autoconf\n")
    world.xbuild("--target", "rpi3", app).clear(6, "make_args")


def test_a_sparse_configure_over_the_limit_is_refused_before_any_read(world):
    app = project(world, {**REFUSED_AFTER_DETECTION, "xbuild.toml": "not = [valid"})
    _sparse(app / "configure", 1024 * MiB, b"# Generated by GNU Autoconf\n")
    # the size, not the broken xbuild.toml: nothing was read before it was checked
    world.xbuild("--target", "rpi3", app, XBUILD_MAX_SOURCE_MB="512").clear(26, "configure")


@pytest.mark.parametrize("kind", ["link", "fifo", "huge"])
def test_an_xbuild_toml_that_is_no_plain_small_file_is_refused(world, kind):
    app = project(world, {"Makefile": "all:\n\ttrue\n"})
    toml = app / "xbuild.toml"
    if kind == "link":  # the parse error would quote the user's key to whoever reads the log
        toml.symlink_to(world.home / ".ssh" / "id_ed25519")
    elif kind == "fifo":
        os.mkfifo(toml)
    else:
        _sparse(toml, 64 * MiB, b"# a comment\n")
    run = world.xbuild("--target", "rpi3", app, timeout=60)
    run.clear(47, "xbuild.toml")
    assert "SECRET-KEY" not in run.stderr


@pytest.mark.parametrize("kind", ["fifo", "link-out", "device"])
def test_a_configure_that_is_no_regular_file_is_never_opened(world, kind):
    """Detection neither blocks on a FIFO, nor reads through a link out of the tree, nor opens a
    device (mknod needs root: skipped without it)."""
    app = project(world, REFUSED_AFTER_DETECTION)
    conf = app / "configure"
    if kind == "fifo":
        os.mkfifo(conf)
    elif kind == "link-out":
        conf.symlink_to(world.home / ".ssh" / "id_ed25519")
    else:
        try:
            os.mknod(conf, stat.S_IFCHR | 0o644, os.makedev(1, 5))  # /dev/zero's numbers
        except PermissionError:
            pytest.skip("mknod needs root")
    world.xbuild("--target", "rpi3", app, timeout=60).clear(6, "make_args")


# --- names and shapes the host must survive ------------------------------------------------------
@pytest.fixture
def deep(request):
    """deep(root, depth, name): a chain of directories, made and removed through descriptors
    (the full path may pass PATH_MAX; pytest's own clean-up would recurse past Python's limit)."""
    made = []

    def make(root: Path, depth: int, name: str) -> None:
        fd = os.open(root, os.O_RDONLY)
        for _ in range(depth):
            os.mkdir(name, dir_fd=fd)
            fd, old = os.open(name, os.O_RDONLY, dir_fd=fd), fd
            os.close(old)
        os.close(fd)
        made.append((root, depth, name))
    yield make
    for root, depth, name in made:
        fd = os.open(root, os.O_RDONLY)
        for _ in range(depth - 1):  # down to the deepest directory's parent
            fd, old = os.open(name, os.O_RDONLY, dir_fd=fd), fd
            os.close(old)
        for _ in range(depth):  # then up, removing one level each time
            os.rmdir(name, dir_fd=fd)
            fd, old = os.open("..", os.O_RDONLY, dir_fd=fd), fd
            os.close(old)
        os.close(fd)


@pytest.mark.integration
def test_directories_nested_1500_deep_are_walked_without_recursion(engine, world, deep):
    """Hashed, archived and built (3.11's os.walk recursed: a RecursionError, "internal error")."""
    app = project(world, FAILING)
    deep(app, 1500, "d")
    world.xbuild("--target", "rpi3", app).clear(7, "exit code 3")


def test_a_path_longer_than_path_max_is_a_clear_error(world, deep):
    app = project(world, REFUSED_AFTER_DETECTION)
    deep(app, 2100, "dd")
    world.xbuild("--target", "rpi3", app).clear(48, "File name too long")


@pytest.mark.integration
@pytest.mark.parametrize("name", [b"not-utf8-\xff\xfe", b"new\nline", b"esc-\x1b]0;title\x07", b"..x", b"-rf"])
def test_odd_file_names_are_hashed_copied_and_built(engine, world, name):
    """A name need not be UTF-8 (the hash takes its bytes: it was a UnicodeEncodeError)."""
    app = project(world, FAILING)
    (Path(os.fsdecode(app)) / os.fsdecode(name)).write_text("x")
    os.mkdir(os.path.join(os.fsencode(app), name + b".d"))
    run = world.xbuild("--target", "rpi3", app)
    run.clear(7, "exit code 3")
    assert "\x1b" not in run.stderr


def test_a_project_folder_with_control_characters_is_shown_escaped(world):
    app = project(world, {"README": "nothing to build"}, name="app\x1b[2J\x07")
    run = world.xbuild("--target", "rpi3", app)
    run.clear(5, "no build recipe")
    assert "\x1b" not in run.stderr and "\x07" not in run.stderr


# --- names that become paths (item 6) ----------------------------------------------------------
@pytest.mark.parametrize("args", [("--os", "../../.."), ("--os", "../../../cache-owner"),
                                  ("--target", "../.."), ("--target", "rpi3", "--os", "../..")])
def test_cache_clear_takes_only_known_boards_and_releases(world, args):
    cache = world.root / "cache"
    (cache / "xbuild" / "ccache" / "rpi3" / "bookworm" / "gcc-cross").mkdir(parents=True)
    (cache / "keep").mkdir()
    (cache / "keep" / "precious").write_text("another program's cache")
    run = world.xbuild("cache", "clear", *args)
    assert run.code in (3, 36), run.stderr  # UnknownTarget, UnknownRelease
    run.clear(run.code, "../")
    assert (cache / "keep" / "precious").read_text() == "another program's cache"
    assert (cache / "xbuild" / "ccache" / "rpi3" / "bookworm" / "gcc-cross").is_dir()


def test_submit_names_its_download_folder_only_from_plain_names(world):
    app = project(world, {"Makefile": "all:\n\ttrue\n"})
    run = world.xbuild("submit", "--server", "http://127.0.0.1:9", "--target", "rpi3",
                       "--os", "../../../../home", app)  # app/xbuild-out/rpi3-../../../../home: HOME
    run.clear(46, "../../../../home")


# --- the same trees through a real serve + worker ----------------------------------------------
def _member(name: str, data: bytes = b"", size: int | None = None) -> bytes:
    """A tar member's header and data (padded to its block), as tar writes it."""
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data) if size is None else size, 0o755
    return info.tobuf(format=tarfile.GNU_FORMAT) + data + (bytes(-len(data) % tarfile.BLOCKSIZE)
                                                           if size is None else b"")


def _zeros_tgz(path: Path, files: dict[str, str], name: str, size: int, head: bytes) -> Path:
    """A .tar.gz of a few hundred KB holding `files` and `name`: `head` then zeros, `size` bytes
    in all (a plain member, not a sparse one: the upload check counts it in full and lets it in).
    Gzip members concatenated are one gzip stream: the zeros are compressed once, written often."""
    zeros = gzip.compress(bytes(64 * MiB), mtime=0)
    with path.open("wb") as f:
        small = b"".join(_member(rel, text.encode()) for rel, text in files.items())
        f.write(gzip.compress(small + _member(name, head, size=size), mtime=0))
        left = size - len(head)
        for _ in range(left // (64 * MiB)):
            f.write(zeros)
        end = bytes(left % (64 * MiB) + (-size) % tarfile.BLOCKSIZE + 2 * tarfile.RECORDSIZE)
        f.write(gzip.compress(end, mtime=0))
    return path


def _peak_mb(pids) -> float:
    peaks = []
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        peaks += [int(ln.split()[1]) / 1024 for ln in status.splitlines() if ln.startswith("VmHWM:")]
    return max(peaks, default=0.0)


@pytest.fixture(scope="module")
def server(engine, tmp_path_factory):
    with embedded_server(tmp_path_factory.mktemp("hostile-svc")) as srv:
        yield srv


def _submit(server, path: Path) -> dict:
    import requests

    from tests.integration.test_service import _auth, _wait
    with path.open("rb") as f:
        resp = requests.post(f"{server.url}/v1/builds", headers=_auth(), timeout=120,
                             files={"source": ("s.tar.gz", f)}, data={"target": "rpi3", "project": "app"})
    assert resp.status_code == 201, resp.text
    return _wait(server, resp.json()["id"], timeout=DEADLINE)


@pytest.mark.integration
def test_an_upload_of_a_huge_configure_costs_the_worker_little_memory(server, tmp_path):
    """The issue's "a 2 MB upload can do the same to a worker": 512 MB of configure in 500 KB."""
    from tests.services import descendants
    upload = _zeros_tgz(tmp_path / "s.tar.gz", REFUSED_AFTER_DETECTION, "configure", 512 * MiB,
                        b"#!/bin/sh\n# Generated by GNU Autoconf\n")
    assert upload.stat().st_size < 2 * MiB
    job = _submit(server, upload)
    assert job["state"] == "failed" and job["exit_code"] == 6 and "make_args" in job["error"], job
    peak = _peak_mb([server.proc.p.pid, *descendants(server.proc.p.pid)])
    assert peak < RSS_BOUND_MB, f"serve's or its worker's peak RSS {peak:.0f} MB"
    print(f"peak RSS of serve and its worker: {peak:.0f} MB")


@pytest.mark.integration
def test_an_uploaded_xbuild_toml_that_is_a_link_is_not_read(server, tmp_path):
    files = {"notes.txt": REFUSED_AFTER_DETECTION["xbuild.toml"], "Makefile": "all:\n\ttrue\n"}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for rel, text in files.items():
            info = tarfile.TarInfo(rel)
            info.size = len(text)
            tar.addfile(info, io.BytesIO(text.encode()))
        link = tarfile.TarInfo("xbuild.toml")
        link.type, link.linkname = tarfile.SYMTYPE, "notes.txt"
        tar.addfile(link)
    (tmp_path / "s.tar.gz").write_bytes(buf.getvalue())
    job = _submit(server, tmp_path / "s.tar.gz")
    assert job["state"] == "failed" and job["exit_code"] == 47 and "symbolic link" in job["error"], job


@pytest.mark.integration
@pytest.mark.parametrize("name", ["..", "a/../../b", "x\ny"])
def test_a_job_record_whose_project_is_no_name_fails_cleanly(server, monkeypatch, name):
    """A record is data too (an older API accepted project ".."): its names join no path unchecked."""
    import requests

    from tests.integration.test_service import TOKEN_A, _auth
    from xbuild.request import BuildRequest
    from xbuild.service.execute import run_job
    from xbuild.service.jobs import Job, Jobs, tenant_of
    from xbuild.store import open_store
    for k in ("XBUILD_STATE_DIR", "XBUILD_STORE"):
        monkeypatch.setenv(k, server.env[k])
    monkeypatch.delenv("XBUILD_BROKER_URL", raising=False)
    jobs = Jobs(open_store(server.env["XBUILD_STORE"]))
    job = Job(id=f"20260101-000000-{hashlib.sha256(name.encode()).hexdigest()[:8]}",
              tenant=tenant_of(TOKEN_A), request=BuildRequest("rpi3"), project=name)
    jobs.save(job)
    assert run_job(job.tenant, job.id, jobs) == "failed"
    done = requests.get(f"{server.url}/v1/builds/{job.id}", headers=_auth()).json()
    assert done["exit_code"] == 46 and "project name" in done["error"], done
    assert not list(Path(server.env["XBUILD_STATE_DIR"]).rglob("b"))


@pytest.mark.integration
def test_keep_twice_replaces_a_kept_tree_holding_the_projects_own_links(engine, world):
    app = project(world, FAILING)
    (app / "README").symlink_to("xbuild.toml")
    for _ in range(2):
        world.xbuild("--target", "rpi3", "--keep", app).clear(7, "build tree kept in")
    assert (app / "xbuild-out" / "rpi3.failed" / "README").is_symlink()


@pytest.mark.integration
def test_an_upload_nesting_1500_directories_fails_cleanly_and_is_removed(server, tmp_path):
    """The worker walks, hashes, builds and removes it (3.11's rmtree recursed: the job's clean-up
    was a RecursionError, and the upload stayed on the worker's disk)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        text = FAILING["xbuild.toml"].encode()
        info = tarfile.TarInfo("xbuild.toml")
        info.size = len(text)
        tar.addfile(info, io.BytesIO(text))
        for depth in range(1, 1501):
            d = tarfile.TarInfo("/".join(["d"] * depth))
            d.type = tarfile.DIRTYPE
            tar.addfile(d)
    (tmp_path / "s.tar.gz").write_bytes(buf.getvalue())
    job = _submit(server, tmp_path / "s.tar.gz")
    assert job["state"] == "failed" and job["exit_code"] == 7, job
    assert not list((Path(server.env["XBUILD_STATE_DIR"]) / "work").glob(f"{job['id']}-*"))


@pytest.mark.integration
def test_a_build_output_nesting_1200_directories_is_a_clear_error(engine, world):
    """What a build container writes is untrusted too: an install tree 1200 deep was laid out,
    listed and packed by code that recurses (a RecursionError, "internal error")."""
    steps = 'd="$XBUILD_OUT"; for i in $(seq 1200); do d="$d/d"; done; mkdir -p "$d"; echo x > "$d/f"'
    app = project(world, {"xbuild.toml": f"[build]\nsteps = [{steps!r}]\n"})  # a TOML literal string
    world.xbuild("--target", "rpi3", app).clear(14, "nests directories more than")

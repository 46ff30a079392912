"""Hostile and careless inputs to output directories, archives, sources and stores (issue 8).

Each builds its input itself, runs the real CLI (or the real server) and asserts the clear error,
its exit code, and that nothing outside the test's own directories changed. Memory is measured as
the peak RSS of the real CLI, run as the only child of a fresh Python."""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import uuid
from pathlib import Path

import pytest

from tests.helpers import make_project, xbuild

pytestmark = pytest.mark.security
GiB, MiB = 1 << 30, 1 << 20
RSS_BOUND_MB = 300  # well below every data size used here (1 to 3 GiB)
SCRIPT = {"xbuild.toml": '[build]\nsteps = ["mkdir -p $XBUILD_OUT/bin && echo hi > $XBUILD_OUT/bin/hi"]\n'}


def xbuild_rss(*args, env: dict | None = None, timeout: int = 1800) -> tuple[subprocess.CompletedProcess, float]:
    """The real CLI and its peak RSS in MB (ru_maxrss of the children of a fresh wrapper)."""
    wrapper = ("import json, resource, subprocess, sys\n"
               "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
               "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
               "print(json.dumps([p.returncode, p.stdout, p.stderr, rss]))\n")
    full_env = {k: v for k, v in os.environ.items() if k != "XBUILD_DEBUG"}
    full_env.update(env or {})
    out = subprocess.run([sys.executable, "-c", wrapper, sys.executable, "-m", "xbuild", *map(str, args)],
                         capture_output=True, text=True, env=full_env, timeout=timeout, check=True)
    code, stdout, stderr, rss = json.loads(out.stdout)
    return subprocess.CompletedProcess(args, code, stdout, stderr), rss


def user_dir(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "thesis.tex").write_text("years of work")
    return path


def assert_untouched(path: Path) -> None:
    assert sorted(p.name for p in path.iterdir()) == ["thesis.tex"]
    assert (path / "thesis.tex").read_text() == "years of work"
    assert not [p for p in path.parent.iterdir() if p.name.startswith(f".{path.name}.")]  # no debris


def published(tmp_path: Path) -> tuple[str, str]:
    """A real file store holding one build (made with publish.publish, as a build records it)."""
    from xbuild.store import open_store, publish
    out = tmp_path / "built"
    out.mkdir()
    (out / "app-rpi3.tar.gz").write_bytes(gzip.compress(b"not really a tar", mtime=0))
    (out / "manifest.json").write_text(json.dumps({"xbuild": {"version": "t"}}))
    store_dir = tmp_path / "store"
    record = {"schema": 1, "build_id": "rpi3-0123456789abcdef0123", "project": "app", "target": "rpi3",
              "mode": "cross", "recipe": "script", "cache_key": "k", "source_tree_sha256": "s", "image": "i"}
    publish.publish(open_store(store_dir.as_uri()), "", out, record)
    return store_dir.as_uri(), record["build_id"]


# --- defect 2: --out never deletes what xbuild did not make ---------------------------------------
def test_build_out_on_a_directory_of_the_users_files_is_refused(tmp_path):
    project = make_project(tmp_path / "app", SCRIPT)
    mine = user_dir(tmp_path / "mine")
    proc = xbuild("--target", "rpi3", project, "--out", mine)
    assert proc.returncode == 25, proc.stderr
    assert str(mine) in proc.stderr and "thesis.tex" in proc.stderr and "Traceback" not in proc.stderr
    assert_untouched(mine)


@pytest.mark.parametrize("cwd,project_arg,out", [("app", ".", "."),        # the project itself
                                                  ("", "app", "."),          # its parent
                                                  ("app", ".", "..")])
def test_build_out_on_the_project_or_above_it_is_refused(tmp_path, cwd, project_arg, out):
    make_project(tmp_path / "app", SCRIPT)
    (tmp_path / "app" / ".xbuild-out").write_text("")  # even a marker does not make a project xbuild's
    before = sorted(p.name for p in tmp_path.rglob("*"))
    proc = xbuild("--target", "rpi3", project_arg, "--out", out, cwd=tmp_path / cwd)
    assert proc.returncode == 25, proc.stderr
    assert "is the project or contains it" in proc.stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_artifacts_get_out_on_a_directory_of_the_users_files_is_refused(tmp_path):
    store, build_id = published(tmp_path)
    mine = user_dir(tmp_path / "mine")
    proc = xbuild("artifacts", "get", f"{store}/{build_id}", "--out", mine)
    assert proc.returncode == 25, proc.stderr
    assert str(mine) in proc.stderr and "Traceback" not in proc.stderr
    assert_untouched(mine)


def test_artifacts_get_replaces_a_directory_it_made_and_fills_an_empty_one(tmp_path):
    store, build_id = published(tmp_path)
    out = tmp_path / "out"
    out.mkdir()  # empty: taken
    for _ in range(2):  # the second time, the directory is xbuild's own: replaced whole
        proc = xbuild("artifacts", "get", f"{store}/{build_id}", "--out", out)
        assert proc.returncode == 0, proc.stderr
        assert sorted(p.name for p in out.iterdir()) == [".xbuild-out", "app-rpi3.tar.gz", "manifest.json"]
        (out / "stray").write_text("left in xbuild's own directory: replaced with it")


def test_submit_out_on_a_directory_of_the_users_files_is_refused_before_uploading(tmp_path):
    project = make_project(tmp_path / "app", SCRIPT)
    mine = user_dir(tmp_path / "mine")
    # No server listens there: the refusal comes before any request (and before a build).
    proc = xbuild("submit", "--server", "http://127.0.0.1:9", "--target", "rpi3", project, "--out", mine,
                  env={"XBUILD_TOKEN": "t"})
    assert proc.returncode == 25, proc.stderr
    assert_untouched(mine)
    proc = xbuild("submit", "--server", "http://127.0.0.1:9", "--target", "rpi3", project, "--out", project,
                  env={"XBUILD_TOKEN": "t"})
    assert proc.returncode == 25 and "project" in proc.stderr


@pytest.mark.integration
def test_build_replaces_its_own_output_directory(engine, tmp_path):
    project = make_project(tmp_path / "app", SCRIPT)
    out = tmp_path / "out"
    for extra in ((), ("--no-cache",), ()):  # built, rebuilt (swap_in), then from the cache (fetch)
        proc = xbuild("--target", "rpi3", project, "--out", out, "--json", *extra)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert (out / ".xbuild-out").is_file() and (out / "app-rpi3.tar.gz").is_file()
    assert json.loads(proc.stdout)["cache"] == "hit"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app", "out"]  # no debris beside it


@pytest.mark.integration
def test_an_out_inside_the_project_is_not_swept_into_the_build(engine, tmp_path):
    """The output, its temporary siblings and a failure's log stay out of the source tree hash."""
    project = make_project(tmp_path / "app", SCRIPT)
    first = json.loads(xbuild("--target", "rpi3", project, "--out", project / "dist", "--json").stdout)
    (project / "dist.failed.log").write_text("an earlier failure")
    (project / ".dist.tmp-abc").mkdir()
    second = json.loads(xbuild("--target", "rpi3", project, "--out", project / "dist", "--json").stdout)
    assert second["source_hash"] == first["source_hash"] and second["cache"] == "hit"


# --- defect 3: memory and disk bombs -------------------------------------------------------------
def test_a_project_with_a_3_gib_sparse_file_is_refused_quickly_in_little_memory(tmp_path):
    project = make_project(tmp_path / "app", SCRIPT)
    with (project / "disk.img").open("wb") as f:
        f.truncate(3 * GiB)  # 3 GiB apparent, no blocks on disk
    proc, rss = xbuild_rss("--target", "rpi3", project, env={"XBUILD_MAX_SOURCE_MB": ""})
    assert proc.returncode == 26, proc.stderr
    assert "disk.img" in proc.stderr and "XBUILD_MAX_SOURCE_MB" in proc.stderr
    assert rss < RSS_BOUND_MB, f"peak RSS {rss:.0f} MB"


def _gzip_bomb(path: Path, size: int) -> Path:
    """A .tar.gz of about 1 MB that unpacks to a tar holding one file of `size` zero bytes."""
    info = tarfile.TarInfo("bin/hello")
    info.size, info.mode = size, 0o755
    zeros = gzip.compress(bytes(64 * MiB), compresslevel=9, mtime=0)
    with path.open("wb") as f:  # gzip members concatenated are one gzip stream of their data
        f.write(gzip.compress(info.tobuf(format=tarfile.GNU_FORMAT), mtime=0))
        for _ in range(size // (64 * MiB)):
            f.write(zeros)
        f.write(gzip.compress(bytes(2 * tarfile.RECORDSIZE), mtime=0))
    return path


def test_xbuild_run_on_a_gzip_bomb_stops_at_the_cap_in_little_memory(tmp_path):
    bomb = _gzip_bomb(tmp_path / "hello-rpi3.tar.gz", 1 * GiB)
    assert bomb.stat().st_size < 2 * MiB
    proc, rss = xbuild_rss("run", "--target", "rpi3", bomb, "--", "bin/hello",
                           env={"XBUILD_MAX_OUTPUT_MB": "256", "TMPDIR": str(tmp_path)})
    assert proc.returncode == 27, proc.stderr
    assert str(bomb) in proc.stderr and "XBUILD_MAX_OUTPUT_MB=256" in proc.stderr
    assert rss < RSS_BOUND_MB, f"peak RSS {rss:.0f} MB"
    assert sorted(p.name for p in tmp_path.iterdir()) == [bomb.name]  # its temporary file is gone


def test_xbuild_run_refuses_an_artifact_with_a_link_out_before_any_engine_work(tmp_path):
    link = tarfile.TarInfo("bin/hello")
    link.type, link.linkname = tarfile.SYMTYPE, "../../../../etc/shadow"
    art = tmp_path / "evil.tar.gz"
    with tarfile.open(art, "w:gz") as tar:
        tar.addfile(link)
    proc = xbuild("run", "--target", "rpi3", art, "--", "bin/hello", env={"TMPDIR": str(tmp_path)})
    assert proc.returncode == 14, proc.stderr
    assert "points out of the tree" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.tar.gz"]


def _gnu_tar(tmp_path: Path, *options: str) -> Path:
    if shutil.which("tar") is None:
        pytest.skip("GNU tar not found: apt-get install tar")
    src = tmp_path / "src"
    src.mkdir()
    (src / "Makefile").write_text("all:\n")
    with (src / "disk.img").open("wb") as f:
        f.truncate(3 * GiB)
    dest = tmp_path / "sparse.tar.gz"
    subprocess.run(["tar", "--sparse", *options, "-czf", str(dest), "-C", str(src), "."], check=True)
    return dest


@pytest.mark.parametrize("options", [("--format=gnu",), ("--format=pax", "--sparse-version=1.0"),
                                     ("--format=pax", "--sparse-version=0.1")])
def test_an_upload_with_a_sparse_member_is_refused(tmp_path, options):
    from xbuild.errors import BadArtifact
    from xbuild.host.archive import check_upload
    upload = _gnu_tar(tmp_path, *options)
    assert upload.stat().st_size < 64 * 1024  # a few hundred bytes claiming 3 GiB
    with pytest.raises(BadArtifact, match="sparse"):
        check_upload(upload)


def _tar_gz(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.GNU_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _info(name, type=tarfile.REGTYPE, size=0, linkname=""):
    info = tarfile.TarInfo(name)
    info.type, info.size, info.linkname = type, size, linkname
    return info


@pytest.mark.parametrize("members,why", [
    ([(_info("../../etc/cron.d/x", size=1), b"x")], "unsafe path"),
    ([(_info("/etc/passwd", size=1), b"x")], "unsafe path"),
    ([(_info("up", tarfile.SYMTYPE, linkname="../../.."), None)], "out of the tree"),
    ([(_info("pw", tarfile.LNKTYPE, linkname="/etc/passwd"), None)], "out of the tree"),
    ([(_info("dev", tarfile.CHRTYPE), None)], "device"),
    ([(_info("fifo", tarfile.FIFOTYPE), None)], "device"),
])
def test_unsafe_uploads_are_refused(tmp_path, members, why):
    from xbuild.errors import BadArtifact
    from xbuild.host.archive import check_upload
    (tmp_path / "u.tar.gz").write_bytes(_tar_gz(members))
    with pytest.raises(BadArtifact, match=why):
        check_upload(tmp_path / "u.tar.gz")


def test_an_upload_over_the_source_cap_is_refused_as_a_stream(tmp_path, monkeypatch):
    from xbuild.errors import SourceTooLarge
    from xbuild.host.archive import check_upload
    monkeypatch.setenv("XBUILD_MAX_SOURCE_MB", "8")
    many = [(_info(f"f{i}"), b"") for i in range(20_000)]  # 20,000 empty files: 10 MB of headers
    (tmp_path / "many.tar.gz").write_bytes(_tar_gz(many))
    with pytest.raises(SourceTooLarge, match="XBUILD_MAX_SOURCE_MB=8"):
        check_upload(tmp_path / "many.tar.gz")
    big = _gzip_bomb(tmp_path / "bomb.tar.gz", 64 * MiB)  # one 64 MB member: refused by its header
    with pytest.raises(SourceTooLarge):
        check_upload(big)


def test_a_huge_pax_header_is_refused_before_it_is_read(tmp_path):
    from xbuild.errors import BadArtifact
    from xbuild.host.archive import check_upload, extract
    header = _info("././@PaxHeader", tarfile.XHDTYPE, size=1 * GiB)
    with (tmp_path / "pax.tar").open("wb") as f:  # the header claims 1 GiB; tarfile would read it whole
        f.write(header.tobuf(format=tarfile.USTAR_FORMAT))
        f.write(bytes(1024))
    with pytest.raises(BadArtifact, match="extended header"):
        check_upload(tmp_path / "pax.tar")
    with pytest.raises(BadArtifact, match="extended header"):
        extract(tmp_path / "pax.tar", tmp_path / "dest", "pax.tar")
    assert not (tmp_path / "dest").exists()


def test_extraction_is_capped_by_apparent_size(tmp_path, monkeypatch):
    from xbuild.errors import OutputTooLarge
    from xbuild.host.archive import extract
    monkeypatch.setenv("XBUILD_MAX_OUTPUT_MB", "16")
    bomb = _gzip_bomb(tmp_path / "bomb.tar.gz", 64 * MiB)
    with pytest.raises(OutputTooLarge) as exc:
        extract(bomb, tmp_path / "dest", "bomb.tar.gz")
    assert exc.value.exit_code == 27 and "XBUILD_MAX_OUTPUT_MB=16" in exc.value.message
    assert not (tmp_path / "dest").exists()


@pytest.mark.parametrize("value", ["lots", "-1", "0", "1.5"])
def test_a_wrong_cap_is_a_clear_config_error(tmp_path, value):
    project = make_project(tmp_path / "app", SCRIPT)
    proc = xbuild("--target", "rpi3", project, env={"XBUILD_MAX_SOURCE_MB": value})
    assert proc.returncode == 6 and "XBUILD_MAX_SOURCE_MB" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.integration
def test_the_api_refuses_sparse_and_oversized_uploads_in_little_memory(tmp_path):
    import requests

    from tests.services import Server
    env = {k: v for k, v in os.environ.items() if k != "XBUILD_DEBUG"}
    env.update({"XBUILD_STATE_DIR": str(tmp_path / "state"), "XBUILD_STORE": (tmp_path / "store").as_uri(),
                "XBUILD_API_TOKENS": "tok-1", "XBUILD_MAX_SOURCE_MB": "256"})
    sparse = _gnu_tar(tmp_path, "--format=gnu").read_bytes()
    bomb = _gzip_bomb(tmp_path / "bomb.tar.gz", 1 * GiB).read_bytes()
    server = Server(env, tmp_path)
    try:
        def post(data):
            return requests.post(f"{server.url}/v1/builds", headers={"Authorization": "Bearer tok-1"},
                                 files={"source": ("s.tar.gz", data)}, data={"target": "rpi3"}, timeout=120)

        resp = post(sparse)
        assert resp.status_code == 422 and "sparse" in resp.json()["error"], resp.text
        resp = post(bomb)
        assert resp.status_code == 413 and "XBUILD_MAX_SOURCE_MB=256" in resp.json()["error"], resp.text
        status = Path(f"/proc/{server.proc.p.pid}/status").read_text()
        peak = int(next(ln.split()[1] for ln in status.splitlines() if ln.startswith("VmHWM:"))) / 1024
        assert peak < RSS_BOUND_MB, f"serve's peak RSS {peak:.0f} MB"
        assert not list((tmp_path / "store").rglob("source.tar.gz"))  # nothing refused was stored
    finally:
        server.stop()


@pytest.mark.integration
def test_a_build_output_over_the_cap_is_refused_in_little_memory(engine, tmp_path):
    project = make_project(tmp_path / "app", {
        "xbuild.toml": '[build]\nsteps = ["mkdir -p $XBUILD_OUT && truncate -s 1G $XBUILD_OUT/disk.img"]\n'})
    out = tmp_path / "out"
    proc, rss = xbuild_rss("--target", "rpi3", project, "--out", out, "--no-cache",
                           env={"XBUILD_MAX_OUTPUT_MB": "128"})
    assert proc.returncode == 27, proc.stderr[-2000:]
    assert "build output" in proc.stderr and "XBUILD_MAX_OUTPUT_MB=128" in proc.stderr
    assert rss < RSS_BOUND_MB, f"peak RSS {rss:.0f} MB"
    assert not out.exists()


@pytest.mark.integration
def test_a_large_legitimate_output_does_not_raise_memory(engine, tmp_path):
    """300 MB of random data built, collected, archived and recorded: memory stays flat."""
    project = make_project(tmp_path / "app", {
        "xbuild.toml": '[build]\nsteps = ["mkdir -p $XBUILD_OUT/share && '
                       'head -c 300M /dev/urandom > $XBUILD_OUT/share/blob"]\n'})
    out = tmp_path / "out"
    proc, rss = xbuild_rss("--target", "rpi3", project, "--out", out, "--no-cache", "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    with tarfile.open(out / "app-rpi3.tar.gz") as tar:
        assert tar.getmember("share/blob").size == 300 * MiB
    assert rss < 200, f"peak RSS {rss:.0f} MB for a 300 MB output"


# --- defect 7: store URLs and records --------------------------------------------------------------
def test_a_file_url_with_a_host_is_refused(tmp_path):
    name = f"xbuild-hostile-{uuid.uuid4().hex[:8]}"
    proc = xbuild("artifacts", "ls", f"file://tmp/{name}")
    assert proc.returncode == 15, proc.stderr
    assert f"file:///tmp/{name}" in proc.stderr  # the hint says what was meant
    assert not Path("/", name).exists() and not Path("/tmp", name).exists()


@pytest.mark.parametrize("tamper,why", [
    (lambda r: r["files"][0].update(name=""), "not a plain file name"),
    (lambda r: r["files"][0].update(name="../../outside"), "not a plain file name"),
    (lambda r: r["files"][0].update(name="a/b"), "not a plain file name"),
    (lambda r: r["files"][0].update(name=".."), "not a plain file name"),
    (lambda r: r["files"][0].update(name=5), "not a plain file name"),
    (lambda r: r["files"][0].update(size="12"), "not a byte count"),
    (lambda r: r["files"][0].update(sha256=None), "not a SHA-256"),
    (lambda r: r["files"][0].update(object="../../../etc/passwd"), "not the object of its sha256"),
    (lambda r: r["files"].append(dict(r["files"][0])), "appears twice"),
    (lambda r: r.update(files="all of them"), "must be a list"),
    (lambda r: r.update(files=[["x"]]), "not an object"),
    (lambda r: r.update(target=7), "'target' must be"),
    (lambda r: r.update(published_at=[1]), "'published_at' must be"),
    (lambda r: r.update(build_id="other"), "names build"),
])
def test_a_tampered_record_is_a_clear_store_error_and_writes_nothing(tmp_path, tamper, why):
    store, build_id = published(tmp_path)
    record_path = Path(store.removeprefix("file://")) / build_id / "manifest.json"
    record = json.loads(record_path.read_text())
    tamper(record)
    record_path.write_text(json.dumps(record))
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    for args in (("get", f"{store}/{build_id}", "--out", tmp_path / "got"), ("ls", store)):
        proc = xbuild("artifacts", *args)
        assert proc.returncode == 15, proc.stderr
        assert why in proc.stderr and build_id in proc.stderr and "Traceback" not in proc.stderr
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before


@pytest.mark.parametrize("var,url", [("XBUILD_PUBLISH", "file://tmp/{name}"), ("XBUILD_STORE", "file://tmp/{name}"),
                                     ("XBUILD_PUBLISH", "ftp://host/{name}")])
def test_a_wrong_store_url_is_refused_before_the_build(tmp_path, var, url):
    name = f"xbuild-hostile-{uuid.uuid4().hex[:8]}"
    project = make_project(tmp_path / "app", SCRIPT)
    proc = xbuild("--target", "rpi3", project, env={var: url.format(name=name)})
    assert proc.returncode == 15, proc.stderr
    assert "image:" not in proc.stderr  # refused before any engine work
    assert not Path("/", name).exists() and not (project / "xbuild-out").exists()


def _peak_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(ln.split()[1] for ln in status.splitlines() if ln.startswith("VmHWM:"))) / 1024


@pytest.mark.integration
def test_a_large_artifact_is_served_and_downloaded_in_little_memory(engine, tmp_path):
    """serve sends a 256 MB artifact as a stream, and submit writes it as one: neither process
    grows with it (the server used to read the whole object into memory, and submit too)."""
    import requests

    from tests.services import Server
    env = {k: v for k, v in os.environ.items() if k != "XBUILD_DEBUG"}
    env.update({"XBUILD_STATE_DIR": str(tmp_path / "state"), "XBUILD_STORE": (tmp_path / "store").as_uri(),
                "XBUILD_API_TOKENS": "tok-1"})
    project = make_project(tmp_path / "big", {
        "xbuild.toml": '[build]\nsteps = ["mkdir -p $XBUILD_OUT/share && '
                       'head -c 256M /dev/urandom > $XBUILD_OUT/share/blob"]\n'})
    server = Server(env, tmp_path)
    try:
        proc, submit_rss = xbuild_rss("submit", "--server", server.url, "--target", "rpi3", project,
                                      "--out", tmp_path / "first", env={**env, "XBUILD_TOKEN": "tok-1"})
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert (tmp_path / "first" / "big-rpi3.tar.gz").stat().st_size > 256 * MiB
        assert submit_rss < RSS_BOUND_MB, f"submit's peak RSS {submit_rss:.0f} MB"
        before = _peak_mb(server.proc.p.pid)
        auth = {"Authorization": "Bearer tok-1"}
        job = requests.get(f"{server.url}/v1/builds", headers=auth, timeout=30).json()["builds"][0]
        files = requests.get(f"{server.url}/v1/builds/{job['id']}/artifacts", headers=auth, timeout=30).json()
        url = next(f["url"] for f in files["files"] if f["name"].endswith(".tar.gz"))
        with requests.get(server.url + url, headers=auth, stream=True, timeout=120) as resp:
            assert resp.status_code == 200
            size = sum(len(chunk) for chunk in resp.iter_content(1 << 20))
        assert size > 256 * MiB
        grew = _peak_mb(server.proc.p.pid) - before
        assert grew < 64, f"serve's peak RSS grew by {grew:.0f} MB sending a {size >> 20} MB artifact"
    finally:
        server.stop()

"""Sources that weigh little and cost much (issue 16, item 8). 5.6 MB of gzip holding 800,000
empty entries grew the API from 74 to 482 MB (it kept every tar header) and a worker to about
1 GB, and the job took 14 minutes. Uploads are read in one streaming pass that keeps no header,
and a source holds at most XBUILD_MAX_SOURCE_FILES entries: in the API (a 413), in the worker's
unpack, and in the CLI's walk of a project (exit 51)."""

from __future__ import annotations

import io
import json
import tarfile
import uuid
from pathlib import Path

import pytest
import requests

from tests.helpers import make_project, xbuild

pytestmark = pytest.mark.security

def _many(path: Path, entries: int, steps=("test -f many/1 && echo ok > out.txt",)) -> Path:
    """A .tar.gz of `entries` entries, as tar(1) or `xbuild submit` makes it: xbuild.toml (the
    steps; out.txt is the artifact), the directory many/ and empty files in it. Written as it
    goes: never whole in memory."""
    toml = f'[build]\nsteps = {json.dumps(list(steps))}\nartifacts = ["out.txt"]\n'.encode()
    with tarfile.open(path, "w:gz") as tar:
        config = tarfile.TarInfo("xbuild.toml")
        config.size = len(toml)
        tar.addfile(config, io.BytesIO(toml))
        folder = tarfile.TarInfo("many")
        folder.type, folder.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(folder)
        for i in range(entries - 2):
            tar.addfile(tarfile.TarInfo(f"many/{i}"))
    return path


def test_an_upload_over_the_file_cap_is_refused_and_so_is_its_unpack(tmp_path, monkeypatch):
    from xbuild.errors import TooManyFiles
    from xbuild.host.archive import check_upload, extract, max_source_files
    monkeypatch.setenv("XBUILD_MAX_SOURCE_FILES", "50")
    assert max_source_files() == 50
    check_upload(_many(tmp_path / "at.tar.gz", 50))
    extract(tmp_path / "at.tar.gz", tmp_path / "at", "uploaded source", files=50)
    assert len(list((tmp_path / "at").rglob("*"))) == 50
    over = _many(tmp_path / "over.tar.gz", 51)
    with pytest.raises(TooManyFiles, match=r"more than 50 .*XBUILD_MAX_SOURCE_FILES=50"):
        check_upload(over)
    with pytest.raises(TooManyFiles, match="XBUILD_MAX_SOURCE_FILES=50"):  # the worker's unpack
        extract(over, tmp_path / "over", "uploaded source", files=50)
    assert not (tmp_path / "over").exists()  # checked before anything was written


def test_the_cli_refuses_a_project_over_the_file_cap(tmp_path):
    project = make_project(tmp_path / "p", {"Makefile": "all:\n\ttrue\n",
                                            **{f"src/{i}.c": "" for i in range(10)}})
    (project / ".git").mkdir()  # left out of the build: not counted
    (project / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    proc = xbuild("--target", "rpi3", project, env={"XBUILD_MAX_SOURCE_FILES": "11"})
    assert proc.returncode == 51, proc.stderr  # 12 entries: Makefile, src/ and its 10 files
    assert "more than 11 files and directories (XBUILD_MAX_SOURCE_FILES=11)" in proc.stderr
    assert "hint: " in proc.stderr and "Traceback" not in proc.stderr


def _peak_mb(pid: int) -> float:
    """The process's peak resident set (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmHWM for {pid}")


@pytest.mark.integration
def test_a_farm_stays_small_for_any_upload_within_the_limits(engine, s3, tmp_path):
    """A real farm (Redis, SeaweedFS, `xbuild serve`, `xbuild worker`): an upload of as many
    entries as the default cap allows builds, one of 800,000 is a 413 naming the limit, and the
    peak RSS of the API and of the worker's processes stays under 300 MB."""
    from tests.integration.test_service import _auth, _env, _wait
    from tests.services import Redis, Server, descendants, xbuild_proc
    from xbuild.host.archive import max_source_files
    cap = max_source_files()
    redis = Redis(tmp_path / "redis")
    env = _env(tmp_path, XBUILD_BROKER_URL=redis.url, **s3.env(f"s3://upload-limits-{uuid.uuid4().hex[:8]}/farm"))
    server = worker = None
    try:
        server = Server(env, tmp_path)
        worker = xbuild_proc(["worker", "--name", "limits@test"], env, tmp_path / "worker.log")
        at_cap = _many(tmp_path / "at-cap.tar.gz", cap)
        with at_cap.open("rb") as f:
            resp = requests.post(f"{server.url}/v1/builds", headers=_auth(), files={"source": f},
                                 data={"target": "rpi3", "project": "many"})
        assert resp.status_code == 201, resp.text
        done = _wait(server, resp.json()["id"], timeout=1200)
        assert done["state"] == "succeeded", done
        over = _many(tmp_path / "over.tar.gz", 800_000)
        with over.open("rb") as f:
            resp = requests.post(f"{server.url}/v1/builds", headers=_auth(), files={"source": f},
                                 data={"target": "rpi3", "project": "many"})
        assert resp.status_code == 413, resp.text
        assert f"XBUILD_MAX_SOURCE_FILES={cap}" in resp.json()["error"]
        peaks = {"api": _peak_mb(server.proc.p.pid),
                 **{f"worker {pid}": _peak_mb(pid) for pid in [worker.p.pid, *descendants(worker.p.pid)]}}
        print(f"upload of {cap} entries ({at_cap.stat().st_size >> 10} KB), then one of 800,000 "
              f"({over.stat().st_size >> 10} KB): peak RSS in MB {peaks}")
        assert len(peaks) >= 3 and max(peaks.values()) < 300, peaks  # the API, the worker, its child
    finally:
        if worker is not None:
            worker.kill()
        if server is not None:
            server.stop()
        redis.kill()


@pytest.mark.integration
def test_the_worker_refuses_a_source_over_the_file_cap(engine, tmp_path, monkeypatch):
    """A source in the store over the worker's cap (put there by an API with a higher one, or an
    older one): the worker's unpack refuses it, and the job fails with exit 51, the limit named."""
    from xbuild.host.archive import sha256_file
    from xbuild.request import BuildRequest
    from xbuild.service.execute import run_job
    from xbuild.service.jobs import Job, Jobs, new_id, tenant_of
    from xbuild.store import open_store
    store = (tmp_path / "store").as_uri()
    for name, value in {"XBUILD_STATE_DIR": str(tmp_path / "state"), "XBUILD_STORE": store,
                        "XBUILD_MAX_SOURCE_FILES": "50"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("XBUILD_BROKER_URL", raising=False)  # the embedded farm's lease: a file
    jobs = Jobs(open_store(store, create=True))
    job = Job(id=new_id(), tenant=tenant_of("token-a-123"), request=BuildRequest("rpi3"), project="many")
    source = _many(tmp_path / "s.tar.gz", 51)
    jobs.store.put_file(f"{job.prefix}/source.tar.gz", source, sha256_file(source))
    jobs.save(job)
    assert run_job(job.tenant, job.id, jobs) == "failed"
    done = jobs.get(job.tenant, job.id)
    assert done.exit_code == 51 and "XBUILD_MAX_SOURCE_FILES=50" in done.error, done
    assert not list((tmp_path / "state" / "work").iterdir())  # nothing of it left on the worker

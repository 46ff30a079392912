"""The compiler cache with the real engine, the images' real ccache, real qemu (emulate), a real
SeaweedFS and the real service: hits after a one-file change, outputs bit for bit the same cold,
warm and without the cache, `verify` with a warm cache, stats/clear (by a non-root user too), and
tenants' caches kept apart in the farm."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import requests

from tests.helpers import make_project, tgz, xbuild
from xbuild.request import BuildRequest

pytestmark = pytest.mark.integration
N = 6  # C files: a one-file change recompiles one of them
NS = "rpi3/trixie/gcc-cross"  # the board's, release's and toolchain's part of a namespace


def _ns(project: Path, base: str = NS) -> str:
    """The namespace of a project on this machine: its own, under its resolved path."""
    from xbuild.pipeline.compiler_cache import project_key
    return f"{base}/{project_key(project.name, str(project.resolve()))}"


def _dir(home: dict, ns: str) -> Path:
    return Path(home["XDG_CACHE_HOME"]) / "xbuild" / "compiler-cache" / ns


def _files(n: int = N) -> dict[str, str]:
    files = {f"m{i}.c": f'#include <stdio.h>\nint f{i}(int x) {{ return x * {i + 3} + {i}; }}\n'
             for i in range(1, n)}
    files["main.c"] = ("#include <stdio.h>\n" + "".join(f"int f{i}(int);\n" for i in range(1, n)) +
                       'int main(void) { int s = 0;\n' + "".join(f"  s += f{i}(s);\n" for i in range(1, n)) +
                       '  printf("%s %d\\n", __FILE__, s); return 0; }\n')
    objs = " ".join(f"m{i}.o" for i in range(1, n)) + " main.o"
    files["Makefile"] = (f"CFLAGS ?= -O2 -g\nsum: {objs}\n\t$(CC) $(CFLAGS) -o $@ $^\n"
                         "install: sum\n\tinstall -D -m755 sum $(DESTDIR)$(PREFIX)/bin/sum\n")
    return files


@pytest.fixture
def home(tmp_path):
    """A user cache directory of the test's own: its compiler caches start empty."""
    return {"XDG_CACHE_HOME": str(tmp_path / "xdg"), "XBUILD_STORE": (tmp_path / "store").as_uri()}


def _build(project: Path, out: Path, env: dict, *extra: str) -> dict:
    proc = xbuild("--target", "rpi3", project, "--out", out, "--no-cache", "--json", *extra, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def _sha(result: dict) -> str:
    return result["artifacts"][0]["sha256"]


def test_a_one_file_change_hits_and_the_outputs_stay_identical(engine, tmp_path, home):
    project = make_project(tmp_path / "sum", _files())
    cold = _build(project, tmp_path / "cold", home)
    ns = _ns(project)
    assert cold["compiler_cache"] == {"enabled": True, "hits": 0, "misses": N, "namespace": ns}
    cache_dir = _dir(home, ns)
    assert any(cache_dir.rglob("*R"))  # ccache's result files, written by the container's uid 1000

    warm = _build(project, tmp_path / "warm", home)
    assert warm["compiler_cache"]["hits"] == N and warm["compiler_cache"]["misses"] == 0
    assert _sha(warm) == _sha(cold)
    assert (tmp_path / "warm" / "manifest.json").read_bytes() == \
        (tmp_path / "cold" / "manifest.json").read_bytes()  # stats stay out of the manifest
    assert f"[xbuild] compiler cache {ns}: {N} hits, 0 misses" in \
        (tmp_path / "warm" / "build.log").read_text()

    (project / "m2.c").write_text((project / "m2.c").read_text().replace("* 5", "* 50"))
    changed = _build(project, tmp_path / "changed", home)
    assert (changed["compiler_cache"]["hits"], changed["compiler_cache"]["misses"]) == (N - 1, 1)

    before = sorted((p.relative_to(cache_dir), p.stat().st_mtime_ns) for p in cache_dir.rglob("*"))
    off = _build(project, tmp_path / "off", home, "--no-compiler-cache")
    assert off["compiler_cache"] == {"enabled": False, "hits": 0, "misses": 0, "namespace": None}
    assert _sha(off) == _sha(changed) and _sha(off) != _sha(cold)
    assert (tmp_path / "off" / "manifest.json").read_bytes() == \
        (tmp_path / "changed" / "manifest.json").read_bytes()
    # not mounted: the cache is untouched, and the log has no compiler cache line
    assert sorted((p.relative_to(cache_dir), p.stat().st_mtime_ns) for p in cache_dir.rglob("*")) == before
    assert "compiler cache" not in (tmp_path / "off" / "build.log").read_text()
    env_off = _build(project, tmp_path / "env-off", {**home, "XBUILD_COMPILER_CACHE": "off"})
    assert env_off["compiler_cache"]["enabled"] is False and _sha(env_off) == _sha(off)
    # the build cache key is the same with and without the compiler cache
    assert off["cache_key"] == changed["cache_key"] == env_off["cache_key"]

    text = xbuild("--target", "rpi3", project, "--out", tmp_path / "text", "--no-cache", env=home)
    assert f"compiler cache: {N} hits, 0 misses ({ns})" in text.stdout


def test_verify_passes_with_a_warm_cache_and_hits(engine, tmp_path, home):
    from xbuild.pipeline import compiler_cache
    project = make_project(tmp_path / "sum", _files())
    cold = _build(project, tmp_path / "cold", home)
    cache_dir = _dir(home, _ns(project))
    hits = compiler_cache.counters(cache_dir)[0]
    proc = xbuild("verify", "--target", "rpi3", project, "--json", env=home)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert json.loads(proc.stdout)["status"] == "reproducible"
    # the first build's objects come from the cache; the second (another directory, umask 077,
    # TZ and locale) compiles afresh, so the two compare cached objects with fresh ones
    assert compiler_cache.counters(cache_dir)[0] - hits == N

    # and a build that varies all that still hits (hash_dir off, locale sloppiness), identically
    import dataclasses

    from xbuild.pipeline import spec as specs
    from xbuild.pipeline.build import run_build
    from xbuild.pipeline.context import NO_CACHE
    from xbuild.pipeline.verify import SECOND
    spec = dataclasses.replace(specs.resolve(project, BuildRequest("rpi3")), variation=SECOND, out=tmp_path / "second")
    result = run_build(spec, cache=NO_CACHE, compiler_cache=cache_dir)
    assert (result.extra["compiler_cache"]["hits"], result.extra["compiler_cache"]["misses"]) == (N, 0)
    assert result.artifacts[0].sha256 == cold["artifacts"][0]["sha256"]


def test_emulate_and_zig_hit_with_identical_outputs(engine, tmp_path, home):
    project = make_project(tmp_path / "sum", _files(3))
    for target, mode, ns in (("rpi3", "emulate", "rpi3/trixie/gcc-native"),
                             ("rpi0", "cross", "rpi0/trixie/zig")):
        results = []
        for n, extra in enumerate(([], [], ["--no-compiler-cache"])):
            proc = xbuild("--target", target, "--mode", mode, project, "--out",
                          tmp_path / f"{target}-{mode}-{n}", "--no-cache", "--json", *extra, env=home)
            assert proc.returncode == 0, proc.stderr[-3000:]
            results.append(json.loads(proc.stdout))
        cold, warm, off = (r["compiler_cache"] for r in results)
        assert (cold["namespace"], cold["hits"], cold["misses"]) == (_ns(project, ns), 0, 3)
        assert (warm["hits"], warm["misses"]) == (3, 0)
        assert off["enabled"] is False
        assert len({_sha(r) for r in results}) == 1, target


def test_stats_and_clear(engine, tmp_path, home):
    project = make_project(tmp_path / "sum", _files(2))
    _build(project, tmp_path / "a", home)
    _build(project, tmp_path / "b", home)
    proc = xbuild("cache", "stats", "--json", env=home)
    assert proc.returncode == 0, proc.stderr
    stats = json.loads(proc.stdout)
    [row] = stats["caches"]
    assert row["namespace"] == _ns(project) and (row["hits"], row["misses"]) == (2, 2)
    assert row["files"] > 0 and row["bytes"] > 0 and stats["max_size"] == "2G"
    assert "2 hits, 2 misses (50%)" in xbuild("cache", "stats", env=home).stdout
    assert json.loads(xbuild("cache", "stats", "--target", "rpi0", "--json", env=home).stdout)["caches"] == []
    assert json.loads(xbuild("cache", "clear", "--os", "bookworm", "--json", env=home).stdout)["cleared"] == []
    proc = xbuild("cache", "clear", "--target", "rpi3", env=home)
    assert proc.returncode == 0 and _ns(project) in proc.stdout
    assert json.loads(xbuild("cache", "stats", "--json", env=home).stdout)["caches"] == []
    assert _build(project, tmp_path / "c", home)["compiler_cache"]["misses"] == 2  # really gone


def test_projects_share_a_cache_only_when_they_opt_in(engine, tmp_path, home):
    """The same sources in two folders: two projects, two caches; with
    XBUILD_COMPILER_CACHE_SHARE=1 (or --share-compiler-cache) one namespace, and hits."""
    first = make_project(tmp_path / "one" / "sum", _files(2))
    second = make_project(tmp_path / "two" / "sum", _files(2))
    _build(first, tmp_path / "a", home)
    alone = _build(second, tmp_path / "b", home)["compiler_cache"]
    assert (alone["namespace"], alone["hits"], alone["misses"]) == (_ns(second), 0, 2)
    share = {**home, "XBUILD_COMPILER_CACHE_SHARE": "1"}
    _build(first, tmp_path / "c", share)
    shared = _build(second, tmp_path / "d", home, "--share-compiler-cache")["compiler_cache"]
    assert (shared["namespace"], shared["hits"], shared["misses"]) == (f"{NS}/shared", 2, 0)


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root to become another user")
def test_a_non_root_user_clears_what_the_container_wrote(engine, tmp_path):
    """The cache of a user whose uid is not the container's 1000: that user can clear it."""
    from xbuild.pipeline import compiler_cache
    uid = 4321
    home = Path(tempfile.mkdtemp(prefix="xbuild-cc-user-"))  # pytest's own tmp is root's alone
    try:
        home.chmod(0o755)
        env = {"XDG_CACHE_HOME": str(home / "xdg"), "XBUILD_STORE": (tmp_path / "store").as_uri()}
        project = make_project(tmp_path / "sum", _files(2))
        _build(project, tmp_path / "out", env)  # as root: the engine's socket is root's here
        cache_dir = home / "xdg" / "xbuild" / "compiler-cache" / _ns(project)
        for p in [home / "xdg", *cache_dir.parents, cache_dir]:
            if p.is_relative_to(home / "xdg"):
                shutil.chown(p, uid, uid)  # what that user's own xbuild would have made
        assert any(p.stat().st_uid == 1000 for p in cache_dir.rglob("*"))  # the container's files
        proc = subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                               sys.executable, "-m", "xbuild", "cache", "clear"], capture_output=True,
                              text=True, env={**os.environ, **env, "HOME": str(home)})
        assert proc.returncode == 0, proc.stderr
        assert not cache_dir.exists() and compiler_cache.counters(cache_dir) == (0, 0)
    finally:
        shutil.rmtree(home)


# --- the farm ---------------------------------------------------------------------------------
TOKEN_A, TOKEN_B = "cc-token-a-123", "cc-token-b-456"


@pytest.fixture
def farm(engine, s3_env, tmp_path):
    s3 = s3_env  # this process reads the store too
    from tests.services import Server
    bucket = f"xbuild-cc-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if k != "XBUILD_DEBUG"}
    env.update(s3.env(f"s3://{bucket}/farm"))
    env.update({"XBUILD_STATE_DIR": str(tmp_path / "state"), "XBUILD_API_TOKENS": f"{TOKEN_A},{TOKEN_B}",
                "XDG_CACHE_HOME": str(tmp_path / "worker-home")})
    from xbuild.store import open_store
    open_store(env["XBUILD_STORE"], create=True)  # before serve and its worker race to make it
    server = Server(env, tmp_path)
    server.env = env
    yield server
    server.stop()


def _farm_ns(project: str = "sum") -> str:
    """The farm's namespace of a tenant's project: by its name (the tenant is in the store key)."""
    from xbuild.pipeline.compiler_cache import project_key
    return f"{NS}/{project_key(project, project)}"


def _job(server, files, token, project: str = "sum") -> tuple[dict, str]:
    auth = {"Authorization": f"Bearer {token}"}
    job = requests.post(f"{server.url}/v1/builds", headers=auth, files={"source": ("s.tar.gz", tgz(files))},
                        data={"target": "rpi3", "project": project})
    assert job.status_code < 300, job.text
    job = job.json()
    for _ in range(600):
        job = requests.get(f"{server.url}/v1/builds/{job['id']}", headers=auth).json()
        if job["state"] not in ("queued", "running"):
            break
        time.sleep(0.5)
    log = requests.get(f"{server.url}/v1/builds/{job['id']}/log", headers=auth).text
    assert job["state"] == "succeeded", log[-3000:]
    return job, log


def _hits(log: str, project: str = "sum") -> tuple[int, int]:
    m = re.search(rf"compiler cache {_farm_ns(project)}: (\d+) hits, (\d+) misses", log)
    assert m, log[-3000:]
    return int(m.group(1)), int(m.group(2))


def test_the_farm_shares_a_tenants_cache_through_s3_and_never_across_tenants(farm):
    from xbuild.pipeline import compiler_cache
    from xbuild.service.jobs import tenant_of
    from xbuild.store import open_store
    files = _files()
    _, log = _job(farm, files, TOKEN_A)
    assert _hits(log) == (0, N) and "compiler cache: none yet" in log and "published" in log
    store = open_store(farm.env["XBUILD_STORE"])
    key_a = compiler_cache.store_key(tenant_of(TOKEN_A), _farm_ns())
    assert store.exists(key_a)

    # every job starts from an empty, job-private directory: a fresh worker's disk
    files["m2.c"] = files["m2.c"].replace("* 5", "* 50")
    job, log = _job(farm, files, TOKEN_A)
    assert "compiler cache: fetched" in log and _hits(log) == (N - 1, 1)
    assert job["compiler_cache"] == {"enabled": True, "hits": N - 1, "misses": 1, "namespace": _farm_ns()}
    assert not any((Path(farm.env["XDG_CACHE_HOME"]) / "xbuild" / "compiler-cache").glob("*"))  # never local

    # the same tenant's other project (another name) has a cache of its own: nothing fetched
    _, log = _job(farm, files, TOKEN_A, project="other")
    assert "compiler cache: none yet" in log and _hits(log, "other") == (0, N)

    # tenant B uploads the very same sources: not answered from A's build record (A's build
    # went through A's compiler cache, which A alone wrote), and nothing of A's cache is
    # fetched: every compile misses
    a_object = store.read(key_a)
    job_b, log = _job(farm, files, TOKEN_B)
    assert job_b["cache"] == "miss" and job_b["cache_key"] == job["cache_key"]
    assert "compiler cache: none yet" in log and _hits(log) == (0, N)
    key_b = compiler_cache.store_key(tenant_of(TOKEN_B), _farm_ns())
    assert store.exists(key_b) and key_a != key_b
    assert store.read(key_a) == a_object  # B's publish went to B's object alone


def test_a_build_that_fills_the_mounted_cache_is_killed_at_the_disk_limit(engine, tmp_path, home):
    """The mount is outside the container's layer, which the disk watchdog measures: its growth
    counts too. A FIFO planted where ccache keeps its counters does not hang xbuild either."""
    project = make_project(tmp_path / "filler", {"xbuild.toml": (
        '[build]\nsteps = ["mkdir -p /ccache/1 && mkfifo /ccache/1/stats && '
        'for i in 1 2 3 4 5 6 7 8; do dd if=/dev/zero of=/ccache/junk$i bs=1M count=8; done && sleep 20"]\n')})
    proc = xbuild("--target", "rpi3", project, "--no-cache", "--timeout", "120",
                  env={**home, "XBUILD_MAX_DISK_MB": "40"})
    assert proc.returncode == 29, proc.stderr[-2000:]
    assert "disk limit of 40 MB" in proc.stderr and "MB written" in proc.stderr  # not one file's ulimit


def test_the_size_cap_evicts(engine, tmp_path, home):
    import random
    rng = random.Random(11)
    files = {f"d{i}.c": "const unsigned d{}[] = {{{}}};\n".format(i, ",".join(str(rng.randrange(1 << 31))
                                                                               for _ in range(10000)))
             for i in range(30)}  # 30 objects of 40 kB that do not compress
    files["main.c"] = "int main(void) { return 0; }\n"
    files["Makefile"] = f"prog: main.o {' '.join(f'd{i}.o' for i in range(30))}\n\t$(CC) -o $@ $^\n"
    project = make_project(tmp_path / "big", files)
    result = _build(project, tmp_path / "out", {**home, "XBUILD_COMPILER_CACHE_SIZE": "400k"})
    assert result["compiler_cache"]["misses"] == 31
    cache_dir = _dir(home, _ns(project))
    results = [p.stat().st_size for p in cache_dir.rglob("*R")]  # ccache's result files
    assert 0 < len(results) < 31 and sum(results) <= 400_000


# --- CI runners -------------------------------------------------------------------------------
def test_ci_runners_share_the_cache_through_an_s3_store_and_only_trusted_runs_push(engine, s3_env, tmp_path):
    """Ephemeral runners (each an empty user cache directory) with one s3:// XBUILD_STORE: the
    first pushes its cache (XBUILD_COMPILER_CACHE_PUSH=1), a fresh one starts from it, and a run
    without the variable (a pull request's) uses it but never writes it."""
    from xbuild.pipeline import compiler_cache
    from xbuild.store import open_store
    url = f"s3://xbuild-ci-{uuid.uuid4().hex[:8]}/ci"
    open_store(url, create=True)
    store = open_store(url)
    files = _files()
    project = make_project(tmp_path / "p", files)
    key = compiler_cache.store_key(compiler_cache.CI_TENANT, _ns(project))

    def runner(n: int, push: bool) -> dict:
        env = {**s3_env.env(url), "XDG_CACHE_HOME": str(tmp_path / f"runner{n}"),
               "XBUILD_COMPILER_CACHE_PUSH": "1" if push else "0"}
        return _build(project, tmp_path / f"out{n}", env)

    first = runner(1, push=True)
    assert first["compiler_cache"]["misses"] == N and store.exists(key)
    pushed = store.read(key)
    (project / "m2.c").write_text(files["m2.c"].replace("* 5", "* 50"))  # one file changed
    second = runner(2, push=False)  # a fresh runner: the store's cache, one compile
    assert (second["compiler_cache"]["hits"], second["compiler_cache"]["misses"]) == (N - 1, 1)
    assert store.read(key) == pushed  # not trusted to push: the shared cache is as it was

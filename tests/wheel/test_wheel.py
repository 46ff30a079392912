"""xbuild as installed from its wheel, in a clean virtualenv without the test extras: the boards
and recipes are the repository's, a build for rpi3 makes an artifact that runs as the board's
CPU, and a farm (`xbuild serve` + `xbuild worker` on a real Redis) takes a `submit --wait`."""

from __future__ import annotations

import json
import shutil
import tarfile
import time
from pathlib import Path

import pytest

from tests.helpers import EXAMPLES, ROOT
from tests.services import Proc, Redis, free_port

pytestmark = [pytest.mark.wheel, pytest.mark.integration]

TOKEN = "wheel-tier-token"


def test_the_wheel_is_what_runs_and_it_has_no_test_extras(wheel_venv):
    proc = wheel_venv.python(
        "import importlib.util, json, xbuild, xbuild.datafiles as d;"
        "print(json.dumps({'pkg': xbuild.__file__, 'data': str(d.data_dir()),"
        " 'pytest': importlib.util.find_spec('pytest') is not None}))")
    assert proc.returncode == 0, proc.stderr
    facts = json.loads(proc.stdout)
    site = str(wheel_venv.root)
    assert facts["pkg"].startswith(site) and "site-packages" in facts["pkg"]
    assert facts["data"].startswith(site) and facts["data"].endswith("xbuild/data")
    assert facts["pytest"] is False  # what the test extra brings cannot hide a missing dependency


def test_every_module_and_advertised_transport_imports_without_the_test_extras(wheel_venv):
    """A runtime import that only the test extra satisfied (kombu's Redis transport needs
    `packaging`, which pytest used to bring) is found here, not on a user's farm."""
    proc = wheel_venv.python(
        "import importlib, pkgutil, xbuild\n"
        "names = [m.name for m in pkgutil.walk_packages(xbuild.__path__, 'xbuild.')"
        " if not m.name.endswith('__main__')]\n"
        "names += ['kombu.transport.redis', 'kombu.transport.pyamqp', 'kombu.transport.sqlalchemy',"
        " 'celery.backends.redis', 'celery.backends.database', 'boto3', 'docker', 'waitress']\n"
        "for n in names: importlib.import_module(n)\n"
        "print(len(names))")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert int(proc.stdout) > 40


@pytest.mark.parametrize("kind", ["targets", "releases", "recipes", "toolchains", "autoconf"])
def test_the_wheel_carries_the_repositorys_data_files(wheel_venv, kind):
    proc = wheel_venv.python("import xbuild.datafiles as d; print(d.data_dir())")
    shipped = Path(proc.stdout.strip()) / kind
    ours = sorted(p.name for p in (ROOT / kind).glob("*.toml"))
    assert ours and sorted(p.name for p in shipped.glob("*.toml")) == ours
    for name in ours:
        assert (shipped / name).read_bytes() == (ROOT / kind / name).read_bytes(), name


def test_lists_the_repositorys_boards(wheel_venv):
    proc = wheel_venv.run("targets", "--json")
    assert proc.returncode == 0, proc.stderr
    names = sorted(t["name"] for t in json.loads(proc.stdout)["targets"])
    assert names == sorted(p.stem for p in (ROOT / "targets").glob("*.toml"))
    plain = wheel_venv.run("targets")
    assert plain.returncode == 0 and "rpi3" in plain.stdout and "Cortex" in plain.stdout


def _hello(tmp_path: Path) -> Path:
    return shutil.copytree(EXAMPLES / "hello-make", tmp_path / "hello-make",
                           ignore=shutil.ignore_patterns("xbuild-out"))


def _check_artifact(wheel_venv, out: Path, env: dict) -> None:
    archive = out / "hello-make-rpi3.tar.gz"
    with tarfile.open(archive) as tar:
        assert "bin/hello" in tar.getnames()
    manifest = json.loads((out / "manifest.json").read_text())
    elves = [f["elf"] for f in manifest["files"] if "elf" in f]
    assert elves and all(e["machine"] == "ARM" and e["float_abi"] == "hard" for e in elves)
    assert (out / "SHA256SUMS").read_text().count("hello-make-rpi3.tar.gz") == 1
    # ... and it runs as the board's CPU, under qemu, through the wheel's own `xbuild run`.
    run = wheel_venv.run("run", "--target", "rpi3", archive, "--", "bin/hello", env=env)
    assert run.returncode == 0, run.stderr
    assert "Hello from xbuild" in run.stdout
    arch = wheel_venv.run("run", "--target", "rpi3", archive, "--", "bin/hello", "--arch", env=env)
    assert arch.returncode == 0 and arch.stdout.strip().startswith("armv"), (arch.stdout, arch.stderr)


def test_builds_an_example_for_rpi3(engine, wheel_venv, tmp_path):
    project = _hello(tmp_path)
    # A store of its own: a cache hit from a build by the checkout would prove nothing.
    env = wheel_venv.env(XBUILD_STORE=(tmp_path / "store").as_uri())
    proc = wheel_venv.run("--target", "rpi3", project, "--json", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert result["status"] == "ok" and result["recipe"] == "make" and result["cache"] == "miss"
    _check_artifact(wheel_venv, project / "xbuild-out" / "rpi3", env)


def _wait_healthy(url: str, proc: Proc, log: Path) -> None:
    import requests
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.p.poll() is None:
        try:
            if requests.get(f"{url}/healthz", timeout=1).ok:
                return
        except requests.RequestException:
            time.sleep(0.2)
    proc.kill()
    pytest.fail(f"xbuild serve did not start: {log.read_text()[-2000:]}")


@pytest.fixture
def farm(engine, wheel_venv, tmp_path):
    """Redis, `xbuild serve` and one `xbuild worker`, all from the wheel's virtualenv."""
    redis = Redis(tmp_path / "redis")
    common = {"XBUILD_BROKER_URL": redis.url, "XBUILD_STORE": (tmp_path / "store").as_uri(),
              "XBUILD_STATE_DIR": str(tmp_path / "state")}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    procs = []
    try:
        serve_log = tmp_path / "serve.log"
        procs.append(Proc([str(wheel_venv.xbuild_exe), "serve", "--port", str(port)],
                          wheel_venv.env(XBUILD_API_TOKENS=TOKEN, **common), serve_log))
        _wait_healthy(url, procs[0], serve_log)
        # The worker needs no API token: it only takes jobs from the broker.
        procs.append(Proc([str(wheel_venv.xbuild_exe), "worker", "--name", "wheel@test"],
                          wheel_venv.env(**common), tmp_path / "worker.log"))
        yield url
    finally:
        for p in reversed(procs):
            p.stop()
        redis.kill()


def test_serve_and_worker_on_redis_take_a_submit_wait(farm, wheel_venv, tmp_path):
    project = _hello(tmp_path)
    env = wheel_venv.env(XBUILD_TOKEN=TOKEN)
    proc = wheel_venv.run("submit", "--server", farm, "--target", "rpi3", project, "--wait", "--json",
                          env=env, timeout=900)
    logs = "".join(f"\n--- {p.name}\n{p.read_text()[-2000:]}" for p in sorted(tmp_path.glob("*.log")))
    assert proc.returncode == 0, proc.stderr[-3000:] + logs
    result = json.loads(proc.stdout)
    assert result["state"] == "succeeded" and result["queue"] == "xbuild.armhf", result
    assert result["cache"] == "miss"  # built by the worker, not answered from a store
    assert "ABI gate" in proc.stderr  # the log was streamed to the client
    _check_artifact(wheel_venv, project / "xbuild-out" / "rpi3", wheel_venv.env())


def test_the_wheel_brings_zig_and_picks_it_for_the_pi_zero(wheel_venv):
    """ziglang is a dependency, not a test extra: a user's install can build for rpi0."""
    proc = wheel_venv.python(
        "from xbuild import toolchain\n"
        "from xbuild.board import targets\n"
        "from xbuild.toolchain.zig import installed\n"
        "tc = toolchain.pick(targets.get('rpi0'))\n"
        "home, version = installed()\n"
        "print(tc.name, version, (home / 'zig').is_file())")
    assert proc.returncode == 0, proc.stderr
    name, version, present = proc.stdout.split()
    assert name == "zig" and version and present == "True"

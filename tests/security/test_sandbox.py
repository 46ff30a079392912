"""The build container and what comes out of it, against hostile or careless builds: limits
(time, memory, pids, disk), Dockerfile builds, signals, logs, secrets and the reader's terminal.
Every build here is a real one (the real CLI, the real engine); each checks the clear error and
that nothing is left behind."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.helpers import containers_with_env, make_project, xbuild
from xbuild.request import BuildRequest

pytestmark = pytest.mark.security
integration = pytest.mark.integration

ESC = "\x1b"
# A clipboard write (OSC 52), a screen clear and a cursor jump (CSI), a bare CR, a one-byte CSI.
EVIL_SH = r"printf '\033]52;c;cHduZWQ=\007 \033[2J\033[H \r \0233J\n'" + "\n"


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.5)
    raise AssertionError(f"{what}: not within {timeout} s")


def _sleeping_project(root: Path, mark_name: str) -> Path:
    return make_project(root, {"xbuild.toml": f'[build]\nsteps = ["echo sleeping; sleep 600"]\n'
                                              f'pass_env = ["{mark_name}"]\n'})


# --- the terminal ----------------------------------------------------------------------------
def test_control_characters_are_rendered_visibly():
    from xbuild.host.terminal import safe
    shown = safe("a\x1b]52;c;cHduZWQ=\x07b\x1b[2J\tc\rd\x9b3J\u202e")
    assert shown == "a^[]52;c;cHduZWQ=^Gb^[[2J\tc^Md\\x9b3J\\u202e"
    assert not any(ch in shown for ch in "\x1b\x07\r\x9b\u202e")


def test_the_progress_line_renders_control_characters():
    from xbuild.pipeline.progress import Progress

    class Tty(io.StringIO):
        def isatty(self):
            return True

    for verbose in (False, True):
        stream = Tty()
        progress = Progress(stream, verbose=verbose)
        progress.phase("build", "step 1/1: \x1b]0;title\x07")
        progress.line("\x1b]52;c;cHduZWQ=\x07 \x1b[2J")
        text = stream.getvalue().replace("\r\x1b[K", "")  # the status line's own redraw
        assert ESC not in text and "\x07" not in text and "^[]52;c;cHduZWQ=^G" in text


@integration
def test_build_output_reaches_the_terminal_rendered(engine, tmp_path):
    """The error tail and the verbose log: no raw escape reaches stderr; build.log keeps them."""
    project = make_project(tmp_path / "evil", {"evil.sh": EVIL_SH,
                                               "xbuild.toml": '[build]\nsteps = ["sh evil.sh; exit 3"]\n'})
    for args in ((), ("-v",)):
        proc = xbuild("--target", "rpi3", project, *args)
        assert proc.returncode == 7, proc.stderr
        assert ESC not in proc.stderr and "\x9b" not in proc.stderr and "\r" not in proc.stderr
        assert "^[]52;c;cHduZWQ=^G" in proc.stderr and "^[[2J" in proc.stderr
    kept = (tmp_path / "evil" / "xbuild-out" / "rpi3.failed.log").read_bytes()
    assert b"\x1b]52;c;cHduZWQ=\x07" in kept  # the file keeps what the build printed


@integration
def test_submit_renders_the_streamed_log(engine, tmp_path):
    from tests.services import Server
    env = {**{k: v for k, v in os.environ.items() if k != "XBUILD_DEBUG"},
           "XBUILD_STATE_DIR": str(tmp_path / "state"), "XBUILD_STORE": (tmp_path / "store").as_uri(),
           "XBUILD_API_TOKENS": "tok-sandbox-1"}
    server = Server(env, tmp_path)
    try:
        project = make_project(tmp_path / "evil", {"evil.sh": EVIL_SH, "xbuild.toml": '''[build]
steps = ["sh evil.sh", "touch a.txt"]
artifacts = ["a.txt"]
'''})
        proc = xbuild("submit", "--server", server.url, "--target", "rpi3", project,
                      env={"XBUILD_TOKEN": "tok-sandbox-1"})
    finally:
        server.stop()
    assert proc.returncode == 0, proc.stderr
    assert "^[]52;c;cHduZWQ=^G" in proc.stderr  # the log was streamed, rendered
    assert ESC not in proc.stderr and "\x9b" not in proc.stderr


# --- secrets ---------------------------------------------------------------------------------
@integration
def test_passed_secrets_are_masked_in_logs_and_the_store(engine, tmp_path):
    secret = f"tok-{uuid.uuid4().hex}"
    store = tmp_path / "store"
    project = make_project(tmp_path / "p", {"xbuild.toml": '''[build]
steps = ["echo the token is $MY_TOKEN", "touch a.txt", "echo again:$MY_TOKEN:end; exit 4"]
artifacts = ["a.txt"]
pass_env = ["MY_TOKEN"]
'''})
    proc = xbuild("--target", "rpi3", project, "-v", env={"MY_TOKEN": secret, "XBUILD_STORE": store.as_uri()})
    assert proc.returncode == 7, proc.stderr
    assert "again:***:end" in proc.stderr  # the error tail, masked
    failed = project / "xbuild-out" / "rpi3.failed.log"
    assert "the token is ***" in failed.read_text()
    assert secret not in proc.stdout + proc.stderr + failed.read_text()

    # A build that succeeds: its log goes to the store.
    (project / "xbuild.toml").write_text((project / "xbuild.toml").read_text()
                                         .replace("; exit 4", ""))
    proc = xbuild("--target", "rpi3", project, "--json", env={"MY_TOKEN": secret,
                                                              "XBUILD_STORE": store.as_uri()})
    assert proc.returncode == 0, proc.stderr
    log = Path(json.loads(proc.stdout)["log"]).read_text()
    assert "the token is ***" in log and secret not in log + proc.stdout + proc.stderr
    stored = [p for p in store.rglob("*") if p.is_file()]
    assert stored and not [p for p in stored if secret.encode() in p.read_bytes()]


# --- logs ------------------------------------------------------------------------------------
@integration
@pytest.mark.parametrize("cap_mb", [None, 5])
def test_a_huge_log_keeps_its_last_line(engine, tmp_path, cap_mb):
    project = make_project(tmp_path / "loud", {"xbuild.toml": '''[build]
steps = ["seq 2000000", "echo THE-LAST-LINE-q7x; exit 5"]
'''})
    env = {"XBUILD_MAX_LOG_MB": str(cap_mb)} if cap_mb else {}
    proc = xbuild("--target", "rpi3", project, env=env)
    assert proc.returncode == 7, proc.stderr[-2000:]
    tail = proc.stderr.splitlines()
    assert "  | THE-LAST-LINE-q7x" in tail and "  | 2000000" in tail
    log = (project / "xbuild-out" / "rpi3.failed.log").read_text()
    assert log.splitlines()[-1] == "THE-LAST-LINE-q7x"
    if cap_mb is None:
        assert "\n1999999\n2000000\n" in log and log.count("\n") == 2000003  # every line
    else:
        assert len(log) < (cap_mb + 1) << 20
        assert f"reached its cap of {cap_mb} MB (XBUILD_MAX_LOG_MB)" in log
        assert "lines left out; the last 1000 lines:" in log


# --- signals and orphans ---------------------------------------------------------------------
@integration
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_removes_the_container_and_temp_dirs(engine, tmp_path, sig):
    mark = f"XBUILD_SIGNAL_MARK={uuid.uuid4().hex}"
    project = _sleeping_project(tmp_path / "p", "XBUILD_SIGNAL_MARK")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp), "XBUILD_SIGNAL_MARK": mark.split("=", 1)[1]}
    proc = subprocess.Popen([sys.executable, "-m", "xbuild", "--target", "rpi3", str(project)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        (box,) = _wait_for(lambda: [c for c in containers_with_env(mark) if c.status == "running"],
                           120, "the build container running")
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:  # the test failed before its signal: still clean up
            proc.terminate()
            out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, err
    assert "Traceback" not in err and "internal error" not in err
    assert containers_with_env(mark) == []
    assert list(tmp.iterdir()) == []
    assert [p.name for p in (project / "xbuild-out").iterdir()] == ["rpi3.failed.log"]


# Moments a signal can land in a build (tests/signal_at.py sends it as the function is entered).
SIGNAL_MOMENTS = ["xbuild.containers.sandbox:Container.__enter__",      # the container about to be created
                  # just created (the engine answered; the 1st call looked for a stale one)
                  "docker.models.containers:ContainerCollection.get#2",
                  "xbuild.containers.sandbox:Box.put",                  # the source being copied in
                  "docker.models.containers:Container.start",  # the container being started
                  "xbuild.containers.sandbox:_pump"]                    # the build running, its output read


@integration
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
@pytest.mark.parametrize("moment", SIGNAL_MOMENTS)
def test_a_signal_at_any_moment_ends_the_build_cleanly(engine, tmp_path, moment, sig):
    """A SIGHUP while the build container was being started ended as `internal error:
    RuntimeError: cannot join thread before it is started` (exit 1): the clean-up joined the
    time-limit watchdog, which was to start after the container. At every moment: the signal's
    exit code, no internal error, nothing left behind."""
    from tests.helpers import ROOT
    mark = f"XBUILD_SIGNAL_MARK={uuid.uuid4().hex}"
    project = _sleeping_project(tmp_path / "p", "XBUILD_SIGNAL_MARK")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp), "XBUILD_SIGNAL_MARK": mark.split("=", 1)[1]}
    proc = subprocess.run([sys.executable, "-m", "tests.signal_at", moment, str(int(sig)),
                           "--target", "rpi3", str(project)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert "signal-at: sent" in proc.stderr
    assert proc.returncode == 128 + sig, proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    assert containers_with_env(mark) == []
    assert list(tmp.iterdir()) == []
    assert [p.name for p in (project / "xbuild-out").iterdir()] == ["rpi3.failed.log"]


@integration
def test_an_orphaned_container_ends_by_itself_and_is_reaped(engine, tmp_path):
    """xbuild SIGKILLed: its container still dies at the time limit (timeout -s KILL inside),
    and remove_expired removes it once its deadline label has passed."""
    mark = f"XBUILD_ORPHAN_MARK={uuid.uuid4().hex}"
    project = _sleeping_project(tmp_path / "p", "XBUILD_ORPHAN_MARK")
    env = {**os.environ, "XBUILD_ORPHAN_MARK": mark.split("=", 1)[1]}
    proc = subprocess.Popen([sys.executable, "-m", "xbuild", "--target", "rpi3", str(project),
                             "--timeout", "2"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _reaped_orphan(proc, mark)
    finally:
        for c in containers_with_env(mark):  # a failed assertion must not leave it behind
            c.remove(force=True)


def _reaped_orphan(proc, mark: str) -> None:
    from xbuild.containers.sandbox import BUILD_LABEL, DEADLINE_LABEL, GRACE, remove_expired
    try:
        (box,) = _wait_for(lambda: [c for c in containers_with_env(mark) if c.status == "running"],
                           120, "the build container running")
    finally:
        proc.kill()  # the orphan maker: xbuild dies without a chance to clean up
        proc.wait()
    assert box.attrs["Config"]["Cmd"][:4] == ["timeout", "-s", "KILL", str(2 + GRACE)]
    deadline = float(box.labels[DEADLINE_LABEL])
    assert deadline > time.time()

    def exited():
        box.reload()
        return box.status == "exited"
    _wait_for(exited, 2 + GRACE + 60, "the orphan ending at its time limit")
    assert box.attrs["State"]["ExitCode"] == 137
    mine = f"{BUILD_LABEL}={box.name}"  # other builds share this engine: only ours is judged
    assert remove_expired(now=deadline - 1, label=mine) == 0 and containers_with_env(mark)
    assert remove_expired(now=deadline + 1, label=mine) == 1
    assert containers_with_env(mark) == []


@integration
def test_remove_expired_takes_only_containers_past_their_deadline(engine):
    from xbuild.board.targets import host_arch
    from xbuild.containers import images
    from xbuild.containers.engine import client
    from xbuild.containers.sandbox import BUILD_LABEL, DEADLINE_LABEL, remove_expired
    base = images.ensure(images.base_def(host_arch(), "bookworm", f"linux/{host_arch()}"), print)
    run = uuid.uuid4().hex[:8]
    made = {}
    for name, deadline in (("past", time.time() - 5), ("future", time.time() + 3600), ("junk", "x")):
        made[name] = client().containers.create(base.id, ["sleep", "600"], name=f"xbuild-test-{name}-{run}",
                                                labels={BUILD_LABEL: run, DEADLINE_LABEL: str(deadline)})
    made["past"].start()
    try:
        assert remove_expired(label=f"{BUILD_LABEL}={run}") == 1
        left = {c.name for c in client().containers.list(all=True, filters={"label": f"{BUILD_LABEL}={run}"})}
        assert left == {f"xbuild-test-future-{run}", f"xbuild-test-junk-{run}"}
    finally:
        for c in made.values():
            with contextlib.suppress(Exception):  # removed by the test already
                c.remove(force=True)


# --- memory, disk --------------------------------------------------------------------------------
@integration
def test_a_build_killed_by_its_memory_limit_says_so(engine, tmp_path):
    project = make_project(tmp_path / "hog", {"xbuild.toml": '''[build]
steps = ["head -c 400m /dev/zero | tail > /dev/null"]
'''})
    proc = xbuild("--target", "rpi3", project, "--memory", "128m")
    assert proc.returncode == 31, proc.stderr
    assert "killed: memory limit 128m" in proc.stderr and "--memory" in proc.stderr


@integration
def test_a_build_killed_from_outside_says_sigkill(engine, tmp_path):
    project = make_project(tmp_path / "k", {"xbuild.toml": '[build]\nsteps = ["kill -9 $$"]\n'})
    proc = xbuild("--target", "rpi3", project)
    assert proc.returncode == 7, proc.stderr
    assert "exit code 137) (killed by SIGKILL from outside the build, not by its memory limit of 4g" \
        in proc.stderr


@integration
@pytest.mark.parametrize("step,what", [
    ("dd if=/dev/zero of=big bs=1M count=100", ""),  # RLIMIT_FSIZE (or the watchdog first)
    ("for i in $(seq 40); do head -c 3M /dev/zero > f$i; done; sleep 60", "MB written"),
])
def test_a_build_is_killed_at_its_disk_limit(engine, tmp_path, step, what):
    project = make_project(tmp_path / "disk", {"xbuild.toml": f'[build]\nsteps = ["{step}"]\n'})
    proc = xbuild("--target", "rpi3", project, env={"XBUILD_MAX_DISK_MB": "50"})
    assert proc.returncode == 29, proc.stderr
    assert "disk limit of 50 MB" in proc.stderr and what in proc.stderr
    assert "XBUILD_MAX_DISK_MB" in proc.stderr


@integration
def test_a_build_is_refused_when_the_disk_is_nearly_full(engine, tmp_path):
    project = make_project(tmp_path / "p", {"xbuild.toml": '[build]\nsteps = ["touch a"]\n'})
    proc = xbuild("--target", "rpi3", project, env={"XBUILD_MIN_FREE_MB": str(1 << 40)})
    assert proc.returncode == 30, proc.stderr
    assert "MB free on the disk of" in proc.stderr and "XBUILD_MIN_FREE_MB" in proc.stderr
    assert not (project / "xbuild-out").exists() or not any((project / "xbuild-out").iterdir())


# --- Dockerfile builds -------------------------------------------------------------------------
def _dockerfile(root: Path, text: str) -> Path:
    return make_project(root, {"Dockerfile": text})


@integration
def test_dockerfile_steps_get_the_limits(engine, tmp_path):
    project = _dockerfile(tmp_path / "lim", "FROM debian:bookworm-slim\n"
                          "RUN echo mem=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes "
                          "/sys/fs/cgroup/memory.max 2>/dev/null) fsize=$(ulimit -f)\n"
                          "RUN for i in $(seq 60); do sleep 20 & done; wait\n")
    proc = xbuild("--target", "rpi3", project, "--memory", "300m", "-v",
                  env={"XBUILD_MAX_PIDS": "30", "XBUILD_MAX_DISK_MB": "100"})
    assert f"mem={300 << 20} fsize={100 << 11}" in proc.stderr  # fsize in 512-byte blocks
    if "no pids limit for this Dockerfile build:" in proc.stderr:  # says why (not root, systemd)
        pytest.skip("this machine cannot give Dockerfile builds a pids limit")
    assert proc.returncode == 7, proc.stderr[-3000:]  # the pids limit refused the 31st process
    assert "fork" in proc.stderr.lower()
    # Every step ran (no layer cache shared between builds), and the failed build's layers went.
    from docker.errors import ImageNotFound

    from xbuild.containers.engine import client
    (layer,) = re.findall(r"^mem=.*?^ ---> ([0-9a-f]{12})$", proc.stderr, re.M | re.S)
    with pytest.raises(ImageNotFound):
        client().images.get(layer)


@integration
def test_a_dockerfile_build_stops_at_its_time_limit(engine, tmp_path):
    from xbuild.containers.engine import client
    marker = uuid.uuid4().hex
    project = _dockerfile(tmp_path / "slow", f"FROM debian:bookworm-slim\nRUN sleep 600 # {marker}\n")
    proc = xbuild("--target", "rpi3", project, "--timeout", "20")
    assert proc.returncode == 13, proc.stderr
    assert "time limit of 20 s" in proc.stderr
    left = [c for c in client().containers.list(all=True) if marker in " ".join(c.attrs["Config"]["Cmd"] or [])]
    assert left == []


@integration
def test_a_dockerfile_build_is_cancelled_through_progress(engine, tmp_path):
    """The service's cancel: the observer's stop_requested ends the build; its step stops."""
    from xbuild.containers.engine import client
    from xbuild.errors import BuildFailed
    from xbuild.pipeline import spec as specs
    from xbuild.pipeline.build import run_build
    from xbuild.pipeline.context import NO_CACHE
    from xbuild.pipeline.observer import NullObserver
    marker = uuid.uuid4().hex
    project = _dockerfile(tmp_path / "cancel", f"FROM debian:bookworm-slim\nRUN sleep 600 # {marker}\n")

    class Cancelling(NullObserver):
        def __init__(self):
            self.step = None

        def container(self, name):
            self.step = name

        def stop_requested(self):
            return self.step is not None  # as soon as the RUN step runs

    progress = Cancelling()
    with pytest.raises(BuildFailed, match="cancelled"):
        run_build(specs.resolve(project, BuildRequest("rpi3")), progress, cache=NO_CACHE)
    assert progress.step is not None
    left = [c for c in client().containers.list(all=True) if marker in " ".join(c.attrs["Config"]["Cmd"] or [])]
    assert left == []


@integration
def test_dockerfile_images_get_tags_of_their_own(engine, tmp_path):
    """Another tenant's <name>:<target> is neither read nor overwritten; nothing stays tagged."""
    from xbuild.containers import images
    from xbuild.containers.engine import client
    name = f"tags-{uuid.uuid4().hex[:8]}"
    other = images.ensure(images.base_def("armhf", "bookworm", "linux/arm/v7"), print)
    client().images.get(other.id).tag(name, tag="rpi3")  # "another tenant's" image, same name
    try:
        project = _dockerfile(tmp_path / name, "FROM debian:bookworm-slim\nRUN echo mine > /mine\n")
        proc = xbuild("--target", "rpi3", project, "--json")
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert client().images.get(f"{name}:rpi3").id == other.id
        tags = [t for img in client().images.list(name=name) for t in img.tags if t.startswith(name)]
        assert tags == [f"{name}:rpi3"]  # the build's own tag went with it
        out = Path(json.loads(proc.stdout)["artifacts"][0]["path"])
        import tarfile
        with tarfile.open(out) as tar:
            manifest = json.load(tar.extractfile("manifest.json"))
        assert manifest[0]["RepoTags"] == [f"{name}:rpi3"]  # `docker load` names it as before
    finally:
        client().images.remove(f"{name}:rpi3")


@integration
@pytest.mark.parametrize("dockerfile", [
    "FROM {local}\nRUN true\n",
    "FROM debian:bookworm-slim\nCOPY --from={local} /etc/hostname /stolen\n",
    "FROM debian:bookworm-slim\nCOPY \\\n  --chown=0:0 \\\n  --from=\"{local}\" /etc/hostname /stolen\n",
    "FROM debian:bookworm-slim\nadd --from={local} /etc/hostname /stolen\n",
    "FROM debian:bookworm-slim\nRUN --mount=type=bind,from={local},target=/x true\n",
    "ARG BASE={local}\nFROM $BASE\nRUN true\n",
    "FROM debian:bookworm-slim AS a\nRUN true\nFROM a\nCOPY --from=0 /etc/hostname /x\nCOPY --from={local} / /x\n",
])
def test_images_only_in_the_engine_are_refused(engine, tmp_path, dockerfile):
    """Another tenant's image or an xbuild builder exists in the engine but was not resolved by
    this build: refused before anything runs."""
    from xbuild.containers import images
    from xbuild.containers.engine import client
    local = f"victim-{uuid.uuid4().hex[:8]}:rpi3"
    victim = images.ensure(images.base_def("armhf", "bookworm", "linux/arm/v7"), print)
    client().images.get(victim.id).tag(local)
    try:
        project = _dockerfile(tmp_path / "thief", dockerfile.format(local=local))
        proc = xbuild("--target", "rpi3", project)
    finally:
        client().images.remove(local)
    assert proc.returncode == 20, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert local in proc.stderr or "$BASE" in proc.stderr
    assert not (project / "xbuild-out" / "rpi3").exists()


@integration
def test_an_xbuild_builder_is_refused_as_a_base(engine, tmp_path):
    from xbuild.board.targets import get
    from xbuild.containers import images
    from xbuild.toolchain import pick
    builder = images.builder_def(pick(get("rpi3"), "cross")).tag
    project = _dockerfile(tmp_path / "b", f"FROM {builder}\nRUN true\n")
    proc = xbuild("--target", "rpi3", project)
    assert proc.returncode == 20 and builder in proc.stderr and "only in this engine" in proc.stderr


# --- the Dockerfile reader, alone ---------------------------------------------------------------
class _Recording:
    """The resolver's parser with the engine left out: records the images it would resolve."""

    def __new__(cls):
        from xbuild.containers.dockerimage import _Resolver

        class Recording(_Resolver):
            def image(self, ref, where):
                self.asked.append(ref)
                return f"resolved/{len(self.asked)}"
        r = Recording(target=None, log=print)
        r.asked = []
        return r


@pytest.mark.parametrize("text,asked", [
    ("FROM scratch AS a\nFROM a\nCOPY --from=a /x /x\nCOPY --from=0 /x /y\n", []),
    ("FROM scratch\nCOPY \\\n  --from=victim:1 \\\n  /x /y\n", ["victim:1"]),
    ("FROM scratch\nCOPY --chown=0:0 --from='vic'\"tim:2\" /x /y\n", ["victim:2"]),
    ("# escape=`\nFROM scratch\nCOPY `\n --from=victim:3 /x /y\n", ["victim:3"]),
    ("FROM scratch\n# a comment inside\nRUN --mount=type=bind,from=victim:4,target=/x \\\n# c\n true\n",
     ["victim:4"]),
    ("FROM scratch\nCOPY --from=1 /x /y\n", ["1"]),  # no stage 1 yet: an image name
])
def test_every_image_reference_is_seen(text, asked):
    from xbuild.containers.dockerimage import _instructions
    resolver = _Recording()
    directives, instructions = _instructions(text)
    rewritten = [resolver.instruction(i) for i in instructions]
    assert resolver.asked == asked
    assert not any(f"from={a}" in line for a in asked for line in rewritten)  # resolved names only


@integration
def test_sweeping_never_inspects_containers_another_build_may_remove_meanwhile(engine):
    """remove_expired and remove_labelled take what the list call returns (sparse): a full list
    inspects each container afterwards, and one removed in between (another worker's finished
    build) failed the sweep, and with it the job, with a 404."""
    from xbuild.containers.engine import client
    from xbuild.containers.sandbox import _listed
    label = f"org.xbuild.test-sweep={uuid.uuid4().hex}"
    box = client().containers.create("xbuild/base:" + _any_base_tag(), ["true"], labels=dict([label.split("=")]))
    try:
        (listed,) = _listed({"label": label})
        box.remove(force=True)  # gone before the sweep looks at it: nothing may need to ask again
        key, value = label.split("=")
        assert listed.attrs["Labels"][key] == value  # read from the list call, no inspect needed
    finally:
        with contextlib.suppress(Exception):  # removed by the test already
            box.remove(force=True)


def _any_base_tag() -> str:
    from xbuild.containers.engine import client
    tags = [t for img in client().images.list(filters={"label": "org.xbuild.kind=base"}) for t in img.tags]
    return tags[0].split(":", 1)[1]

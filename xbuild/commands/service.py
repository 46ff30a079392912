"""The service: `serve`, `worker`, `beat`, `submit`, `nightly run-now`."""

from __future__ import annotations

import contextlib
import os
import sys

import click

from xbuild import environment
from xbuild.commands import emit_json, json_option, option, request_options, retry_option
from xbuild.errors import ExitCode


def _served_arches() -> list[str]:
    """The native architecture, plus every architecture whose qemu handler is registered."""
    from xbuild.board.targets import all_targets, host_arch
    from xbuild.containers import binfmt
    arches = {host_arch()}
    for t in all_targets().values():
        if not t.needs_qemu or binfmt.handler(t.qemu_arch).ok:
            arches.add(t.debian_arch)
    return sorted(arches)


@click.command()
@option("--host", default="127.0.0.1", show_default=True, env="XBUILD_HOST", help="Address to listen on.")
@option("--port", type=int, default=8080, show_default=True, env="XBUILD_PORT", help="Port to listen on.")
def serve(host, port):
    """The HTTP API (tokens: XBUILD_API_TOKENS). On the embedded broker it runs a worker too."""
    import subprocess
    import threading

    import waitress

    from xbuild.errors import ConfigError
    from xbuild.service import reaper, settings
    from xbuild.service.api import create_app
    environment.check_all()
    if not settings.api_tokens():
        raise ConfigError("no API tokens: every request would be refused",
                          hint="set XBUILD_API_TOKENS=token1,token2 (clients send XBUILD_TOKEN)")
    worker = None
    if settings.embedded():
        click.echo(f"embedded broker {settings.broker_url()}: starting a worker", err=True)
        from xbuild.service.celery_app import declare_queues
        declare_queues()  # first, alone: the worker and the API then only find them made
        # Without the tokens (a worker never needs them); its own process group, so that stopping
        # it reaches Celery's prefork child too.
        worker = subprocess.Popen([sys.executable, "-m", "xbuild", "worker"], start_new_session=True,
                                  env={k: v for k, v in os.environ.items() if k != "XBUILD_API_TOKENS"})
    stop = threading.Event()
    threading.Thread(target=reaper.run_forever, args=(stop, lambda m: click.echo(m, err=True)),
                     daemon=True).start()
    _exit_on_signals()
    try:
        # waitress: a production WSGI server (threads; request bodies buffered before the app runs)
        waitress.serve(create_app(), host=host, port=port, threads=8, ident="xbuild",
                       max_request_body_size=(settings.max_upload_mb() + 1) << 20)
    finally:
        stop.set()
        if worker is not None:
            _stop_group(worker)


def _exit_on_signals() -> None:
    """SIGTERM (an init system, CI, `kill`) and SIGINT stop serve as cleanly as Ctrl-C: waitress
    returns on SystemExit, and the finally above stops the worker."""
    import signal

    def stop(signum, frame):
        raise SystemExit(ExitCode.OK)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


def _stop_group(proc, grace: float = 30) -> None:
    """SIGTERM to the worker's whole process group; SIGKILL what is left after `grace` seconds.
    A build cut short here is requeued by the next reaper (its lease died with the worker)."""
    import signal
    import subprocess
    import time

    def signal_group(sig) -> bool:
        try:
            os.killpg(proc.pid, sig)
            return True
        except ProcessLookupError:
            return False  # the group is empty: every member exited

    signal_group(signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(grace)
    deadline = time.monotonic() + grace  # the prefork child may outlive its parent for a moment
    while signal_group(0) and time.monotonic() < deadline:
        time.sleep(0.2)
    signal_group(signal.SIGKILL)
    proc.wait()


@click.command()
@option("--queues", env="XBUILD_QUEUES",
        help="Comma-separated architectures to serve [default: native + those with qemu handlers].")
@option("--name", env="XBUILD_WORKER_NAME", help="Worker name [default: xbuild-<pid>@<host>].")
def worker(queues, name):
    """A Celery worker running builds (one at a time); start as many as you like."""
    import socket

    os.environ.pop("XBUILD_API_TOKENS", None)  # a worker never needs the tenants' tokens
    environment.check_all()
    from xbuild.service.celery_app import app
    arches = [q.strip() for q in queues.split(",")] if queues else _served_arches()
    names = ",".join(f"xbuild.{a}" for a in arches)
    click.echo(f"worker serving {names}", err=True)
    app.worker_main(["worker", "-Q", names, "--concurrency=1", "--loglevel=INFO",
                     "--without-gossip", "--without-mingle", "-n",
                     name or f"xbuild-{os.getpid()}@{socket.gethostname()}"])


@click.command()
@option("--config", "config_path", default="nightly.toml", show_default=True, env="XBUILD_NIGHTLY",
        help="The nightly matrix.")
def beat(config_path):
    """The nightly scheduler (and the reaper that requeues builds of dead workers)."""
    from xbuild.service import nightly
    nightly.run_scheduler(config_path, log=lambda m: click.echo(m, err=True))


@click.group()
def nightly():
    """The nightly matrix of projects x boards."""


@nightly.command("run-now")
@option("--config", "config_path", default="nightly.toml", show_default=True, env="XBUILD_NIGHTLY",
        help="The nightly matrix.")
@option("--wait/--no-wait", default=True, env="XBUILD_WAIT", help="Wait for every build and write the night's index.")
@option("--night", type=click.DateTime(["%Y-%m-%d"]), env="XBUILD_NIGHT",
        help="The night to build (YYYY-MM-DD) [default: today, UTC].")
@json_option
def nightly_run_now(config_path, wait, night, as_json):
    """Run tonight's matrix now."""
    from xbuild.service import nightly as n
    index = n.run_night(n.load(config_path), wait=wait, night=night and night.strftime("%Y-%m-%d"),
                        log=lambda m: click.echo(m, err=True))
    if as_json:
        emit_json(index)
    else:
        for b in index["builds"]:
            click.echo(f"{b['project']:20} {b['target']:12} {b.get('os') or '':10} {b['state']:10} "
                       f"{b.get('build_id') or ''}")
    sys.exit(ExitCode.OK if all(b["state"] == "succeeded" for b in index["builds"]) else ExitCode.NOT_ALL_OK)


@click.command()
@option("--server", required=True, env="XBUILD_SERVER", help="The xbuild API, e.g. http://buildfarm:8080.")
@request_options("target", target={"help": "Board to build for."})
@click.argument("project", type=click.Path(), default=".", required=False)
# What the API takes (request.API_FIELDS); --static and --deb as plain flags: the server reads
# false as "the project's xbuild.toml decides".
@request_options("os", "mode", "static", "deb", "no_cache", "packages", mode={"help": "Build mode."},
                 static={"decls": ("--static",), "is_flag": True, "default": False,
                         "help": "Fully static executables (zig + musl) [default: xbuild.toml's static]."},
                 deb={"decls": ("--deb",), "is_flag": True, "default": False,
                      "help": "Also a .deb [default: xbuild.toml's deb]."},
                 no_cache={"help": "Build even when cached."})
@option("--wait/--no-wait", default=True, env="XBUILD_WAIT",
        help="Stream the log and exit with the build's exit code.")
@option("-o", "--out", type=click.Path(), env="XBUILD_OUT_DIR",
        help="Where to download the artifacts [default: PROJECT/xbuild-out/TARGET, or "
             "TARGET-RELEASE with --os].")
@option("--git", "git_url", env="XBUILD_GIT_URL",
        help="Build this git repository (fetched by the server) instead of uploading PROJECT.")
@option("--ref", env="XBUILD_GIT_REF", help="With --git: the branch, tag or commit [default: its HEAD].")
@retry_option
@json_option
def submit(server, project, wait, out, git_url, ref, retry_seconds, as_json, request):
    """Submit PROJECT to a build server (token: XBUILD_TOKEN), for CI."""
    from xbuild.host.terminal import safe
    from xbuild.service.client import submit_and_wait
    if ref and not git_url:
        raise click.UsageError("--ref needs --git (an uploaded project is built as it is)")
    result = submit_and_wait(server, environment.text("XBUILD_TOKEN"), project, request, wait, out,
                             log=lambda line: click.echo(safe(line), err=True), git=git_url, ref=ref,
                             retry_seconds=retry_seconds)
    if as_json:
        emit_json(result)
    else:
        release = f" on {result['os']}" if result.get("os") else ""
        click.echo(f"{result['state']}: build {result['id']} for {request.target}{release}")
        for f in result.get("downloaded", []):
            click.echo(f"  {f}")
    if result["state"] in ("succeeded", "queued", "running"):  # queued/running: --no-wait
        sys.exit(ExitCode.OK)
    sys.exit(result.get("exit_code") or ExitCode.INTERNAL)  # the build's own code, as a local build's


COMMANDS = [serve, worker, beat, nightly, submit]

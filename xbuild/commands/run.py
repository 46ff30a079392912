"""`xbuild run --target T ARTIFACT -- COMMAND...`."""

from __future__ import annotations

import sys

import click

from xbuild.commands import option, request_options
from xbuild.request import MAX_TIMEOUT


@click.command(context_settings={"ignore_unknown_options": True})
@request_options("target", bundle=False, target={"help": "Board whose CPU to emulate."})
@click.argument("artifact", type=click.Path())
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@request_options("os", bundle=False, os={
    "help": "Run in this OS release's userland [default: the release the artifact was built for, "
            "from the manifest.json beside it; else the board's default]."})
@option("--timeout", type=click.IntRange(1, MAX_TIMEOUT), default=600, show_default=True, env="XBUILD_RUN_TIMEOUT",
        help="Kill the program after this many seconds.")
@option("--cpu", env="XBUILD_QEMU_CPU", help="QEMU_CPU model instead of the board's.")
@option("-p", "--publish", "ports", multiple=True, env="XBUILD_RUN_PUBLISH",
        help="For an image archive: forward HOST:CONTAINER (bound to 127.0.0.1), like docker run -p.")
def run(target, artifact, command, os, timeout, cpu, ports):
    """Run COMMAND from ARTIFACT under qemu as the board's CPU, installed in a fresh container of
    the board's OS as on the board (a .deb with apt; a .tar.gz unpacked into /usr/local, then
    ldconfig); exit with its exit code. Paths are relative to /usr/local:

      xbuild run --target rpi3 out/hello-rpi3.tar.gz -- bin/hello --version
    """
    import signal
    from pathlib import Path

    from xbuild.artifact.runner import is_image_archive, run_artifact, run_image
    from xbuild.board import targets
    from xbuild.errors import ConfigError
    from xbuild.pipeline.progress import Progress

    # SIGTERM (a CI job's cancel, `kill`) must still remove the container: make it an exception.
    signal.signal(signal.SIGTERM, _interrupt)
    progress = Progress()
    board, path = targets.get(target), Path(artifact)

    def out(line: str) -> None:
        click.echo(line)

    def err(line: str) -> None:
        click.echo(line, err=True)

    if is_image_archive(path):
        code = run_image(board, path, list(command), timeout=timeout, cpu=cpu,
                         ports=_ports(ports, ConfigError), log=progress.line, out=out, err=err)
    else:
        if not command:
            raise click.UsageError("give the program to run after --, e.g. -- bin/hello")
        from xbuild.artifact.artifacts import built_for
        release, packages = built_for(path, board.name)
        board = board.with_os(os or release)
        # The userland image may take minutes the first time: progress (and, off a terminal, a
        # line every 15 s) until the program starts; then its own output only.
        from xbuild.containers.images import IN_EVERY_BASE
        extra = [p for p in packages if p not in IN_EVERY_BASE]
        selected = board.selected
        userland = f"{board.os_name} {board.debian_arch} userland" if not selected.stand_in \
            else f"Debian {selected.suite} {board.debian_arch} userland (a stand-in for {board.os_name})"
        progress.phase("image", userland + (f" with {', '.join(extra)}" if extra else ""))
        code = run_artifact(board, path, list(command), timeout=timeout, cpu=cpu,
                            packages=packages, ready=progress.done, log=progress.line, out=out, err=err)
    progress.done()
    sys.exit(code)


def _interrupt(*_):
    import signal
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second TERM must not cut the clean-up short
    raise KeyboardInterrupt


def _ports(specs: tuple[str, ...], error) -> dict:
    ports = {}
    for spec in specs:
        parts = spec.split(":")
        if len(parts) not in (2, 3) or not all(p.isdigit() for p in parts[-2:]):
            raise error(f"--publish {spec!r}: expected HOST_PORT:CONTAINER_PORT (or IP:HOST:CONTAINER)")
        ip = parts[0] if len(parts) == 3 else "127.0.0.1"
        ports[f"{parts[-1]}/tcp"] = (ip, int(parts[-2]))
    return ports

"""`xbuild run --target T ARTIFACT -- COMMAND...`."""

from __future__ import annotations

import sys

import click

from xbuild.commands import option


@click.command(context_settings={"ignore_unknown_options": True})
@option("-t", "--target", required=True, env="XBUILD_TARGET", help="Board whose CPU to emulate.")
@click.argument("artifact", type=click.Path())
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@option("--timeout", type=click.IntRange(1), default=600, show_default=True, env="XBUILD_RUN_TIMEOUT",
        help="Kill the program after this many seconds.")
@option("--cpu", env="XBUILD_QEMU_CPU", help="QEMU_CPU model instead of the board's.")
def run(target, artifact, command, timeout, cpu):
    """Run COMMAND from ARTIFACT (unpacked into /usr/local of a fresh target container) under
    qemu as the board's CPU; exit with its exit code. Paths are relative to /usr/local:

      xbuild run --target rpi3 out/hello-rpi3.tar.gz -- bin/hello --version
    """
    from pathlib import Path

    from xbuild import targets
    from xbuild.progress import Progress
    from xbuild.runner import run_artifact

    progress = Progress()
    code = run_artifact(targets.get(target), Path(artifact), list(command), timeout=timeout,
                        cpu=cpu, log=progress.line,
                        out=lambda line: click.echo(line),
                        err=lambda line: click.echo(line, err=True))
    progress.done()
    sys.exit(code)

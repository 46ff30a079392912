"""`xbuild verify --target T PROJECT`."""

from __future__ import annotations

import sys

import click

from xbuild.commands import emit_json, json_option, request_options
from xbuild.errors import ExitCode


@click.command()
@request_options("target", target={"help": "Board to build for."})
@click.argument("project", type=click.Path(), default=".", required=False)
@request_options("mode", "os", "packages", mode={"help": "Build mode."},
                 os={"help": "The board's OS release [default: xbuild.toml's os, else the board's default]."})
@json_option
def verify(project, as_json, request):
    """Rebuild PROJECT twice from clean (other time, timezone, locale, build path, umask) and
    compare every file bit for bit. Exits 0 when identical, 16 when anything differs."""
    from xbuild.pipeline import spec as specs
    spec = specs.resolve(project, request)
    from xbuild.pipeline.progress import Progress
    from xbuild.pipeline.verify import verify as run_verify
    report = run_verify(spec, Progress())
    if as_json:
        emit_json(report)
    elif report["status"] == "reproducible":
        click.echo(f"reproducible: {report['files']} file(s) identical in two builds for {request.target}")
    else:
        click.echo(f"NOT reproducible for {request.target}: {len(report['differences'])} file(s) differ:")
        for name in report["differences"]:
            click.echo(f"  {name}")
        if "diffoscope" in report:
            click.echo(report["diffoscope"])
        else:
            click.echo("(install diffoscope for a detailed report of what differs)")
    sys.exit(ExitCode.OK if report["status"] == "reproducible" else ExitCode.NOT_REPRODUCIBLE)

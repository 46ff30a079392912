"""`xbuild verify --target T PROJECT`."""

from __future__ import annotations

import sys

import click

from xbuild import MODES
from xbuild.commands import emit_json, json_option, option
from xbuild.errors import ExitCode


@click.command()
@option("-t", "--target", required=True, env="XBUILD_TARGET", help="Board to build for.")
@click.argument("project", type=click.Path(), default=".", required=False)
@option("--mode", type=click.Choice(MODES), default="cross", show_default=True,
        env="XBUILD_MODE", help="Build mode.")
@option("--os", "os_release", metavar="RELEASE", env="XBUILD_OS",
        help="The board's OS release [default: xbuild.toml's os, else the board's default].")
@json_option
def verify(target, project, mode, os_release, as_json):
    """Rebuild PROJECT twice from clean (other time, timezone, locale, build path, umask) and
    compare every file bit for bit. Exits 0 when identical, 16 when anything differs."""
    from xbuild import spec as specs
    spec = specs.resolve(project, target, mode=mode, os_release=os_release)
    from xbuild.progress import Progress
    from xbuild.verify import verify as run_verify
    report = run_verify(spec, Progress())
    if as_json:
        emit_json(report)
    elif report["status"] == "reproducible":
        click.echo(f"reproducible: {report['files']} file(s) identical in two builds for {target}")
    else:
        click.echo(f"NOT reproducible for {target}: {len(report['differences'])} file(s) differ:")
        for name in report["differences"]:
            click.echo(f"  {name}")
        if "diffoscope" in report:
            click.echo(report["diffoscope"])
        else:
            click.echo("(install diffoscope for a detailed report of what differs)")
    sys.exit(ExitCode.OK if report["status"] == "reproducible" else ExitCode.NOT_REPRODUCIBLE)

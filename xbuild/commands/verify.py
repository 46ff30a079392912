"""`xbuild verify --target T PROJECT`."""

from __future__ import annotations

import sys

import click

from xbuild.commands import emit_json, json_option, option, request_options
from xbuild.errors import ExitCode


@click.command()
@request_options("target", target={"help": "Board to build for.", "required": False})
@click.argument("project", type=click.Path(), default=None, required=False)
@request_options("mode", "os", "packages", mode={"help": "Build mode."},
                 os={"help": "The board's OS release [default: xbuild.toml's os, else the board's default]."})
@option("--against", env="XBUILD_VERIFY_AGAINST",
        help="Rebuild this build (an output folder, or STORE_URL/<build-id>) from its recorded inputs and "
             "compare: the source is PROJECT when given, else the one --publish stored with it.")
@json_option
def verify(project, against, as_json, request):
    """Rebuild PROJECT twice from clean (other time, timezone, locale, build path, umask) and
    compare every file bit for bit; or, with --against, rebuild a published build and compare
    with it. Exits 0 when identical, 16 when anything differs."""
    from xbuild.pipeline.progress import Progress
    if against:
        from xbuild.pipeline.rebuild import against as rebuild
        report = rebuild(against, project, Progress())
    else:
        if not request.target:
            raise click.UsageError("--target is needed (or --against a build)")
        from xbuild.pipeline import spec as specs
        from xbuild.pipeline.verify import verify as run_verify
        report = run_verify(specs.resolve(project or ".", request), Progress())
    if as_json:
        emit_json(report)
    elif report["status"] == "reproducible":
        click.echo(f"reproducible: {report['files']} file(s) identical "
                   + (f"to {against}" if against else f"in two builds for {report['target']}"))
    else:
        click.echo(f"NOT reproducible for {report['target']}: {len(report['differences'])} file(s) differ"
                   + (f" from {against}:" if against else ":"))
        for name in report["differences"]:
            click.echo(f"  {name}")
        if "diffoscope" in report:
            click.echo(report["diffoscope"])
        else:
            click.echo("(install diffoscope for a detailed report of what differs)")
    sys.exit(ExitCode.OK if report["status"] == "reproducible" else ExitCode.NOT_REPRODUCIBLE)

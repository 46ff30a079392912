"""One module per command group; heavy imports happen inside the commands so --help stays fast."""

from __future__ import annotations

import json

import click

from xbuild.environment import SETTINGS


def option(*decls, env: str, help: str, **kwargs):
    """A click option that also reads XBUILD_* from the environment and says so in its help."""
    return click.option(*decls, envvar=env, show_envvar=True, help=help, **kwargs)


json_option = option("--json", "as_json", is_flag=True, env="XBUILD_JSON",
                     help="Print one JSON object on stdout (progress still goes to stderr).")

# How long a command waits out an outage of the server or store it talks to (xbuild/retry.py).
retry_option = option("--retry-seconds", type=click.FloatRange(min=0),
                      default=SETTINGS["XBUILD_RETRY_SECONDS"].default, show_default=True,
                      env="XBUILD_RETRY_SECONDS",
                      help="Ride out a restart of the server, its store or its broker: retry what is safe "
                           "to repeat, with backoff, for up to this many seconds (0: fail at once).")


def emit_json(obj: dict) -> None:
    click.echo(json.dumps(obj, indent=2, sort_keys=True))

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

# How long a command waits out an outage of the server or store it talks to (xbuild/host/retry.py).
retry_option = option("--retry-seconds", type=click.FloatRange(min=0),
                      default=SETTINGS["XBUILD_RETRY_SECONDS"].default, show_default=True,
                      env="XBUILD_RETRY_SECONDS",
                      help="Ride out a restart of the server, its store or its broker: retry what is safe "
                           "to repeat, with backoff, for up to this many seconds (0: fail at once).")


def emit_json(obj: dict) -> None:
    click.echo(json.dumps(obj, indent=2, sort_keys=True))


def request_options(*names: str, bundle: bool = True, **overrides: dict):
    """The click options of the build request's fields `names` (xbuild/request.py declares each
    once: flag, type, default, help, XBUILD_* variable), in that order. bundle: the command gets
    one `request` argument, a BuildRequest, instead of one argument per field (made by the
    outermost of a command's request_options, from all of them). overrides: a
    command's own click settings for a field (shell's --timeout ends a shell, not a build)."""
    import functools

    from xbuild.request import FIELDS, BuildRequest

    def wrap(fn):
        @functools.wraps(fn)
        def command(*args, **kwargs):
            if bundle and "request" not in kwargs:
                kwargs["request"] = BuildRequest(**{n: kwargs.pop(n) for n in FIELDS if n in kwargs})
            return fn(*args, **kwargs)
        for name in reversed(names):
            command = _request_option(name, overrides.get(name, {}))(command)
        return command
    return wrap


def _request_option(name: str, override: dict):
    from xbuild.request import ABOUT, DEFAULTS, FIELDS, Mode, field_type
    about, (kind, _) = ABOUT[name], field_type(FIELDS[name])
    override = dict(override)
    dashed = f"--{name.replace('_', '-')}"
    kwargs: dict = {"help": about.help, **({"show_default": True} if about.show_default else {})}
    if name not in DEFAULTS:
        kwargs["required"] = True  # the target
    elif DEFAULTS[name] is not None or kind is bool:  # --static/--no-static: None when not given
        default = DEFAULTS[name]
        kwargs["default"] = default.value if isinstance(default, Mode) else default
    if kind is Mode:
        kwargs["type"] = click.Choice([m.value for m in Mode])
    elif kind is bool and "/" not in "".join(about.flags):
        kwargs["is_flag"] = True
    elif kind is int:
        kwargs["type"] = click.IntRange(*about.bounds)
    elif kind is tuple:  # repeated; its XBUILD_* variable holds them separated by spaces
        kwargs["multiple"] = True
    if about.metavar:
        kwargs["metavar"] = about.metavar
    decls = override.pop("decls", about.flags or (dashed,))
    return option(*decls, name, env=about.env, **{**kwargs, **override})

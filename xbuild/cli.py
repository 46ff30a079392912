"""The command line. `xbuild --target rpi3 project/` builds (build is the default command); the
other words are subcommands. Only `main` turns errors into exit codes and messages."""

from __future__ import annotations

import sys
import traceback

import click

from xbuild import __version__, environment
from xbuild.errors import ExitCode, XBuildError, killed_by


class DefaultGroup(click.Group):
    """A group whose unnamed invocation runs `build`: `xbuild --target rpi3 project/`."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h", "--version"):
            args = ["build", *args]
        elif not args:
            args = ["build"]
        return super().parse_args(ctx, args)


@click.group(cls=DefaultGroup, context_settings={"help_option_names": ["-h", "--help"],
                                                 "max_content_width": 100})
@click.version_option(__version__, prog_name="xbuild")
def cli():
    """Cross-compile a project for a board, in a sandboxed container, and prove the result fits.

    \b
      xbuild --target rpi3 project/                  build (the default command)
      xbuild run --target rpi3 ART.tar.gz -- bin/app run an artifact under qemu
      xbuild targets                                 the boards
      xbuild doctor                                  what is wrong with this machine
    """


def _register() -> None:
    from xbuild.commands import artifacts, attest, build, cache, run, shell, system, verify
    cli.add_command(build.build)
    cli.add_command(cache.cache)
    cli.add_command(verify.verify)
    cli.add_command(artifacts.artifacts)
    cli.add_command(attest.attest)
    cli.add_command(run.run)
    cli.add_command(shell.shell)
    for cmd in system.COMMANDS:
        cli.add_command(cmd)
    from xbuild.commands import service
    for cmd in service.COMMANDS:
        cli.add_command(cmd)


_register()


def report(exc: XBuildError) -> None:
    """The error, its detail (often a build log's tail: untrusted) and the hint, made safe."""
    from xbuild.host.terminal import safe, safe_lines
    err = lambda s="": click.echo(s, err=True)  # noqa: E731
    err(click.style("error: ", fg="red", bold=True) + safe_lines(exc.message))
    if exc.detail:
        err("\n".join("  | " + safe(line) for line in exc.detail.splitlines()))
    for hint in (exc.hint or "").splitlines():  # several hints: one line each
        err(click.style("hint: ", fg="yellow", bold=True) + safe(hint))


class Terminated(BaseException):
    """SIGTERM (what CI sends on cancel) or SIGHUP (the terminal went away), raised in the main
    thread like Ctrl-C's KeyboardInterrupt, so every context manager on the way out runs: the
    build container is removed, temporary directories too."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.exit_code = killed_by(signum)


def _on_signal(signum, frame) -> None:
    import signal
    # Once is enough: a second signal must not interrupt the clean-up the first one started.
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)
    raise Terminated(signum)


def _handle_signals() -> None:
    import signal
    import threading
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, _on_signal)


def main(argv=None) -> None:
    debug = False
    _handle_signals()
    try:
        debug = environment.flag("XBUILD_DEBUG")  # a wrong value: exit 6, as any setting
        code = cli.main(args=argv, prog_name="xbuild", standalone_mode=False)
    except XBuildError as exc:
        report(exc)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(ExitCode.INTERRUPTED)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(ExitCode.INTERRUPTED)
    except Terminated as exc:
        click.echo("terminated", err=True)
        sys.exit(exc.exit_code)
    except Exception as exc:  # a bug in xbuild, not the user's mistake
        if debug:
            traceback.print_exc()
        click.echo(f"internal error: {type(exc).__name__}: {exc}", err=True)
        click.echo("this is a bug in xbuild; XBUILD_DEBUG=1 shows the traceback", err=True)
        sys.exit(ExitCode.INTERNAL)
    sys.exit(code or ExitCode.OK)

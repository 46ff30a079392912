"""Progress on stderr: a live status line on a terminal, plain phase lines elsewhere (CI logs).
stdout is kept for results (and for the single JSON object under --json). Build output is
untrusted: what reaches the terminal goes through terminal.safe."""

from __future__ import annotations

import shutil
import sys
import time

from xbuild.terminal import safe

# A build printing millions of lines must not spend its time redrawing the status line.
REDRAW_SECONDS = 0.05


class Progress:
    def __init__(self, stream=None, verbose: bool = False, quiet: bool = False):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.verbose, self.quiet = verbose, quiet
        self.start = self.phase_start = time.monotonic()
        self.phase_name = ""
        self.detail = ""
        self._drawn = 0.0

    def _elapsed(self) -> str:
        return f"{time.monotonic() - self.start:5.1f}s"

    def phase(self, name: str, detail: str = "") -> None:
        self.phase_name, self.detail = name, detail
        if self.quiet:
            return
        self._clear()
        print(f"[xbuild {self._elapsed()}] {name}{': ' + safe(detail) if detail else ''}",
              file=self.stream, flush=True)

    def line(self, text: str) -> None:
        """A line of tool output (apt, the compiler, ...)."""
        if text.startswith("::xbuild "):
            self.phase("build", text.removeprefix("::xbuild "))
            return
        if self.quiet:
            return
        if self.verbose:
            print(safe(text), file=self.stream, flush=True)
        elif self.tty and (now := time.monotonic()) - self._drawn >= REDRAW_SECONDS:
            self._drawn = now
            width = shutil.get_terminal_size((100, 20)).columns
            status = f"  {self._elapsed()} {self.phase_name} | {safe(text.strip())}"
            self.stream.write("\r\033[K" + status[: width - 1])
            self.stream.flush()

    def _clear(self) -> None:
        if self.tty:
            self.stream.write("\r\033[K")

    def container(self, name: str) -> None:
        """The build container's name, for those who may need to stop it (a cancelled job)."""

    def stop_requested(self) -> bool:
        """True when whoever watches the build wants it stopped (a cancelled service job).
        Polled by builds that have no single container to kill (a Dockerfile build)."""
        return False

    def done(self) -> None:
        self._clear()

"""The terminal's observer (observer.Observer): a live status line on stderr on a terminal, plain
phase lines elsewhere (CI logs).
stdout is kept for results (and for the single JSON object under --json). Build output is
untrusted: what reaches the terminal goes through terminal.safe.

Off a terminal, a long quiet phase (an image bootstrapped, packages installed, a long link) still
prints a line every XBUILD_PROGRESS_SECONDS (15): a CI log that shows nothing for minutes looks
hung, and gets killed."""

from __future__ import annotations

import re
import shutil
import sys
import threading
import time

from xbuild import environment
from xbuild.host.terminal import safe
from xbuild.host.threads import join_started

# A build printing millions of lines must not spend its time redrawing the status line.
REDRAW_SECONDS = 0.05
# apt says how many packages it installs, then sets each up: "12/140 packages set up".
_APT_TOTAL = re.compile(r"(\d+) newly installed")
_LINE_BREAK = re.compile(r"[\r\n]+")


class Progress:
    def __init__(self, stream=None, verbose: bool = False, quiet: bool = False):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.verbose, self.quiet = verbose, quiet
        self.start = self.phase_start = time.monotonic()
        self.phase_name = ""
        self.detail = ""
        self._drawn = 0.0
        self.last_line = ""
        self.printed = self.start
        self.apt_total = self.apt_done = 0
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None

    def _elapsed(self) -> str:
        return f"{time.monotonic() - self.start:5.1f}s"

    def mark(self, name: str) -> None:
        """Phase `name` is the one the status line and the heartbeat name now; nothing printed.
        (What it takes is timed by the build: BuildContext.timings.)"""
        self.phase_name, self.phase_start, self.last_line = name, time.monotonic(), ""
        self.apt_total = self.apt_done = 0  # apt's count belongs to the phase that ran apt

    def phase(self, name: str, detail: str = "") -> None:
        self.mark(name)
        self.detail = detail
        if self.quiet:
            return
        self._clear()
        self._print(f"{name}{': ' + safe(detail) if detail else ''}")
        if not self.tty and self._heartbeat is None:
            self._heartbeat = threading.Thread(target=self._beat, daemon=True)
            self._heartbeat.start()

    def _print(self, text: str) -> None:
        self.printed = time.monotonic()
        print(f"[xbuild {self._elapsed()}] {text}", file=self.stream, flush=True)

    def _beat(self) -> None:
        every = environment.number("XBUILD_PROGRESS_SECONDS")
        while not self._stop.wait(min(every, 1.0)):
            if time.monotonic() - self.printed >= every:
                self._print(self.still())

    def still(self) -> str:
        """What the current phase is doing, for a log that has heard nothing for a while."""
        text = f"still {self.phase_name}{': ' + safe(self.detail) if self.detail else ''} " \
               f"({time.monotonic() - self.phase_start:.0f}s in this step"
        if self.apt_total:
            text += f"; {self.apt_done}/{self.apt_total} packages set up"
        if self.last_line:
            text += f"; last output: {safe(self.last_line.strip())[:120]}"
        return text + ")"

    def line(self, text: str) -> None:
        """A line of tool output (apt, the compiler, ...)."""
        if text.startswith("::xbuild "):
            self.phase("build", text.removeprefix("::xbuild "))
            return
        if self.quiet:
            return
        # One "line" may hold several (a builder's output chunk: "Fetched 6626 kB ...\nReading
        # package lists..."): each is counted and shown as a line of its own, never as ^J.
        lines = [part for part in _LINE_BREAK.split(text) if part.strip()] or [text]
        text = self.last_line = lines[-1]
        for part in lines:
            if match := _APT_TOTAL.search(part):
                self.apt_total, self.apt_done = int(match.group(1)), 0
            elif part.startswith("Setting up "):
                self.apt_done += 1
        if self.verbose:
            self.printed = time.monotonic()
            for part in lines:
                print(safe(part), file=self.stream, flush=True)
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
        """A terminal's build is stopped by ^C, not asked to stop."""
        return False

    def done(self) -> None:
        self.mark("")
        self._stop.set()
        if self._heartbeat is not None:
            join_started(self._heartbeat)
            self._heartbeat, self._stop = None, threading.Event()  # `verify` builds again
        self._clear()

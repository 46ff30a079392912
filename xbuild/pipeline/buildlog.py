"""build.log of one build: every line the build prints, with the values of passed secrets masked,
appended through a buffer, and capped in size.

Past the cap (XBUILD_MAX_LOG_MB) the log says so and keeps only the last lines, which are written
when the build ends: the line that failed is always in the log and in the error's tail. Lines go
on to the build's observer (a terminal, a service job) only as they go into the file, so a service
log is capped the same way."""

from __future__ import annotations

import collections
from pathlib import Path

from xbuild import environment
from xbuild.pipeline.observer import Observer

MARK = "::xbuild "
TAIL = 40            # lines shown with a failed build's error
KEEP = 1000          # lines kept past the cap, written at the end
MIN_SECRET = 4       # shorter values would mask ordinary text ("1", "on") without hiding anything


def max_bytes() -> int:
    """XBUILD_MAX_LOG_MB, for build.log and for a service job's log alike."""
    return environment.megabytes("XBUILD_MAX_LOG_MB")


class BuildLog:
    def __init__(self, path: Path, observer: Observer, secrets=(), cap: int | None = None):
        self.path, self.observer = path, observer
        self.cap = cap if cap is not None else max_bytes()
        # A multi-line value is masked line by line: the log is read line by line.
        self.secrets = sorted({part for value in secrets for part in value.splitlines()
                               if len(part) >= MIN_SECRET}, key=len, reverse=True)
        self.size = self.omitted = 0
        self.last: collections.deque[str] = collections.deque(maxlen=KEEP)
        self.step = "the build"
        self.count = self.first_build_line = 0  # lines seen; where the build's own lines begin
        self._file = path.open("w", encoding="utf-8", errors="replace", buffering=1 << 16)

    def mask(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, "***")
        return text

    def line(self, text: str) -> None:
        text = self.mask(text)
        self.last.append(text)
        self.count += 1
        if text.startswith(MARK + "step"):
            self.step = text.removeprefix(MARK)
        if self.size > self.cap:
            self.omitted += 1
            return
        self._write(text)
        if self.size > self.cap:
            self._write(f"[xbuild] the log reached its cap of {self.cap >> 20} MB (XBUILD_MAX_LOG_MB): "
                        f"further lines are left out, the last {KEEP} are kept at its end")

    def _write(self, text: str) -> None:
        self._file.write(text + "\n")
        self.size += len(text) + 1
        self.observer.line(text)

    def begin_build(self) -> None:
        """From here on the lines are the build's own: a failure's tail shows only them, not the
        apt output of the image built before it."""
        self.first_build_line = self.count

    def tail(self, n: int = TAIL) -> list[str]:
        """The last lines of the build's output (progress markers left out)."""
        first = self.count - len(self.last)  # the number of the oldest line still held
        return [ln for i, ln in enumerate(self.last, first)
                if i >= self.first_build_line and not ln.startswith(MARK)][-n:]

    def close(self) -> None:
        if self._file.closed:
            return
        if self.omitted:
            kept = list(self.last)[-min(self.omitted, KEEP):]
            self.size = 0  # the closing lines always go in
            self._write(f"[xbuild] {self.omitted - len(kept)} lines left out; the last {len(kept)} lines:")
            for text in kept:
                self._write(text)
        self._file.close()

    def __enter__(self) -> BuildLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

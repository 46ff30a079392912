"""Who hears a build: the one protocol through which the pipeline, build.log, the sandbox, images
and hints report, in the manner of osbuild's monitors. Three observers exist: the terminal's
(progress.Progress), a service job's log (service/execute._JobLog) and NullObserver.

An observer shows; it keeps no account of the build. What a phase took is the build's own
(build_context.BuildContext.timings), whoever watches."""

from __future__ import annotations

from typing import Protocol


class Observer(Protocol):
    def phase(self, name: str, detail: str = "") -> None:
        """A phase begins, said aloud: `name: detail`."""

    def mark(self, name: str) -> None:
        """A phase begins without a word (copy-in, copy-out): what is shown as the current phase.
        The build asks stop_requested right after: an observer may look for a cancel here."""

    def line(self, text: str) -> None:
        """A line of tool output (apt, the compiler, ...), masked and capped by build.log."""

    def container(self, name: str) -> None:
        """The build container's name, for those who may need to stop it (a cancelled job)."""

    def stop_requested(self) -> bool:
        """True when whoever watches wants the build stopped. Polled often (a Dockerfile build,
        which has no single container to kill): it answers from what it knows, cheaply."""

    def done(self) -> None:
        """The build is over and succeeded: stop whatever watches the clock. (A failure's error
        is said by whoever called the build, after it.)"""


class NullObserver:
    """Hears nothing, never stops a build: run_build's default, for tests and tools."""

    def phase(self, name: str, detail: str = "") -> None:
        pass

    def mark(self, name: str) -> None:
        pass

    def line(self, text: str) -> None:
        pass

    def container(self, name: str) -> None:
        pass

    def stop_requested(self) -> bool:
        return False

    def done(self) -> None:
        pass

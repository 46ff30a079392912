"""The build's context: it keeps the phases' timings whoever observes, stops at a quiet phase
when the observer wants the build stopped, and run_build is its steps, delivery included."""

from __future__ import annotations

import io
import time

import pytest

from tests.helpers import make_project
from xbuild.errors import BuildCancelled
from xbuild.pipeline import build, spec
from xbuild.pipeline.context import NO_CACHE, BuildContext, BuildResult
from xbuild.pipeline.observer import NullObserver, Observer
from xbuild.pipeline.progress import Progress
from xbuild.request import BuildRequest


class Heard(NullObserver):
    """What a build said, in order; wants it stopped once `stop` is set."""

    def __init__(self) -> None:
        self.heard: list[str] = []
        self.stop = False

    def phase(self, name: str, detail: str = "") -> None:
        self.heard.append(f"phase {name}: {detail}")

    def mark(self, name: str) -> None:
        self.heard.append(f"mark {name}")

    def stop_requested(self) -> bool:
        return self.stop

    def done(self) -> None:
        self.heard.append("done")


def _context(tmp_path, observer: Observer) -> BuildContext:
    project = make_project(tmp_path / "p", {"Makefile": "all:\n\ttrue\n"})
    return BuildContext(spec.resolve(project, BuildRequest("rpi3")), observer, NO_CACHE, {}, False, False)


@pytest.mark.parametrize("observer", [NullObserver(), Progress(io.StringIO(), quiet=True), Heard()])
def test_timings_add_up_per_phase_in_the_context_whoever_observes(tmp_path, observer):
    ctx = _context(tmp_path, observer)
    ctx.mark("hash")
    time.sleep(0.05)
    ctx.phase("build", "step 1/2")
    time.sleep(0.05)
    ctx.phase("build", "step 2/2")  # the same phase again: its times add up
    time.sleep(0.05)
    ctx.result = BuildResult(ctx.spec, [], tmp_path / "m", tmp_path / "l", "", "", 0.0)
    result = ctx.finish()
    assert set(result.extra["timings"]) == {"hash", "build"} == set(ctx.timings)
    assert result.extra["timings"]["build"] >= 0.1 and result.extra["timings"]["hash"] >= 0.05
    assert not hasattr(observer, "timings")  # an observer shows; it keeps no account


def test_a_quiet_phase_starts_only_while_nobody_wants_the_build_stopped(tmp_path):
    heard = Heard()
    ctx = _context(tmp_path, heard)
    ctx.mark("copy-in")
    heard.stop = True
    ctx.phase("check", "said aloud: the observer decides what a cancel stops")
    with pytest.raises(BuildCancelled):
        ctx.mark("build")
    assert heard.heard == ["mark copy-in", "phase check: said aloud: the observer decides what a cancel stops",
                           "mark build"]


def test_run_build_is_its_steps_then_the_deliveries_the_caller_chose(tmp_path, monkeypatch):
    """The order of the steps, and delivery as steps: no engine is needed to see them run."""
    ran: list[str] = []

    def step(name):
        def run(ctx: BuildContext) -> None:
            ran.append(name)
            if name == "package":
                ctx.produced, ctx.image_id = [], "sha256:0"
                (ctx.out / "manifest.json").write_text("{}")
        return run

    monkeypatch.setitem(build.STEPS, "steps", tuple(step(n) for n in ("image", "recipe", "package")))
    monkeypatch.setattr(build.sandbox, "settle", lambda: None)  # no engine in a unit test
    monkeypatch.setattr(build, "engine_data_root", lambda: None)
    heard = Heard()
    project = make_project(tmp_path / "p", {"Makefile": "all:\n\ttrue\n"})
    out = tmp_path / "out"
    result = build.run_build(spec.resolve(project, BuildRequest("rpi3"), out=out), heard, cache=NO_CACHE,
                             deliver=[step("deliver 1"), step("deliver 2")], compiler_cache=False)
    assert ran == ["image", "recipe", "package", "deliver 1", "deliver 2"]
    assert result.extra["cache"] == "miss" and result.image == "sha256:0"
    assert (out / "manifest.json").read_text() == "{}" and heard.heard[-1] == "done"
    assert "hash" in result.extra["timings"] and "done" not in heard.heard[:-1]

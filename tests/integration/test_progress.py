"""A CI log (stderr not a terminal) hears from a quiet build step at least every
XBUILD_PROGRESS_SECONDS: the real CLI, a real build whose only step sleeps."""

from __future__ import annotations

import pytest

from tests.helpers import make_project, xbuild

pytestmark = pytest.mark.integration


def test_a_silent_step_prints_still_lines_off_a_terminal(engine, tmp_path):
    project = make_project(tmp_path / "quiet", {
        "xbuild.toml": '[build]\nsteps = ["sleep 6", "echo done > out.txt"]\nartifacts = ["out.txt"]\n'})
    result = xbuild("--target", "rpi3", "--no-cache", project, env={"XBUILD_PROGRESS_SECONDS": "2"})
    assert result.returncode == 0, result.stderr
    still = [line for line in result.stderr.splitlines() if "still build: step 1/2: sleep 6" in line]
    assert len(still) >= 2, result.stderr


def test_json_has_the_time_of_each_phase(engine, tmp_path):
    import json
    project = make_project(tmp_path / "timed", {
        "xbuild.toml": '[build]\nsteps = ["sleep 2", "echo done > out.txt"]\nartifacts = ["out.txt"]\n'})
    result = xbuild("--target", "rpi3", "--no-cache", "--json", project)
    assert result.returncode == 0, result.stderr
    timings = json.loads(result.stdout)["timings"]
    assert {"hash", "image", "start", "copy-in", "build", "copy-out", "check", "archive",
            "store"} <= set(timings)
    assert timings["build"] >= 2 and sum(timings.values()) <= json.loads(result.stdout)["duration"] + 0.1

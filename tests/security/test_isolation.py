"""Tests look only at what they made (issue 16, item 12). The engine is shared with other builds,
other test runs and other farms: test_time_limit_kills_and_removes_the_container failed whenever
any other xbuild build ran, as it counted every container labelled org.xbuild.build, and the
shell test counted every container named xbuild-shell-rpi3*."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest

from tests.helpers import ROOT

pytestmark = [pytest.mark.security, pytest.mark.integration]

# The tests that once judged the whole engine, run here beside another build's containers.
JUDGED = ["tests/integration/test_errors.py::test_time_limit_kills_and_removes_the_container",
          "tests/integration/test_shell.py::test_shell_has_the_build_environment_and_leaves_the_project_alone"]


def _base_image() -> str:
    from xbuild.containers.engine import client
    (image, *_) = client().images.list(filters={"label": "org.xbuild.kind=base"})
    return image.id


def test_the_engine_tests_pass_beside_another_builds_containers(engine, tmp_path):
    """Another build's container (xbuild's label, a shell's name) left on the engine while the
    tests that look for leftovers run: theirs are gone, the other one is not theirs to judge."""
    from xbuild.containers.engine import client
    from xbuild.containers.sandbox import BUILD_LABEL
    other = f"xbuild-shell-rpi3-other-{uuid.uuid4().hex[:10]}"
    box = client().containers.create(_base_image(), ["true"], name=other, labels={BUILD_LABEL: other})
    try:
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               f"--basetemp={tmp_path / 'run'}", *JUDGED], cwd=ROOT,
                              capture_output=True, text=True, timeout=1200)
    finally:
        box.remove(force=True)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert f"{len(JUDGED)} passed" in proc.stdout

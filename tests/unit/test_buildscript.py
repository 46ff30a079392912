"""xbuild.pipeline.buildscript: the script a build container runs, run here for real with bash. Its
container paths (/xbuild/...) are moved into a temp directory, the only change made to it; the
environment is the one the container gets (toolchain.environment) with those paths moved too."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from xbuild import toolchain
from xbuild.board import targets
from xbuild.pipeline import buildscript


class Container:
    """A temp directory laid out as /xbuild is in a build container."""

    def __init__(self, tmp: Path, artifacts: str = ""):
        self.root = tmp / "xbuild"
        self.src = self.root / "src"
        self.stage = self.root / "stage"
        (self.stage / "install").mkdir(parents=True)
        self.src.mkdir()
        (self.root / "artifacts.txt").write_text(artifacts)

    def run(self, steps, collect_new_elf=False, umask="022", recipe="make", env=None):
        script = buildscript.render(tuple(steps), collect_new_elf, umask=umask, recipe=recipe)
        assert script.count(toolchain.ROOT) >= 3
        (self.root / "build.sh").write_text(script.replace(toolchain.ROOT + "/", f"{self.root}/"))
        full = {k: v.replace(toolchain.ROOT + "/", f"{self.root}/")
                for k, v in toolchain.pick(targets.get("rpi3"), "cross").environment(jobs=2).items()}
        full["PATH"] = os.environ["PATH"]  # the host's tools (the shims are toolchain's tests)
        full.update({"CC": "gcc", "AR": "ar", "HOME": str(self.root)}, **(env or {}))
        return subprocess.run(["bash", str(self.root / "build.sh")], capture_output=True, text=True,
                              env=full, timeout=120)

    def files(self) -> list[str]:
        base = self.stage / "files"
        return sorted(str(p.relative_to(base)) for p in base.rglob("*") if p.is_file())


@pytest.fixture
def box(tmp_path) -> Container:
    return Container(tmp_path)


def test_steps_run_in_order_each_from_the_project_root(box):
    (box.src / "sub").mkdir()
    proc = box.run(["cd sub && echo one > ../order", "echo two >> order; pwd > where",
                    "export LEAK=1", 'echo "${LEAK:-unset}" > leak'])
    assert proc.returncode == 0, proc.stderr
    assert (box.src / "order").read_text() == "one\ntwo\n"
    assert (box.src / "where").read_text().strip() == str(box.src)  # the cd of step 1 did not stay
    assert (box.src / "leak").read_text().strip() == "unset"  # each step is a subshell


def test_progress_markers_name_each_step_safely_quoted(box):
    proc = box.run(["echo \"it's $((1+1))\"", "true"])
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "::xbuild step 1/2: echo \"it's $((1+1))\""  # the marker is not expanded
    assert lines[1] == "it's 2"
    assert "::xbuild step 2/2: true" in lines and "::xbuild collect" in lines


@pytest.mark.parametrize("step", ["false", "exit 3", "cat missing-file", "false | true", "echo $UNSET_VAR"])
def test_a_failing_step_stops_the_build(box, step):
    proc = box.run(["echo before > before", step, "echo after > after"])
    assert proc.returncode != 0
    assert (box.src / "before").exists() and not (box.src / "after").exists()
    assert "::xbuild collect" not in proc.stdout


def test_the_exit_code_of_a_failing_step_is_the_scripts(box):
    assert box.run(["exit 42"]).returncode == 42


@pytest.mark.parametrize("umask, mode", [("022", 0o644), ("077", 0o600), ("002", 0o664)])
def test_umask(box, umask, mode):
    assert box.run(["echo x > made"], umask=umask).returncode == 0
    assert (box.src / "made").stat().st_mode & 0o777 == mode


def test_artifact_globs_are_collected_by_name_one_folder_per_glob(tmp_path):
    """Glob N's matches go to files/N/ under their own names: the host places them by kind or by
    the glob's dest, never under their build-tree path (_xbuild/test/x in /usr/local is no use)."""
    box = Container(tmp_path, artifacts="lib/*.so*\nsrc/app\n**/*.dat\nnothing/*\nname with space.txt\n")
    proc = box.run(["mkdir -p lib src deep/er", "touch lib/libx.so lib/libx.so.1 lib/libx.a src/app src/app.c",
                    "touch deep/er/a.dat top.dat 'name with space.txt' .hidden.dat"])
    assert proc.returncode == 0, proc.stderr
    assert box.files() == sorted(["0/libx.so", "0/libx.so.1", "1/app", "2/a.dat", "2/top.dat",
                                  "2/.hidden.dat", "4/name with space.txt"])


def _compile(where: Path, name: str) -> None:
    (where / f"{name}.c").write_text("int main(void) { return 0; }\n")
    subprocess.run(["gcc", "-o", str(where / name), str(where / f"{name}.c")], check=True, timeout=60)


@pytest.fixture
def gcc():
    if shutil.which("gcc") is None or shutil.which("file") is None:
        pytest.skip("gcc and file are needed (scripts/setup.sh --tests installs them)")


def test_no_install_step_collects_the_new_executables_only(box, gcc):
    """collect_new_elf: the ELF executables and libraries the build made, not those that were
    there before it, not objects, archives or scripts."""
    _compile(box.src, "old")
    past = time.time() - 3600
    os.utime(box.src / "old", (past, past))
    proc = box.run(["gcc -o app old.c", "gcc -c old.c -o old.o", "ar rcs libold.a old.o",
                    "gcc -shared -fPIC -o libnew.so old.c", "printf '#!/bin/sh\\n' > script.sh"],
                   collect_new_elf=True)
    assert proc.returncode == 0, proc.stderr
    assert box.files() == ["new/app", "new/libnew.so"]


def test_new_executables_are_not_collected_when_the_install_step_made_something(box, gcc):
    proc = box.run(['gcc -o app -x c - <<<"int main(void){return 0;}"',
                    'mkdir -p "$XBUILD_OUT/bin" && cp app "$XBUILD_OUT/bin/"'], collect_new_elf=True)
    assert proc.returncode == 0, proc.stderr
    assert box.files() == [] and (box.stage / "install" / "bin" / "app").is_file()


def test_new_executables_are_not_collected_unless_the_recipe_asks(box, gcc):
    assert box.run(['gcc -o app -x c - <<<"int main(void){return 0;}"'], collect_new_elf=False).returncode == 0
    assert box.files() == []


def test_the_toolchain_versions_are_recorded(box):
    proc = box.run(["true"], recipe="cmake")
    assert proc.returncode == 0, proc.stderr
    lines = dict(line.split(": ", 1) for line in (box.stage / "meta" / "toolchain.txt").read_text().splitlines())
    assert lines["cc"].startswith("gcc") and lines["make"].startswith("GNU Make")
    assert lines["cmake"].startswith("cmake version") and "meson" not in lines  # only the recipe's tool


def test_the_recipe_name_is_quoted(box):
    proc = box.run(['echo "$XBUILD_RECIPE" > recipe'], recipe="a b; touch pwned")
    assert proc.returncode == 0, proc.stderr
    assert (box.src / "recipe").read_text() == "a b; touch pwned\n"
    assert not (box.src / "pwned").exists()


def test_every_ccache_call_of_the_script_is_bounded():
    """The cache the script's ccache reads was written by builds (a FIFO blocks a read forever)."""
    import re
    script = buildscript.render(("true",), False)
    calls = [line for line in script.splitlines() if re.search(r"\bccache --", line)]
    assert len(calls) == 2 and all(re.search(r"\btimeout -k \d+ \d+ ccache --", c) for c in calls)

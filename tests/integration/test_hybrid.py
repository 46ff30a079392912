"""--mode hybrid on the real engine and real qemu: the board's root filesystem with the x86-64
cross compiler in it. Examples build, pass the ABI gate and run; the container is the target's
(uname -m) while its compiler is an x86-64 program; a project that runs what it builds fails in
cross mode with a hint naming --mode hybrid, and builds in hybrid mode."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import make_project, xbuild

pytestmark = pytest.mark.integration

ARMHF_V8 = {"machine": "ARM", "float_abi": "hard", "arm_arch": "v8-A"}


@pytest.mark.parametrize("example, command, expected", [
    ("hello-make", ["bin/hello"], "Hello from xbuild (hello-make)"),
    ("autotools-hello", ["bin/ahello"], "Hello from autotools"),
])
def test_examples_build_pass_the_gate_and_run(builds, example, command, expected):
    result = builds.get(example, "rpi3", "hybrid")
    assert result["status"] == "ok" and result["mode"] == "hybrid"
    (artifact,) = result["artifacts"]
    manifest = json.loads(Path(result["manifest"]).read_text())
    assert manifest["mode"] == "hybrid" and manifest["toolchain"]["name"] == "gcc-hybrid"
    assert manifest["toolchain"]["cc"].startswith("arm-linux-gnueabihf-gcc (Debian 14")
    assert "-hybrid-" in manifest["image"]["tag"]
    elves = [f["elf"] for f in manifest["files"] if "elf" in f]
    assert elves  # the gate checked them: the build would have failed otherwise
    for elf in elves:
        assert {k: elf[k] for k in ARMHF_V8} == ARMHF_V8
        assert elf["interpreter"] == manifest["target"]["loader"]
    run = xbuild("run", "--target", "rpi3", artifact["path"], "--", *command)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == expected, (run.stdout, run.stderr)


def test_hybrid_is_its_own_cache_entry(builds):
    hybrid = builds.get("hello-make", "rpi3", "hybrid")
    cross = builds.get("hello-make", "rpi3", "cross")
    assert hybrid["cache_key"] != cross["cache_key"] and hybrid["build_id"] != cross["build_id"]
    assert cross["mode"] == "cross"


def test_hybrid_builds_are_reproducible(engine, tmp_path):
    import shutil

    from tests.helpers import EXAMPLES
    project = shutil.copytree(EXAMPLES / "hello-make", tmp_path / "hello-make")
    proc = xbuild("verify", "--target", "rpi3", "--mode", "hybrid", project)
    assert proc.returncode == 0, proc.stderr
    assert "reproducible: 2 file(s) identical in two builds for rpi3" in proc.stdout + proc.stderr


SHELL = """\
uname -m
file -bL /usr/bin/arm-linux-gnueabihf-gcc
file -bL /usr/bin/arm-linux-gnueabihf-ld
gcc -dumpmachine
printf 'int main(void){return 0;}\\n' > /tmp/t.c && gcc /tmp/t.c -o /tmp/t && file -b /tmp/t && /tmp/t && echo ran
file -bL /bin/sh /usr/bin/sed /usr/bin/make
file -bL /usr/bin/uname /usr/bin/od /usr/bin/perl
"""


def test_the_container_is_the_target_and_its_compiler_is_x86_64(engine, tmp_path):
    project = make_project(tmp_path / "proj", {"Makefile": "all:\n\ttrue\n"})
    env = {k: v for k, v in os.environ.items() if k != "XBUILD_DEBUG"}
    result = subprocess.run([sys.executable, "-m", "xbuild", "shell", "--target", "rpi3", "--mode",
                             "hybrid", str(project)], input=SHELL, capture_output=True, text=True,
                            env=env, timeout=900)
    assert result.returncode == 0, result.stderr
    out = result.stdout.splitlines()
    assert out[0] == "armv7l"
    assert out[1].startswith("ELF 64-bit LSB") and "x86-64" in out[1]
    assert out[2].startswith("ELF 64-bit LSB") and "x86-64" in out[2]
    assert out[3] == "arm-linux-gnueabihf"
    assert out[4].startswith("ELF 32-bit LSB") and ", ARM, EABI5" in out[4] and out[5] == "ran"
    # the shell, make and text tools are the build machine's; what tells the machine is the target's
    assert all("x86-64" in line for line in out[6:9]), out[6:9]
    assert all(", ARM, EABI5" in line for line in out[9:12]), out[9:12]


# An autoconf probe that runs a program (AC_RUN_IFELSE, no answer for cross compiling), and a
# generator the Makefile builds and runs: it records the machine it ran on in the program.
PROBE = {
    "configure.ac": """AC_INIT([probe], [1.0])
AC_PROG_CC
AC_MSG_CHECKING([the size of long, by running a program])
AC_RUN_IFELSE([AC_LANG_PROGRAM([[#include <stdio.h>]],
  [[FILE *f = fopen("conftest.val", "w"); if (!f) return 1;
    fprintf(f, "%d", (int)sizeof(long)); return fclose(f) != 0;]])],
  [LONG_SIZE=`cat conftest.val`], [AC_MSG_ERROR([the probe program failed])])
AC_MSG_RESULT([$LONG_SIZE])
AC_SUBST([LONG_SIZE])
AC_CONFIG_FILES([Makefile])
AC_OUTPUT
""",
    "Makefile.in": "CC = @CC@\nprefix = @prefix@\n\nall: probe\n\n"
                   "gen: gen.c\n\t$(CC) gen.c -o gen\n\n"
                   "table.h: gen\n\t./gen @LONG_SIZE@ > table.h\n\n"
                   "probe: main.c table.h\n\t$(CC) main.c -o probe\n\n"
                   "install: probe\n\tmkdir -p $(DESTDIR)$(prefix)/bin && cp probe $(DESTDIR)$(prefix)/bin/\n",
    "gen.c": """#include <stdio.h>
#include <stdlib.h>
#include <sys/utsname.h>
int main(int argc, char **argv) {
    struct utsname u;
    uname(&u);
    printf("#define LONG_SIZE %d\\n#define BUILT_ON \\"%s\\"\\n", argc > 1 ? atoi(argv[1]) : 0, u.machine);
    return 0;
}
""",
    "main.c": """#include <stdio.h>
#include "table.h"
int main(void) { printf("long is %d bytes (generated on %s)\\n", LONG_SIZE, BUILT_ON); return 0; }
""",
}


def test_what_cross_cannot_run_hybrid_builds_and_the_hint_says_so(engine, tmp_path):
    project = make_project(tmp_path / "probe", PROBE)
    cross = xbuild("--target", "rpi3", project)
    assert cross.returncode == 7, cross.stderr
    assert "cannot run test program while cross compiling" in cross.stderr
    command = f"xbuild --target rpi3 --mode hybrid {project}"
    assert f"hint: this build runs programs it built for rpi3, which cross mode cannot; build it in " \
           f"the board's root filesystem with the cross compiler: {command}" in cross.stderr

    hybrid = xbuild(*command.split()[1:], "--json")
    assert hybrid.returncode == 0, hybrid.stderr
    result = json.loads(hybrid.stdout)
    log = Path(result["log"]).read_text()
    assert "checking whether we are cross compiling... no" in log
    assert "checking the size of long, by running a program... 4" in log
    run = xbuild("run", "--target", "rpi3", result["artifacts"][0]["path"], "--", "bin/probe")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "long is 4 bytes (generated on armv7l)"


def test_hybrid_needs_the_qemu_handler(engine, tmp_path):
    """configure probes and the project's own programs run under qemu: without the handler, a
    clean error before any container starts."""
    project = make_project(tmp_path / "p", {"Makefile": "all:\n\ttrue\n"})
    proc = xbuild("--target", "rpi3", project, "--mode", "hybrid",
                  env={"XBUILD_BINFMT_DIR": str(tmp_path)})  # an empty binfmt_misc
    assert proc.returncode == 9, proc.stderr
    assert "qemu-arm" in proc.stderr and "hybrid" in proc.stderr and "Traceback" not in proc.stderr

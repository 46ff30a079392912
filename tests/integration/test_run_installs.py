"""`xbuild run` installs the artifact as the board would (issue 17): examples/shared-lib (a program
and the shared library it links, no RPATH) built for rpi3 with --deb; the .deb installed with apt
itself in a clean container of the board's release, the tar.gz unpacked into /usr/local and
`ldconfig` run, as docs/outputs.md says. Nothing helps the program the board would not have: a .deb
without dpkg's ldconfig trigger installs, and its program does not start, here as on the board."""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import pytest

from tests.helpers import EXAMPLES, xbuild
from xbuild.artifact import deb

pytestmark = pytest.mark.integration

GREETING = "Hello from libgreet.so.0"


@pytest.fixture(scope="module")
def shared_lib(engine, tmp_path_factory) -> dict:
    project = shutil.copytree(EXAMPLES / "shared-lib", tmp_path_factory.mktemp("sl") / "shared-lib")
    result = xbuild("--target", "rpi3", project, "--deb", "--json")
    assert result.returncode == 0, result.stderr
    paths = {Path(a["path"]).suffix: Path(a["path"]) for a in json.loads(result.stdout)["artifacts"]}
    return {"deb": paths[".deb"], "tar": paths[".gz"], "stderr": result.stderr,
            "manifest": json.loads((paths[".deb"].parent / "manifest.json").read_text())}


def test_the_deb_installs_with_apt_and_its_program_starts(shared_lib):
    run = xbuild("run", "--target", "rpi3", shared_lib["deb"], "--", "greet")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == GREETING


def test_the_tar_gz_unpacked_and_ldconfig_run_as_the_docs_say(shared_lib):
    run = xbuild("run", "--target", "rpi3", shared_lib["tar"], "--", "bin/greet")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == GREETING
    docs = (EXAMPLES.parent / "docs" / "outputs.md").read_text()
    assert "-C /usr/local && sudo ldconfig" in docs


def test_the_library_the_artifact_ships_is_neither_a_dependency_nor_a_warning(shared_lib):
    assert shared_lib["manifest"]["depends_unresolved"] == []
    assert [d.split(" ")[0] for d in shared_lib["manifest"]["depends"]] == ["libc6"]
    assert "warning" not in shared_lib["stderr"]


def test_without_the_ldconfig_trigger_the_program_does_not_start(shared_lib, tmp_path, monkeypatch):
    """The same tree packaged as before the trigger: apt installs it, the linker cache never hears
    of libgreet.so.0, and greet fails as on the board (run used to hide this with LD_LIBRARY_PATH)."""
    tree = tmp_path / "tree"
    with tarfile.open(shared_lib["tar"]) as tar:
        tar.extractall(tree, filter="data")
    monkeypatch.setattr(deb, "ships_libraries", lambda *_: False)
    (tmp_path / "out").mkdir()
    untriggered = deb.write(tree, tmp_path / "out", name="shared-lib", version="1.0", arch="armhf",
                            depends=[], description="", prefix="/usr/local", mtime=0)
    run = xbuild("run", "--target", "rpi3", untriggered, "--", "greet")
    assert run.returncode == 127, run.stderr
    assert "libgreet.so.0: cannot open shared object file" in run.stderr


def test_a_package_apt_refuses_is_an_install_error(engine, tmp_path):
    """An arm64 .deb on the armhf board: apt's own message, then exit 53 (not the program's code)."""
    (tmp_path / "tree" / "bin").mkdir(parents=True)
    (tmp_path / "tree" / "bin" / "x").write_text("#!/bin/sh\necho x\n")
    wrong = deb.write(tmp_path / "tree", tmp_path, name="wrong", version="1", arch="arm64",
                      depends=[], description="", prefix="/usr/local", mtime=0)
    run = xbuild("run", "--target", "rpi3", wrong, "--", "bin/x")
    assert run.returncode == 53, run.stderr
    assert "package architecture (arm64) does not match system (armhf)" in run.stderr
    assert "apt-get could not install wrong_1_arm64.deb in a clean container of Raspberry Pi OS " \
           "trixie armhf" in run.stderr


# --- L4T R32 (jetson-nano): Ubuntu 18.04's package names, bullseye's userland as a stand-in -------
CRYPT = {
    "c.c": ('#include <crypt.h>\n#include <stdio.h>\n#include <string.h>\n'
            'int main(void) { const char *h = crypt("board", "$6$salt$");\n'
            '  puts(h && strncmp(h, "$6$salt$", 8) == 0 ? "crypt ok" : "crypt failed"); return 0; }\n'),
    "Makefile": ("all: crypttest\ncrypttest: c.c\n\t$(CC) -o $@ c.c -lcrypt\n"
                 "install: crypttest\n\tmkdir -p $(DESTDIR)$(PREFIX)/bin\n"
                 "\tcp crypttest $(DESTDIR)$(PREFIX)/bin/\n"),
}


def test_l4t_depends_name_bionics_packages_and_run_says_what_stands_in(engine, tmp_path):
    """libcrypt.so.1 is in bionic's libc6 (bullseye's libcrypt1 does not exist there): the .deb
    and the apt line name libc6 alone; `xbuild run` installs bullseye's libcrypt1 in its stead
    and the .deb with dpkg, and says so."""
    from tests.helpers import make_project
    project = make_project(tmp_path / "crypttest", CRYPT)
    result = xbuild("--target", "jetson-nano", project, "--deb", "--json")
    assert result.returncode == 0, result.stderr
    built = json.loads(result.stdout)
    assert built["depends"] == ["libc6 (>= 2.27)"]
    manifest = json.loads(Path(built["manifest"]).read_text())
    assert [d.split(" ")[0] for d in manifest["depends_stand_in"]] == ["libc6", "libcrypt1"]
    package = Path(next(a["path"] for a in built["artifacts"] if a["path"].endswith(".deb")))
    assert deb.depends(package) == ["libc6"]
    run = xbuild("run", "--target", "jetson-nano", package, "--", "crypttest")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "crypt ok"
    assert "image: Debian bullseye arm64 userland (a stand-in for NVIDIA L4T R32 (Ubuntu 18.04)) " \
           "with libcrypt1" in run.stderr
    assert "Debian bullseye's stand-ins (libc6, libcrypt1) are installed instead, and the .deb " \
           "with `dpkg --force-depends -i`" in run.stderr


def test_l4t_deb_with_a_library_runs_from_dpkgs_install(engine, tmp_path):
    project = shutil.copytree(EXAMPLES / "shared-lib", tmp_path / "shared-lib")
    result = xbuild("--target", "jetson-nano", project, "--deb", "--json")
    assert result.returncode == 0, result.stderr
    package = next(a["path"] for a in json.loads(result.stdout)["artifacts"] if a["path"].endswith(".deb"))
    run = xbuild("run", "--target", "jetson-nano", package, "--", "greet")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == GREETING


def test_a_library_bionics_table_lacks_is_a_stand_in_warning(engine, tmp_path):
    """json-c: bullseye's libjson-c.so.5, which bionic does not have (it has .so.3). The build
    says the Depends entry is bullseye's name, a stand-in; run installs it and the program runs."""
    from tests.helpers import make_project
    project = make_project(tmp_path / "jtest", {
        "j.c": ('#include <json-c/json.h>\n#include <stdio.h>\n'
                'int main(void) { puts(json_object_to_json_string(json_object_new_int(42))); return 0; }\n'),
        "Makefile": ("all: jtest\njtest: j.c\n\t$(CC) -o $@ j.c $$(pkg-config --cflags --libs json-c)\n"
                     "install: jtest\n\tmkdir -p $(DESTDIR)$(PREFIX)/bin\n\tcp jtest $(DESTDIR)$(PREFIX)/bin/\n"),
        "xbuild.toml": '[build]\npackages = ["libjson-c-dev"]\ndeb = true\n'})
    result = xbuild("--target", "jetson-nano", project)
    assert result.returncode == 0, result.stderr
    assert "warning: bin/jtest needs libjson-c.so.5, which is not in NVIDIA L4T R32 (Ubuntu 18.04)'s " \
           "package table (releases/l4t-r32.toml): Depends names Debian bullseye's libjson-c5, a " \
           "stand-in" in result.stderr
    assert "on the board: sudo apt install libc6 libjson-c5" in result.stdout
    package = next((project / "xbuild-out" / "jetson-nano").glob("*.deb"))
    run = xbuild("run", "--target", "jetson-nano", package, "--", "jtest")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "42"

"""Real builds for rpi3 (trixie) that fail on something missing: the error names the Debian package
that ships it, found in trixie's real Contents files (fetched from the mirror once, then kept in
~/.cache/xbuild/contents), as the xbuild.toml line that adds it."""

from __future__ import annotations

import os

import pytest

from tests.helpers import make_project, xbuild
from tests.services import Server

pytestmark = pytest.mark.integration

NCURSES = {
    "Makefile": "all:\n\tgcc -o app app.c\n",
    "app.c": "#include <ncurses.h>\nint main(void) { return NCURSES_VERSION_MAJOR > 0 ? 0 : 1; }\n",
}
NCURSES_HINT = 'hint: add packages = ["libncurses-dev"] to xbuild.toml\'s [build] table (provides ncurses.h)'


def _failed(proc, code: int = 7):
    assert proc.returncode == code, (proc.returncode, proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr
    return proc.stderr.splitlines()


def test_a_missing_header_names_its_dev_package_and_that_line_fixes_the_build(engine, tmp_path):
    project = make_project(tmp_path / "curses", NCURSES)
    lines = _failed(xbuild("--target", "rpi3", project))
    assert NCURSES_HINT in lines
    # The build's own hint is still there, after the package's: the fix first.
    assert lines.index(NCURSES_HINT) < next(i for i, ln in enumerate(lines) if ln.startswith("hint: full log:"))

    # The hint's line, as written, makes the build pass.
    line = NCURSES_HINT.removeprefix("hint: add ").split(" to xbuild.toml")[0]
    (project / "xbuild.toml").write_text(f"[build]\n{line}\n")
    proc = xbuild("--target", "rpi3", project)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_a_missing_pkg_config_module_in_meson(engine, tmp_path):
    project = make_project(tmp_path / "mesonjson", {
        "meson.build": "project('j', 'c')\ncjson = dependency('libcjson')\n"
                       "executable('j', 'j.c', dependencies: cjson, install: true)\n",
        "j.c": "#include <cjson/cJSON.h>\nint main(void) { return cJSON_Parse(\"1\") == 0; }\n"})
    lines = _failed(xbuild("--target", "rpi3", project))
    assert 'hint: add packages = ["libcjson-dev"] to xbuild.toml\'s [build] table (provides libcjson.pc)' in lines


def test_a_missing_pkg_config_module_in_autoconf_configure(engine, tmp_path):
    project = make_project(tmp_path / "acjson", {
        "configure.ac": "AC_INIT([j], [1])\nAM_INIT_AUTOMAKE([foreign])\nAC_PROG_CC\n"
                        "PKG_CHECK_MODULES([CJSON], [libcjson >= 1.7])\n"
                        "AC_CONFIG_FILES([Makefile])\nAC_OUTPUT\n",
        "Makefile.am": "bin_PROGRAMS = j\nj_CFLAGS = $(CJSON_CFLAGS)\nj_LDADD = $(CJSON_LIBS)\n",
        "j.c": "#include <cjson/cJSON.h>\nint main(void) { return cJSON_Parse(\"1\") == 0; }\n"})
    lines = _failed(xbuild("--target", "rpi3", project))
    assert any("configure: error: Package requirements (libcjson >= 1.7) were not met" in ln for ln in lines)
    assert 'hint: add packages = ["libcjson-dev"] to xbuild.toml\'s [build] table (provides libcjson.pc)' in lines


def test_a_missing_command_names_a_tool_and_keep_keeps_the_hint(engine, tmp_path):
    project = make_project(tmp_path / "manpages", {
        "Makefile": "all: app app.1\napp: app.c\n\tgcc -o app app.c\n"
                    "app.1: app.xml\n\txsltproc -o app.1 manpage.xsl app.xml\n",
        "app.c": "int main(void) { return 0; }\n", "app.xml": "<refentry/>\n"})
    lines = _failed(xbuild("--target", "rpi3", project, "--keep"))
    assert 'hint: add tools = ["xsltproc"] to xbuild.toml\'s [build] table (provides /usr/bin/xsltproc)' in lines
    assert any(ln.startswith("hint: build tree kept in") for ln in lines)  # --keep's hint too


def test_the_services_job_failure_shows_the_hint(engine, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "XBUILD_DEBUG"}
    env.update({"XBUILD_STATE_DIR": str(tmp_path / "state"), "XBUILD_STORE": (tmp_path / "store").as_uri(),
                "XBUILD_API_TOKENS": "token-hints-1"})
    server = Server(env, tmp_path)
    try:
        project = make_project(tmp_path / "curses", NCURSES)
        proc = xbuild("submit", "--server", server.url, "--target", "rpi3", project,
                      env={"XBUILD_TOKEN": "token-hints-1"})
    finally:
        server.stop()
    lines = _failed(proc)
    assert NCURSES_HINT in lines
    # The server's paths stay hidden; the log is named by its URL.
    assert any(ln.startswith("hint: full log: GET /v1/builds/") for ln in lines)
    assert str(tmp_path / "state") not in proc.stderr


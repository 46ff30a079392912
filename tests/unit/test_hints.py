"""Hints that name the missing package: the patterns on real tool messages (captured from trixie's
gcc 14, binutils, pkgconf, meson, CMake 3.31, autoconf, bash, dash, make and env in the armhf
cross builder), and the lookup against a mirror served here over real HTTP whose Contents files
are lines copied from trixie's."""

from __future__ import annotations

import gzip
import http.server
import threading

import pytest

from xbuild.artifact.abi import undefined_symbol
from xbuild.pipeline import hints

GCC = """a.c:1:10: fatal error: ncurses.h: No such file or directory
    1 | #include <ncurses.h>
      |          ^~~~~~~~~~~
compilation terminated."""
CLANG = "a.c:1:10: fatal error: 'ncurses.h' file not found"
_LD = "/usr/lib/gcc-cross/arm-linux-gnueabihf/14/../../../../arm-linux-gnueabihf/bin/ld"
LD = f"""{_LD}: cannot find -lcjson: No such file or directory
{_LD}: cannot find -lncursesw: No such file or directory
collect2: error: ld returned 1 exit status"""
PKGCONF = """Package libcjson was not found in the pkg-config search path.
Perhaps you should add the directory containing `libcjson.pc'
to the PKG_CONFIG_PATH environment variable
Package 'libcjson', required by 'virtual:world', not found"""
PKG_CONFIG_OLD = "No package 'libcjson' found"
MESON_DEP = """Run-time dependency libcjson found: NO (tried pkgconfig and cmake)

meson.build:2:0: ERROR: Dependency "libcjson" not found, tried pkgconfig and cmake

A full log can be found at /tmp/w/ms/b/meson-logs/meson-log.txt"""
MESON_PROGRAM = """meson.build:2:0: ERROR: Program 'xsltproc' not found or not executable

A full log can be found at /tmp/w/ms2/b/meson-logs/meson-log.txt"""
CMAKE_CONFIG = """CMake Error at CMakeLists.txt:3 (find_package):
  By not providing "FindcJSON.cmake" in CMAKE_MODULE_PATH this project has
  asked CMake to find a package configuration file provided by "cJSON", but
  CMake did not find one.

  Could not find a package configuration file provided by "cJSON" with any of
  the following names:

    cJSONConfig.cmake
    cjson-config.cmake
"""
CMAKE_FIND_OPENSSL = """CMake Error at /usr/share/cmake-3.31/Modules/FindPackageHandleStandardArgs.cmake:233 (message):
  Could NOT find OpenSSL, try to set the path to OpenSSL root folder in the
  system variable OPENSSL_ROOT_DIR (missing: OPENSSL_CRYPTO_LIBRARY
  OPENSSL_INCLUDE_DIR)
Call Stack (most recent call first):
  /usr/share/cmake-3.31/Modules/FindPackageHandleStandardArgs.cmake:603 (_FPHSA_FAILURE_MESSAGE)"""
CMAKE_FIND_PKGCONFIG = "  Could NOT find PkgConfig (missing: PKG_CONFIG_EXECUTABLE)"
CMAKE_FIND_UNKNOWN = "  Could NOT find Frobnicator (missing: FROB_LIBRARY FROB_INCLUDE_DIR)"
CMAKE_PKG_CHECK = """-- Found PkgConfig: /usr/bin/pkg-config (found version "1.8.1")
--   Package 'libcjson', required by 'virtual:world', not found
CMake Error at /usr/share/cmake-3.31/Modules/FindPkgConfig.cmake:645 (message):
  The following required packages were not found:

   - libcjson
"""
CONFIGURE_HEADER = """checking for unistd.h... yes
checking for ncurses.h... no
configure: error: ncurses.h is required"""
CONFIGURE_LIB = """checking for gcc option to enable C11 features... none needed
checking for cJSON_Parse in -lcjson... no
configure: error: libcjson is required"""
CONFIGURE_LIBS = """checking for keypad in -lncursest -ltinfo... no
checking for keypad in -lcurses... no
checking for keypad in -lcurses -ltinfo... no
configure: error: cannot find required curses/ncurses library"""  # htop 3.4.1
CONFIGURE_PROGRAM = """checking for xsltproc... no
configure: error: xsltproc is required to build the man pages"""
CONFIGURE_PKG = """checking for libcjson >= 1.7... no
configure: error: Package requirements (libcjson >= 1.7) were not met:

Package 'libcjson', required by 'virtual:world', not found
"""
CMAKE_MESSAGE = """CMake Error at man/CMakeLists.txt:46 (message):
  xsltproc not found: manpages cannot be built
"""  # mosquitto 2.0.21
BASH = "bash: line 1: xsltproc: command not found"
DASH = "sh: 1: xsltproc: not found"
DASH_IN_MAKE = "/bin/sh: 1: xsltproc: not found"
MAKE = """xsltproc -o x.1 x.xsl
make: xsltproc: No such file or directory
make: *** [Makefile:2: all] Error 127"""
ENV = "env: ‘xsltproc’: No such file or directory"


def _add(key: str, package: str, provides: str) -> str:
    return f'add {key} = ["{package}"] to xbuild.toml\'s [build] table (provides {provides})'



@pytest.mark.parametrize("log, expected", [
    (GCC, [("header", "ncurses.h")]),
    (CLANG, [("header", "ncurses.h")]),
    (LD, [("library", "cjson"), ("library", "ncursesw")]),
    (PKGCONF, [("pkgconfig", "libcjson")]),
    (PKG_CONFIG_OLD, [("pkgconfig", "libcjson")]),
    (MESON_DEP, [("dependency", "libcjson")]),
    (MESON_PROGRAM, [("command", "xsltproc")]),
    (CMAKE_CONFIG, [("cmake", "cJSON")]),
    (CMAKE_FIND_OPENSSL, [("header", "openssl/ssl.h")]),
    (CMAKE_FIND_PKGCONFIG, [("command", "pkg-config")]),
    (CMAKE_FIND_UNKNOWN, []),  # no sane mapping: no guess
    (CMAKE_PKG_CHECK, [("pkgconfig", "libcjson")]),
    (CONFIGURE_HEADER, [("header", "ncurses.h")]),
    (CONFIGURE_LIB, [("library", "cjson")]),
    (CMAKE_MESSAGE, [("command", "xsltproc")]),
    (CONFIGURE_LIBS, [("library", "curses")]),
    (CONFIGURE_PROGRAM, [("command", "xsltproc")]),
    (CONFIGURE_PKG, [("pkgconfig", "libcjson")]),
    (BASH, [("command", "xsltproc")]),
    (DASH, [("command", "xsltproc")]),
    (DASH_IN_MAKE, [("command", "xsltproc")]),
    (MAKE, [("command", "xsltproc")]),
    (ENV, [("command", "xsltproc")]),
], ids=lambda v: v if isinstance(v, str) and len(v) < 30 else None)
def test_real_messages_name_what_is_missing(log, expected):
    assert hints.missing(log.splitlines()) == expected


def test_several_missing_things_in_log_order_each_once():
    lines = (GCC + "\n" + LD + "\n" + GCC + "\n" + BASH).splitlines()
    assert hints.missing(lines) == [("header", "ncurses.h"), ("library", "cjson"),
                                    ("library", "ncursesw"), ("command", "xsltproc")]


def test_a_no_configure_goes_past_and_an_optional_meson_dependency_are_not_missing():
    lines = ["checking for strlcpy... no", "checking for stdio.h... yes", "checking for a.h... yes",
             "checking for b.h... yes", "checking for c.h... yes", "configure: error: C compiler cannot"
             " create executables", "Run-time dependency systemd found: NO (tried pkgconfig)",
             "Build targets in project: 3", "Found ninja-1.12.1 at /usr/bin/ninja",
             "Message: done", "ninja: build stopped: subcommand failed.", "FAILED: foo.o"]
    assert hints.missing(lines) == []


def test_compiler_lines_that_only_look_alike_are_not_missing():
    lines = ["warning: no previously seen command not found here",
             "checking whether make sets $(MAKE)... yes", "main.c:3:5: error: 'x' undeclared"]
    assert hints.missing(lines) == []


# --- lookup, against a mirror served over HTTP on 127.0.0.1 -------------------------------------
# Lines copied from trixie's Contents-armhf.gz, Contents-amd64.gz and Contents-all.gz.
CONTENTS = {
    "armhf": """\
usr/bin/tclsh                                           interpreters/tcl
usr/bin/xsltproc                                        text/xsltproc
usr/include/CUnit/CUnit.h                               libdevel/libcunit1-dev,libdevel/libcunit1-ncurses-dev
usr/include/arm-linux-gnueabihf/openssl/opensslconf.h   libdevel/libssl-dev
usr/include/cjson/cJSON.h                               libdevel/libcjson-dev
usr/include/libxslt/xslt.h                              libdevel/libxslt1-dev
usr/include/mapcache/cJSON.h                            libdevel/libmapcache-dev
usr/include/ncurses.h                                   libdevel/libncurses-dev
usr/include/openssl/ssl.h                               libdevel/libssl-dev
usr/include/zlib.h                                      libdevel/zlib1g-dev
usr/lib/arm-linux-gnueabihf/cmake/cJSON/cJSONConfig.cmake libdevel/libcjson-dev
usr/lib/arm-linux-gnueabihf/libncursesw.a               libdevel/libncurses-dev
usr/lib/arm-linux-gnueabihf/libncursesw.so              libdevel/libncurses-dev
usr/lib/arm-linux-gnueabihf/libncursesw.so.6            libs/libncursesw6
usr/lib/arm-linux-gnueabihf/pkgconfig/libcjson.pc       libdevel/libcjson-dev
usr/lib/arm-linux-gnueabihf/pkgconfig/openssl.pc        libdevel/libssl-dev
usr/share/doc/xsltproc/copyright                        text/xsltproc
""",
    "amd64": """\
usr/bin/pkg-config                                      devel/pkgconf
usr/bin/tclsh8.6                                        interpreters/tcl8.6
usr/bin/xsltproc                                        text/xsltproc
usr/include/ncurses.h                                   libdevel/libncurses-dev
""",
    "all": """\
usr/bin/help2man                                        doc/help2man
usr/include/X11/X.h                                     x11/x11proto-dev
usr/share/pkgconfig/xproto.pc                           x11/x11proto-dev
""",
}


class Mirror:
    """dists/trixie/main/Contents-<arch>.gz over HTTP; counts the requests; `broken` serves a
    truncated file."""

    def __init__(self):
        self.requests: list[str] = []
        self.broken = False
        mirror = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                mirror.requests.append(self.path)
                arch = self.path.rpartition("Contents-")[2].removesuffix(".gz")
                if arch not in CONTENTS or not self.path.startswith("/debian/dists/trixie/main/"):
                    self.send_error(404)
                    return
                body = gzip.compress(CONTENTS[arch].encode())
                body = body[:len(body) // 2] if mirror.broken else body
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/debian"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    served = Mirror()
    monkeypatch.setenv("XBUILD_DEBIAN_MIRROR", served.url)
    yield served
    served.stop()


def _hints(log: str, **kw) -> list[str]:
    args = {"suite": "trixie", "target_arch": "armhf", "multiarch": "arm-linux-gnueabihf",
            "tools_arch": "amd64", **kw}
    return hints.hints(log.splitlines(), **args)


def test_header_library_pkgconfig_cmake_and_command_name_their_packages(mirror):
    assert _hints(GCC) == [_add("packages", "libncurses-dev", "ncurses.h")]
    assert _hints(LD) == [_add("packages", "libncurses-dev", "libncursesw.so")]
    assert _hints(MESON_DEP) == [_add("packages", "libcjson-dev", "libcjson.pc")]
    assert _hints(CMAKE_CONFIG) == [_add("packages", "libcjson-dev", "cJSONConfig.cmake")]
    assert _hints(CMAKE_FIND_OPENSSL) == [_add("packages", "libssl-dev", "openssl/ssl.h")]
    assert _hints(BASH) == [_add("tools", "xsltproc", "/usr/bin/xsltproc")]
    assert _hints(CMAKE_FIND_PKGCONFIG) == [_add("tools", "pkgconf", "/usr/bin/pkg-config")]
    # Arch-independent packages come from Contents-all.
    assert _hints("Package 'xproto', required by 'virtual:world', not found") == [
        _add("packages", "x11proto-dev", "xproto.pc")]
    assert _hints("help2man: command not found") == [
        _add("tools", "help2man", "/usr/bin/help2man")]


# openssl-sys 0.9's build script, through the pkg-config crate, when libssl-dev is missing
OPENSSL_SYS = """\
  Could not find openssl via pkg-config:

  pkg-config exited with status code 1
  > PKG_CONFIG_ALLOW_SYSTEM_CFLAGS=1 arm-linux-gnueabihf-pkg-config --libs --cflags openssl

  The system library `openssl` required by crate `openssl-sys` was not found.
  The file `openssl.pc` needs to be installed and the PKG_CONFIG_PATH environment variable must
"""


def test_a_rust_sys_crates_missing_library_names_its_dev_package(mirror):
    assert _hints(OPENSSL_SYS) == [_add("packages", "libssl-dev", "openssl.pc")]


def test_commands_come_from_the_build_machines_index_in_cross_mode_and_the_targets_in_emulate(mirror):
    # tclsh: only in the armhf Contents here, tclsh8.6 only in amd64's.
    assert _hints("sh: 1: tclsh: not found") == []
    assert _hints("sh: 1: tclsh: not found", tools_arch="armhf") == [
        _add("tools", "tcl", "/usr/bin/tclsh")]
    assert _hints("sh: 1: tclsh8.6: not found") == [
        _add("tools", "tcl8.6", "/usr/bin/tclsh8.6")]


def test_several_failures_give_one_line_per_package_deduplicated(mirror):
    log = "\n".join([GCC, LD, PKGCONF, CMAKE_CONFIG, MAKE, BASH])
    assert _hints(log) == [
        _add("packages", "libncurses-dev", "ncurses.h, libncursesw.so"),
        _add("packages", "libcjson-dev", "libcjson.pc, cJSONConfig.cmake"),
        _add("tools", "xsltproc", "/usr/bin/xsltproc")]


def test_dev_packages_first_and_ambiguous_bare_headers_name_nothing(mirror):
    assert _hints("x.c:1:10: fatal error: CUnit/CUnit.h: No such file or directory") == [
        _add("packages", "libcunit1-dev", "CUnit/CUnit.h")]
    # <xslt.h> without its directory: one package has it, so it is named.
    assert _hints("x.c:1:10: fatal error: xslt.h: No such file or directory") == [
        _add("packages", "libxslt1-dev", "xslt.h")]
    # <cJSON.h>: libcjson-dev and a copy in libmapcache-dev; no guess. A project's own header: none.
    assert _hints("x.c:1:10: fatal error: cJSON.h: No such file or directory") == []
    assert _hints("x.c:1:10: fatal error: config.h: No such file or directory") == []


def test_a_package_already_declared_is_not_hinted_again(mirror):
    assert _hints(GCC + "\n" + BASH, declared={"libncurses-dev"}) == [
        _add("tools", "xsltproc", "/usr/bin/xsltproc")]


def test_contents_are_fetched_once_per_suite_and_arch_then_read_from_the_cache(mirror, tmp_path):
    _hints(GCC + "\n" + BASH)
    _hints(LD)
    assert sorted(mirror.requests) == [f"/debian/dists/trixie/main/Contents-{a}.gz"
                                       for a in ("all", "amd64", "armhf")]
    reduced = (tmp_path / "cache" / "xbuild" / "contents" / "trixie" / "armhf.txt").read_text()
    assert "usr/include/ncurses.h\tlibncurses-dev\n" in reduced
    assert "usr/share/doc" not in reduced and "libncursesw.so.6" not in reduced  # only what is looked up


def test_no_contents_means_no_hint_and_no_error(mirror, monkeypatch):
    mirror.broken = True  # a truncated download
    assert _hints(GCC) == []
    assert _hints(GCC, suite="nosuchsuite") == []  # a 404
    monkeypatch.setenv("XBUILD_DEBIAN_MIRROR", "http://127.0.0.1:1/debian")  # nothing listens
    assert _hints(GCC, suite="bookworm") == []


def test_a_mirror_that_failed_is_not_asked_again_for_an_hour(mirror):
    mirror.broken = True
    assert _hints(GCC) == []
    asked = len(mirror.requests)
    mirror.broken = False
    assert _hints(GCC) == [] and len(mirror.requests) == asked  # no wait on every failed build


def test_an_old_copy_serves_when_the_mirror_is_gone(mirror, monkeypatch, tmp_path):
    import os
    assert _hints(GCC) != []
    cached = tmp_path / "cache" / "xbuild" / "contents" / "trixie" / "armhf.txt"
    os.utime(cached, (0, 0))  # older than a week: fetched again, but the mirror does not answer
    monkeypatch.setenv("XBUILD_DEBIAN_MIRROR", "http://127.0.0.1:1/debian")
    assert _hints(GCC) == [_add("packages", "libncurses-dev", "ncurses.h")]


def test_the_hints_go_before_the_builds_own_hint(mirror):
    from types import SimpleNamespace

    from xbuild.board.targets import get
    spec = SimpleNamespace(target=get("rpi3"), mode="cross",
                           config=SimpleNamespace(packages=()), packages=(), tools=())
    assert hints.for_build("full log: /x.failed.log", GCC.splitlines(), spec) == (
        _add("packages", "libncurses-dev", "ncurses.h") + "\nfull log: /x.failed.log")
    assert hints.for_build("full log: /x", ["make: *** [all] Error 2"], spec) == "full log: /x"


def test_the_service_keeps_the_hints_and_hides_only_server_paths(tmp_path):
    from types import SimpleNamespace

    from xbuild.service.execute import _tenant_hint
    job = SimpleNamespace(id="j1")
    add = _add("packages", "libncurses-dev", "ncurses.h")
    hint = f"{add}\nfull log: {tmp_path}/x.log"
    assert _tenant_hint(hint, job, tmp_path) == f"{add}\nfull log: GET /v1/builds/j1/log"


def test_fetching_is_bounded_in_time(mirror, monkeypatch):
    monkeypatch.setattr(hints, "FETCH_SECONDS", 0)  # the time a failed build may spend is spent
    assert _hints(GCC) == [] and mirror.requests == []


# Failures xbuild knows by their message (hints.known): real lines from trixie's armhf cross builder.
RPL_LD = f"""{_LD}: ./libbuf.so: undefined reference to `rpl_malloc'
{_LD}: ./libbuf.so: undefined reference to `rpl_realloc'
collect2: error: ld returned 1 exit status
make: *** [Makefile:22: bufdemo] Error 1"""
_INC = "/usr/arm-linux-gnueabihf/include"
_ERROR = '#error "_TIME_BITS=64 is allowed only with _FILE_OFFSET_BITS=64"'
TIME_BITS = f"""arm-linux-gnueabihf-gcc  -o gzlike gzlike.c
In file included from {_INC}/features.h:415,
                 from {_INC}/bits/libc-header-start.h:33,
                 from {_INC}/stdio.h:28,
                 from gzlike.c:8:
{_INC}/features-time64.h:26:5: error: {_ERROR}
   26 | #   error "_TIME_BITS=64 is allowed only with _FILE_OFFSET_BITS=64"
      |     ^~~~~
make: *** [Makefile:2: gzlike] Error 1"""


def _spec(board: str = "rpi3", os: str | None = None):
    from pathlib import Path
    from types import SimpleNamespace

    from xbuild.board.targets import get
    return SimpleNamespace(target=get(board).with_os(os), mode="cross", static=False,
                           project=Path("my project"), config=SimpleNamespace(packages=()),
                           packages=(), tools=())


def test_rpl_malloc_says_what_autoconf_guessed_and_the_answer():
    text = undefined_symbol("rpl_malloc")
    assert text is not None and "AC_FUNC_MALLOC decided ac_cv_func_malloc_0_nonnull=no" in text
    assert "cross build cannot run its malloc(0) probe" in text
    assert 'env = { ac_cv_func_malloc_0_nonnull = "yes" }' in text and "autoconf 2.70" in text
    assert "ac_cv_func_realloc_0_nonnull" in (undefined_symbol("rpl_realloc") or "")
    assert undefined_symbol("rpl_mallocx") is None and undefined_symbol("malloc") is None


def test_the_linkers_and_the_loaders_undefined_rpl_malloc_are_recognised():
    found = hints.known(RPL_LD.splitlines(), _spec())
    assert [h.split(" ", 1)[0] for h in found] == ["rpl_malloc", "rpl_realloc"]
    lld = "ld.lld: error: undefined symbol: rpl_malloc\n>>> referenced by buf.c"
    loader = "bufdemo: symbol lookup error: /usr/local/lib/libbuf.so.1: undefined symbol: rpl_malloc"
    for log in (lld, loader):
        assert hints.known(log.splitlines(), _spec()) == [undefined_symbol("rpl_malloc")]


def test_time_bits_says_what_happened_and_both_ways_out():
    (text,) = hints.known(TIME_BITS.splitlines(), _spec())
    assert "trixie's armhf compiler defines _TIME_BITS=64" in text and "undefines _FILE_OFFSET_BITS" in text
    assert "xbuild --target rpi3 --os bookworm 'my project'" in text
    assert "zlib 1.3 undefines _TIME_BITS" in text


def test_time_bits_on_a_boards_oldest_release_offers_only_the_source_fix():
    (text,) = hints.known(TIME_BITS.splitlines(), _spec(os="bullseye"))
    assert "--os" not in text and "zlib 1.3" in text


def test_known_failures_come_after_the_packages_and_before_the_builds_own_hint():
    assert hints.for_build("full log: /x", TIME_BITS.splitlines(), _spec()) == \
        hints.known(TIME_BITS.splitlines(), _spec())[0] + "\nfull log: /x"
    assert hints.known(GCC.splitlines(), _spec()) == []


def test_gos_offline_module_failures_name_the_fix():
    lines = ["main.go:6:2: missing go.sum entry for module providing package example.com/greet; to add:",
             "\tgo get example.com/app"]
    (hint,) = hints.known(lines, None)
    assert "go mod tidy" in hint and "go mod vendor" in hint
    (hint,) = hints.known(["go: inconsistent vendoring in /xbuild/src:"], None)
    assert "run `go mod vendor`" in hint

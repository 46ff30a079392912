"""Hints that name the missing package: when a build fails on a missing header, library,
pkg-config module, CMake package or command, find the file in the board's OS release's package
index (Debian's Contents files) and say which xbuild.toml line adds the package that ships it:

    add packages = ["libncurses-dev"] to xbuild.toml's [build] table (provides ncurses.h)
    add tools = ["xsltproc"] to xbuild.toml's [build] table (provides /usr/bin/xsltproc)

Headers, libraries, pkg-config modules and CMake packages are the target's (`packages`, its -dev
packages); commands run on the build machine (`tools`): the host's architecture in cross mode, the
target's in emulate mode. The Contents files are fetched on the host once per (suite, arch) and
kept, reduced to the paths looked up here, under ~/.cache/xbuild/contents/. A hint is a courtesy:
no network, a slow mirror or an unknown name means no hint, never another error."""

from __future__ import annotations

import os
import re
import time
import zlib
from collections.abc import Collection
from pathlib import Path

from xbuild.artifact.abi import undefined_symbol
from xbuild.host.paths import cache_dir
from xbuild.request import Mode

# (kind, pattern) over the failed build's last lines (re.MULTILINE); group 1 is the missing name.
# kind: header | library | pkgconfig | dependency (meson: pkg-config, else CMake) | cmake |
#       findmodule (CMake's Find<X>.cmake; group 2 the missing variables) | configure | command
PATTERNS: tuple[tuple[str, str], ...] = (
    ("header", r"fatal error: ([^\s:']+): No such file or directory"),            # gcc
    ("header", r"fatal error: '([^'\s]+)' file not found"),                       # clang
    ("library", r"cannot find -l([\w+.-]+)"),                                     # ld
    ("pkgconfig", r"Package '([^']+)', required by '[^']*', not found"),          # pkgconf
    ("pkgconfig", r"No package '([^']+)' found"),                                 # pkg-config
    ("pkgconfig", r"Package ([\w+.-]+) was not found in the pkg-config search path"),
    # the pkg-config crate, in a Rust -sys crate's build script (openssl-sys, libz-sys...)
    ("pkgconfig", r"The system library `([\w+.-]+)` required by crate `[\w-]+` was not found"),
    ("dependency", r'ERROR: Dependency "([^"]+)" not found'),                     # meson
    ("dependency", r"Run-time dependency ([\w+.-]+) found: NO.*\n(?:.*\n){0,2}?.*ERROR:"),
    ("command", r"ERROR: Program '([\w+.-]+)' not found"),                        # meson
    ("command", r"Could not find \w+ using the following names: ([\w+.-]+)"),       # CMake find_program
    # A project's own CMake message(FATAL_ERROR "xsltproc not found: ..."), as mosquitto's: only
    # a name the index knows as a command becomes a hint.
    ("command", r"CMake Error at [^\n]*\(message\):\n\s+([\w+.-]+) not found"),
    ("cmake", r'Could not find a package configuration file provided by\s+"([^"]+)"'),
    ("findmodule", r"Could NOT find (\w+)\b[^(]*\(missing:\s*([^)]*)\)"),  # spans lines
    # A "no" only counts when configure stops right after it: most "no"s are harmless.
    # The last check before the error: the lines between are not checks themselves.
    ("configure", r"^checking (?:for )?(.+?)\.\.\. no\n(?:(?!checking ).*\n){0,3}?configure: error:"),
    ("command", r"\b([\w+.-]+): command not found"),                              # bash
    ("command", r": \d+: ([\w+.-]+): not found$"),                                # dash (sh)
    ("command", r"^make(?:\[\d+\])?: ([\w+.-]+): No such file or directory"),     # make, exit 127
    ("command", r"^env: ['‘]([\w+.-]+)['’]: No such file or directory"),
)

# CMake's Find modules whose missing part is a header the index can find ("Could NOT find X").
FIND_MODULES = {
    "OpenSSL": "openssl/ssl.h", "ZLIB": "zlib.h", "CURL": "curl/curl.h", "PNG": "png.h",
    "JPEG": "jpeglib.h", "BZip2": "bzlib.h", "LibLZMA": "lzma.h", "EXPAT": "expat.h",
    "SQLite3": "sqlite3.h", "Curses": "ncurses.h", "LibXml2": "libxml/parser.h",
    "LibXslt": "libxslt/xslt.h", "Freetype": "ft2build.h", "TIFF": "tiffio.h", "GIF": "gif_lib.h",
    "X11": "X11/Xlib.h", "OpenGL": "GL/gl.h", "GTest": "gtest/gtest.h", "Boost": "boost/version.hpp",
    "LibArchive": "archive.h", "Protobuf": "google/protobuf/message.h", "Readline": "readline/readline.h",
    "Libusb": "libusb-1.0/libusb.h", "USB1": "libusb.h", "LibUSB": "libusb-1.0/libusb.h",
    "ALSA": "alsa/asoundlib.h", "GnuTLS": "gnutls/gnutls.h", "Lua": "lua.h", "SDL2": "SDL2/SDL.h",
}
# <X>_EXECUTABLE names a command: x lowercased, "_" as "-" (PKG_CONFIG -> pkg-config), except:
EXECUTABLES = {"LIBXSLT_XSLTPROC_EXECUTABLE": "xsltproc", "GETTEXT_MSGFMT_EXECUTABLE": "msgfmt",
               "PYTHON_EXECUTABLE": "python3", "Python3_EXECUTABLE": "python3"}

MAX_AGE = 7 * 86400   # the suite's Contents change with point releases: fetch again after a week
FETCH_SECONDS = 60    # every Contents file one failed build fetches; past it, no hint
READ_TIMEOUT = 15     # one read from the mirror
RETRY_AFTER = 3600    # a mirror that failed is not asked again sooner (no network: no wait per build)
MAX_NAMES = 10        # looked up per failed build: each lookup scans the index (tens of ms)

# What a lookup needs of a Contents file: headers, pkg-config modules, libraries in a lib dir,
# commands and CMake package configuration files.
_KEEP = re.compile(rb"(?:usr/)?s?bin/[^/]+|usr/include/.+|usr/(?:lib|share)/(?:[^/]+/)?pkgconfig/[^/]+\.pc"
                   rb"|usr/lib/(?:[^/]+/)?lib[^/]+\.(?:so|a)|usr/(?:lib|share)/.*/[^/]+(?:Config|-config)\.cmake")
_PREFIXES = (b"usr/include/", b"usr/bin/", b"usr/sbin/", b"bin/", b"sbin/", b"usr/lib/", b"usr/share/")
_DEV_KINDS = ("header", "library", "pkgconfig", "cmake")


def missing(lines: list[str]) -> list[tuple[str, str]]:
    """(kind, name) of what the lines say is missing, in order, without repeats."""
    text = "\n".join(lines) + "\n"
    found: list[tuple[int, str, str]] = []
    for kind, pattern in PATTERNS:
        for m in re.finditer(pattern, text, re.MULTILINE):
            found += [(m.start(), k, n) for k, n in _classify(kind, m)]
    return list(dict.fromkeys((k, n) for _, k, n in sorted(found)))


def _classify(kind: str, m: re.Match) -> list[tuple[str, str]]:
    name = m.group(1)
    if kind == "findmodule":
        commands = [EXECUTABLES.get(v, v[:-len("_EXECUTABLE")].lower().replace("_", "-"))
                    for v in m.group(2).split() if v.endswith("_EXECUTABLE")]
        return [("command", c) for c in commands] or (
            [("header", FIND_MODULES[name])] if name in FIND_MODULES else [])
    if kind == "configure":  # checking for X... no: a function in a library, a header, a program
        if lib := re.match(r"\S+ in -l([\w+.-]+)", name):  # "keypad in -lcurses -ltinfo": the first
            return [("library", lib.group(1))]
        if re.fullmatch(r"[\w+./-]+\.h(?:pp)?", name):
            return [("header", name)]
        if re.fullmatch(r"[a-z][\w+.-]*", name):
            return [("command", name)]
        return []
    return [(kind, name)]


class Index:
    """One (suite, arch)'s reduced Contents, with the suite's arch-independent packages."""

    def __init__(self, suite: str, arch: str, deadline: float, progress=None):
        self.texts = [t for t in (_contents(suite, a, deadline, progress) for a in (arch, "all")) if t]

    def find(self, pattern: str, prefer_dev: bool) -> tuple[str, str] | None:
        """(package, path) of the first path that matches `pattern` (a regex of whole paths);
        -dev packages first where asked, then the shortest path and name."""
        rx = re.compile(rf"^({pattern})\t(.+)$", re.MULTILINE)
        hits = [(path, pkg) for text in self.texts for path, pkgs in rx.findall(text)
                for pkg in pkgs.split(",")]
        if not hits:
            return None
        path, pkg = min(hits, key=lambda h: (prefer_dev and not h[1].endswith("-dev"),
                                             h[0].endswith(".a"), len(h[0]), len(h[1]), h))
        return pkg, path

    def packages(self, pattern: str) -> set[str]:
        rx = re.compile(rf"^(?:{pattern})\t(.+)$", re.MULTILINE)
        return {p for text in self.texts for pkgs in rx.findall(text) for p in pkgs.split(",")}


def lookup(kind: str, name: str, index: Index, multiarch: str) -> tuple[str, str] | None:
    """(package, what it provides) for one missing thing, or None."""
    e, ma = re.escape(name), re.escape(multiarch)
    dev = kind in _DEV_KINDS
    if kind == "header":
        if hit := index.find(rf"usr/include/(?:{ma}/)?{e}", dev):
            return hit[0], name
        # Included without its directory (<cJSON.h> with -I.../cjson): only when one package has it.
        deep = rf"usr/include/[^\t\n]*/{e}"
        hit = index.find(deep, dev) if len(index.packages(deep)) == 1 else None
        return (hit[0], name) if hit else None
    if kind == "library":
        hit = index.find(rf"usr/lib/(?:{ma}/)?lib{e}\.(?:so|a)", dev)
    elif kind == "pkgconfig":
        hit = index.find(rf"usr/(?:lib/{ma}|lib|share)/pkgconfig/{e}\.pc", dev)
    elif kind == "cmake":
        low = re.escape(name.lower())
        hit = index.find(rf"usr/(?:lib|share)/[^\t\n]*/(?:{e}Config|{low}-config)\.cmake", dev)
    elif kind == "dependency":
        return lookup("pkgconfig", name, index, multiarch) or lookup("cmake", name, index, multiarch)
    elif kind == "command":
        hit = index.find(rf"(?:usr/)?s?bin/{e}", False)
        return (hit[0], "/" + hit[1]) if hit else None
    else:
        return None
    return (hit[0], hit[1].rsplit("/", 1)[-1]) if hit else None


def hints(lines: list[str], suite: str, target_arch: str, multiarch: str, tools_arch: str,
          declared: Collection[str] = (), progress=None) -> list[str]:
    """The xbuild.toml lines that add what the lines say is missing, one per package."""
    wanted = missing(lines)[:MAX_NAMES]
    if not wanted:
        return []
    indexes: dict[str, Index] = {}
    deadline = time.monotonic() + FETCH_SECONDS
    found: dict[tuple[str, str], list[str]] = {}  # (key, package) -> what it provides
    for kind, name in wanted:
        arch = tools_arch if kind == "command" else target_arch
        if arch not in indexes:
            indexes[arch] = Index(suite, arch, deadline, progress)
        if (hit := lookup(kind, name, indexes[arch], multiarch)) is None or hit[0] in declared:
            continue
        key = "tools" if kind == "command" else "packages"
        provides = found.setdefault((key, hit[0]), [])
        if hit[1] not in provides:
            provides.append(hit[1])
    return [f'add {key} = ["{pkg}"] to xbuild.toml\'s [build] table (provides {", ".join(provides)})'
            for (key, pkg), provides in found.items()]


# A cross build that runs what it built for the board, where it cannot: a program the build
# machine cannot execute, or an autoconf probe that refuses to run when cross compiling.
RUNS_TARGET_CODE = re.compile(r"Exec format error|cannot run test program while cross compiling"
                              r"|cannot run C(?:\+\+)? compiled programs")


def hybrid(lines: list[str], spec) -> str | None:
    """For a cross build that failed running target code: the command that builds it in
    --mode hybrid (the board's root filesystem, with the cross compiler), when the board has it."""
    from xbuild.errors import ConfigError
    from xbuild.toolchain import pick
    if not RUNS_TARGET_CODE.search("\n".join(lines)) or spec.mode != Mode.CROSS or spec.static:
        return None
    try:
        pick(spec.target, Mode.HYBRID)
    except ConfigError:
        return None
    target = spec.target
    os_flag = "" if target.selected.name == target.default_os else f" --os {target.selected.name}"
    import shlex
    return (f"this build runs programs it built for {target.name}, which cross mode cannot; "
            f"build it in the board's root filesystem with the cross compiler: xbuild --target "
            f"{target.name}{os_flag} --mode hybrid {shlex.quote(str(spec.project))}")


# Failures whose cause xbuild knows from their message, and whose fix is no package.
# rpl_malloc/rpl_realloc unresolved: GNU ld, lld (zig), the loader at run time.
REPLACEMENT = re.compile(r"undefined (?:reference to [`']|symbol: )(rpl_(?:malloc|realloc))\b")
# glibc's features-time64.h, when a source undefines _FILE_OFFSET_BITS under a compiler that
# defines _TIME_BITS=64 by itself (trixie's armhf and armel GCC: the "t64" move).
TIME_BITS = re.compile(r'#error "_TIME_BITS=64 is allowed only with _FILE_OFFSET_BITS=64"')


def time_bits(spec) -> str:
    """The _TIME_BITS #error: what happened, and the two ways out."""
    target = spec.target
    release = target.selected.name
    older = target.os[:target.os.index(release)] if release in target.os else ()
    import shlex
    way = (f"build for {older[-1]}, whose {target.debian_arch} time_t is 32-bit: xbuild --target "
           f"{target.name} --os {older[-1]} {shlex.quote(str(spec.project))}; or " if older else "")
    return (f"{target.os_name}'s {target.debian_arch} compiler defines _TIME_BITS=64 by itself "
            f"(64-bit time_t), which glibc allows only with _FILE_OFFSET_BITS=64, and this source "
            f"undefines _FILE_OFFSET_BITS (zlib before 1.3 does in gzguts.h): {way}use a version of the "
            f"source with upstream's fix (zlib 1.3 undefines _TIME_BITS along with it)")


# Go's own words for a module the offline build does not have (docs/go.md): the fix is the project's.
GO_FAILURES = (
    (re.compile(r"missing go\.sum entry"), "go.sum lacks a module the build needs: run `go mod tidy` and "
                                           "commit go.sum (xbuild fetches exactly what go.sum names), or "
                                           "`go mod vendor` and commit vendor/"),
    (re.compile(r"inconsistent vendoring"), "vendor/ is out of step with go.mod: run `go mod vendor` and "
                                            "commit vendor/"),
)


def known(lines: list[str], spec) -> list[str]:
    """The hints for failures xbuild recognises in the log's lines, in a fixed order."""
    text = "\n".join(lines)
    found = [undefined_symbol(s) for s in dict.fromkeys(REPLACEMENT.findall(text))]
    found += [time_bits(spec)] if TIME_BITS.search(text) else []
    found += [hint for pattern, hint in GO_FAILURES if pattern.search(text)]
    return [f for f in found if f]


def for_build(hint: str | None, lines: list[str], spec, progress=None) -> str | None:
    """The failed build's hint with the missing packages' hints in front (the fix first), what
    xbuild knows of the failure, and --mode hybrid where the build failed running target code."""
    from xbuild.board.targets import host_arch
    from xbuild.toolchain import multiarch
    target = spec.target
    declared = set(spec.packages) | set(spec.tools)
    found = hints(lines, target.suite, target.debian_arch, multiarch(target),
                  host_arch() if spec.mode == Mode.CROSS else target.debian_arch, declared, progress)
    found += known(lines, spec)
    found += filter(None, [hybrid(lines, spec)])
    return "\n".join(found + ([hint] if hint else [])) or None


def _contents(suite: str, arch: str, deadline: float, progress=None) -> str:
    """The reduced Contents of (suite, arch), fetched when missing or a week old; "" when it
    cannot be had (an old copy is used when the mirror does not answer)."""
    path = cache_dir("contents", suite, f"{arch}.txt")
    failed = path.with_name(f".{arch}.failed")
    if _age(path) > MAX_AGE and _age(failed) > RETRY_AFTER and time.monotonic() < deadline:
        try:
            _fetch(suite, arch, path, deadline, progress)
        except (OSError, EOFError, zlib.error):  # no network, a slow or broken mirror: no hint
            try:                                 # (or the old copy's), and no new try for a while
                failed.parent.mkdir(parents=True, exist_ok=True)
                failed.touch()
            except OSError:
                pass
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _age(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return float("inf")


def _fetch(suite: str, arch: str, path: Path, deadline: float, progress=None) -> None:
    import urllib.request

    from xbuild.containers.rootfs import mirror
    url = f"{mirror()}/dists/{suite}/main/Contents-{arch}.gz"
    if progress is not None:
        progress.phase("hints", f"looking the missing files up in {url} (kept for a week)")
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip
    kept, rest = [], b""
    with urllib.request.urlopen(url, timeout=READ_TIMEOUT) as response:
        while chunk := response.read(1 << 20):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url}: not fetched in {FETCH_SECONDS} s")
            lines = (rest + inflate.decompress(chunk)).split(b"\n")
            rest = lines.pop()
            kept += _reduce(lines)
    if not inflate.eof:
        raise EOFError(f"{url}: truncated")
    kept += _reduce([rest + inflate.flush()])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_bytes(b"".join(kept))
    os.replace(tmp, path)  # whole or not at all, whoever reads it meanwhile


def _reduce(lines: list[bytes]) -> list[bytes]:
    """Contents lines ("path   section/pkg,section/pkg") as "path\\tpkg,pkg\\n", only those kept."""
    out = []
    for line in lines:
        if not line.startswith(_PREFIXES) or line.startswith(b"usr/share/") and not (
                b"/pkgconfig/" in line or b"onfig.cmake" in line):  # most of usr/share: docs
            continue
        path, _, pkgs = line.rstrip().rpartition(b" ")
        path = path.rstrip()
        if path and _KEEP.fullmatch(path):
            out.append(path + b"\t" + b",".join(p.rpartition(b"/")[2] for p in pkgs.split(b",")) + b"\n")
    return out

"""A project's name and version when xbuild.toml does not give them: what its build system
declares (autoconf's AC_INIT, CMake's project(... VERSION x), Meson's project(version: 'x'), a
Makefile's VERSION = x.y, pyproject.toml's [project] version), else its folder's name
(`i2c-tools-4.3` from a tarball).

Read as data on the host: a bounded prefix of a regular file at the project's top (safefs), never
through a link, and only literal values (a version computed by m4, CMake or Meson is not known
here, and is skipped)."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from xbuild.host import safefs

HEAD = 1 << 18  # a declaration sits near the top (configure's PACKAGE_VERSION within ~30 KiB)
# A version as written by projects (and a Debian upstream version): no epoch, no spaces.
VERSION = re.compile(r"[0-9][A-Za-z0-9.+~-]{0,63}\Z")
# A folder named as a release tarball unpacks: NAME-1.2[.3][suffix], with at least one dot.
_FOLDER = re.compile(r"(?P<name>[A-Za-z0-9][A-Za-z0-9._+-]*?)-(?P<version>[0-9]+(\.[0-9]+)+[A-Za-z0-9.+~]*)\Z")


@dataclass(frozen=True)
class Declared:
    version: str
    source: str  # where it was read, said in the progress line and the manifest


def _read(project: Path, name: str) -> str | None:
    try:
        return safefs.read_prefix(project / name, HEAD).decode("utf-8", "replace")
    except OSError:  # absent, a link, a FIFO, a directory: nothing declared there
        return None


def _call_args(text: str, start: int) -> str | None:
    """The text between the parenthesis at `start` and its match (quotes and brackets nest)."""
    depth, quote = 0, ""
    for i in range(start, len(text)):
        c = text[i]
        if quote:
            quote = "" if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
            if depth == 0:
                return text[start + 1:i]
    return None


def _m4_args(args: str) -> list[str]:
    """AC_INIT's arguments split at top-level commas, m4's [quotes] removed."""
    out, depth, cur = [], 0, ""
    for c in args:
        if c == "[":
            depth += 1
            if depth == 1:
                continue
        elif c == "]":
            depth -= 1
            if depth == 0:
                continue
        if c == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += c
    return out + [cur.strip()]


def _literal(version: str | None) -> str | None:
    return version if version is not None and VERSION.match(version) else None


def autoconf(text: str) -> str | None:
    """AC_INIT([libgpiod], [2.1], ...)'s version."""
    match = re.search(r"^[ \t]*AC_INIT\(", text, re.M)
    args = _call_args(text, match.end() - 1) if match else None
    parts = _m4_args(args) if args is not None else []
    return _literal(parts[1]) if len(parts) > 1 else None


def configure_script(text: str) -> str | None:
    """A generated configure's PACKAGE_VERSION='2.1' (a tarball may ship no configure.ac)."""
    match = re.search(r"^PACKAGE_VERSION='([^'\n]*)'", text, re.M)
    return _literal(match.group(1)) if match else None


def cmake(text: str) -> str | None:
    """project(rtlsdr VERSION 0.6.0 LANGUAGES C)'s version."""
    text = re.sub(r"#[^\n]*", "", text)
    match = re.search(r"^[ \t]*project[ \t]*\(", text, re.M | re.I)
    args = _call_args(text, match.end() - 1) if match else None
    words = [w.strip('"') for w in args.split()] if args is not None else []
    for key, value in zip(words, words[1:], strict=False):
        if key == "VERSION":
            return _literal(value)
    return None


def meson(text: str) -> str | None:
    """project('name', 'c', version: '1.2.3', ...)'s version, when it is a string literal."""
    text = re.sub(r"#[^\n]*", "", text)
    match = re.search(r"^[ \t]*project[ \t]*\(", text, re.M)
    args = _call_args(text, match.end() - 1) if match else None
    found = re.search(r"\bversion[ \t\n]*:[ \t\n]*'([^'\n]*)'", args or "")
    return _literal(found.group(1)) if found else None


def makefile(text: str) -> str | None:
    """VERSION = 4.3 (or :=, ?=) at a line's start, a dotted literal (the kernel's VERSION = 6
    is a part of its version, not all of it)."""
    match = re.search(r"^VERSION[ \t]*[:?]?=[ \t]*([0-9]+(?:\.[0-9]+)+[A-Za-z0-9.+~-]*)[ \t]*$", text, re.M)
    return _literal(match.group(1)) if match else None


def pyproject(text: str) -> str | None:
    """[project] version = "1.2.3" (PEP 621), when it is not dynamic."""
    try:
        table = tomllib.loads(text).get("project")
    except tomllib.TOMLDecodeError:
        return None  # a broken pyproject.toml is the build backend's to report
    version = table.get("version") if isinstance(table, dict) else None
    return _literal(version) if isinstance(version, str) else None


def cargo(text: str) -> str | None:
    """[package] version = "1.2.3" (not `version.workspace = true`, which is another file's)."""
    try:
        table = tomllib.loads(text).get("package")
    except tomllib.TOMLDecodeError:
        return None  # a broken Cargo.toml is cargo's to report
    version = table.get("version") if isinstance(table, dict) else None
    return _literal(version) if isinstance(version, str) else None


# Each build system's declaration: (recipe, file, reader, what the progress line calls it).
_SOURCES = (
    ("autotools", "configure.ac", autoconf, "configure.ac's AC_INIT"),
    ("autotools", "configure.in", autoconf, "configure.in's AC_INIT"),
    ("autotools", "configure", configure_script, "configure's PACKAGE_VERSION"),
    ("cmake", "CMakeLists.txt", cmake, "CMakeLists.txt's project(VERSION)"),
    ("meson", "meson.build", meson, "meson.build's project(version:)"),
    ("make", "Makefile", makefile, "the Makefile's VERSION"),
    ("python", "pyproject.toml", pyproject, "pyproject.toml's [project] version"),
    ("cargo", "Cargo.toml", cargo, "Cargo.toml's [package] version"),
)


def declared(project: Path, recipe: str = "") -> Declared | None:
    """The version the build system declares; the recipe's own build system is asked first
    (a project that ships CMake and autotools files is built, and so versioned, by one)."""
    for _, name, reader, source in sorted(_SOURCES, key=lambda s: s[0] != recipe):
        text = _read(project, name)
        if text is not None and (version := reader(text)):
            return Declared(version, source)
    return None


def folder(name: str) -> tuple[str, str] | None:
    """(name, version) of a folder named NAME-VERSION, as a release tarball unpacks."""
    match = _FOLDER.match(name)
    return (match.group("name"), match.group("version")) if match else None

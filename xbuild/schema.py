"""One schema mechanism for every data file xbuild reads: boards (targets/*.toml), releases/*.toml,
recipes/*.toml, a project's xbuild.toml and the operator's nightly.toml.

A schema is a `Table` of nodes: `Value` (a scalar: a check and a phrase for what it must be),
`List` (of values), `Table` (fixed keys), `Names` (keys the file chooses: [loaders], env,
[target.<board>]) and `Tables` (an array of tables: [[project]], detect = [{...}]). `load` reads a
file and walks it against its schema; the first mistake is a ConfigError naming the file, the line
of the offending key, what the value must be, and a hint. Unknown keys are refused with a
did-you-mean. Checks across keys (default_os is one of os) are a table's `rules`."""

from __future__ import annotations

import difflib
import json
import re
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xbuild.errors import ConfigError

# A Debian package name, optionally with an architecture (libssl-dev:armhf): xbuild.toml's
# packages and tools, and what an image's apt line may hold.
DEBIAN_PACKAGE = r"[a-z0-9][a-z0-9+.\-]+(:[a-z0-9]+)?"

Key = tuple[str | int, ...]  # where a value is: ("abi", "bits"), ("project", 0, "os")


@dataclass(frozen=True)
class Value:
    what: str | Callable[[], str]       # what the value must be; a callable when it lists data
    ok: Callable[[Any], bool]           # the whole check, type included
    required: bool = False
    convert: Callable[[Any], Any] | None = None
    hint: str | None = None


@dataclass(frozen=True)
class List:
    item: Value
    required: bool = False
    empty: bool = True                  # may the list be empty?
    hint: str | None = None


@dataclass(frozen=True)
class Names:
    key: Value                          # what each key must be
    value: Node
    required: bool = False
    empty: bool = True
    convert: Callable[[dict], Any] | None = None


@dataclass(frozen=True)
class Tables:
    table: Table
    required: bool = False


@dataclass(frozen=True)
class Table:
    fields: dict[str, Node]
    required: bool = False
    # Checks across keys, run on the checked (converted) table; they raise Invalid.
    rules: tuple[Callable[[dict], None], ...] = field(default=())


Node = Value | List | Names | Tables | Table


class Invalid(Exception):
    """Raised by a table's rule: the key (in that table) to point at and what is wrong."""

    def __init__(self, key: str, message: str, hint: str | None = None):
        super().__init__(message)
        self.key, self.message, self.hint = key, message, hint


# --- building blocks ------------------------------------------------------------------------------

def text(what: str = "a non-empty string", pattern: str | None = None, **kw) -> Value:
    """A string matching `pattern` (whole), or any non-blank string."""
    regex = re.compile(pattern) if pattern else None
    return Value(what, lambda v: isinstance(v, str) and (bool(regex.fullmatch(v)) if regex else v.strip() != ""),
                 **kw)


def one_of(choices: Iterable | Callable[[], Iterable], what: str = "", **kw) -> Value:
    """One of `choices` (a callable when they come from data files, read when first checked)."""
    get = choices if callable(choices) else (lambda: choices)
    describe = (lambda: f"{what} ({', '.join(map(str, get()))})") if what else \
        (lambda: "one of " + ", ".join(map(repr, get())))
    # bool is an int in Python: `bits = true` must not pass as 1
    return Value(describe, lambda v: not isinstance(v, bool) and v in list(get()), **kw)


def integer(low: int, high: int, what: str, **kw) -> Value:
    return Value(what, lambda v: isinstance(v, int) and not isinstance(v, bool) and low <= v <= high, **kw)


ANY_TEXT = Value("a string", lambda v: isinstance(v, str))
BOOL = Value("true or false", lambda v: isinstance(v, bool))
NAME = r"[A-Za-z0-9][A-Za-z0-9._+-]*"   # boards, aliases, projects: also a plain store segment
ENV_NAME = r"[A-Za-z_][A-Za-z0-9_]*"


# --- checking ------------------------------------------------------------------------------------

def load(path: Path, schema: Table, hint: str, raw: bytes | None = None) -> dict:
    """The file's checked content, lists as tuples; `hint` is said when a key has none of its own.
    raw: the file's bytes, read by the caller (a project's file: safefs.read_project_file)."""
    source, data = parse_toml(path, raw)
    return _Check(path, source, hint).node(schema, data, ())


def parse_toml(path: Path, raw: bytes | None = None) -> tuple[str, dict]:
    """The file's text and its TOML, unchecked (for a file whose schema is not all xbuild's, such
    as a project's pyproject.toml); any reason it cannot be read is a ConfigError naming it."""
    try:
        source = (path.read_bytes() if raw is None else raw).decode()
        data = tomllib.loads(source)
    except tomllib.TOMLDecodeError as exc:  # the message already says "(at line N, column M)"
        raise ConfigError(f"{path}: not valid TOML: {exc}", hint="fix the syntax at the line shown") from None
    except RecursionError:  # tomllib recurses once per level: `a = [[[[...` 5000 deep
        raise ConfigError(f"{path}: arrays or tables nested too deeply to read",
                          hint="no setting nests more than a few levels: fix the brackets") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})", hint="TOML files are UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    return source, data


def json_value(data: str | bytes) -> Any:
    """json.loads for a document xbuild did not write itself: one nested too deeply for the parser
    (100,000 `[`) is a ValueError like any other malformed JSON, not a RecursionError."""
    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError("JSON nested too deeply to read") from None


def error(path: Path, source: str, key: Key, message: str, hint: str | None) -> ConfigError:
    """A mistake at `key` of a file: "FILE (line N): message"; for checks made after `load`."""
    return ConfigError(f"{path}{line_of(source, key)}: {message}", hint=hint)


@dataclass
class _Check:
    path: Path
    source: str
    hint: str

    def fail(self, key: Key, message: str, hint: str | None = None) -> ConfigError:
        return error(self.path, self.source, key, message, hint or self.hint)

    def node(self, node: Node, value: Any, key: Key) -> Any:
        if isinstance(node, Value):
            if not node.ok(value):
                raise self.fail(key, f"{_name(key)} must be {_what(node)}, not {value!r}", node.hint)
            return node.convert(value) if node.convert else value
        if isinstance(node, List):
            if not isinstance(value, list):
                raise self.fail(key, f"{_name(key)} must be a list, each entry {_what(node.item)}; not {value!r}",
                                node.hint)
            if not value and not node.empty:
                raise self.fail(key, f"{_name(key)} is an empty list: give at least one, each "
                                     f"{_what(node.item)}", node.hint)
            for item in value:
                if not node.item.ok(item):
                    raise self.fail(key, f"{_name(key)} lists {item!r}, which is not {_what(node.item)}",
                                    node.item.hint or node.hint)
            return tuple(node.item.convert(v) if node.item.convert else v for v in value)
        if isinstance(node, Tables):
            if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
                raise self.fail(key, f"{_name(key)} must be a list of tables, not {value!r}")
            return tuple(self.node(node.table, t, (*key, n)) for n, t in enumerate(value))
        if not isinstance(value, dict):
            raise self.fail(key, f"{_name(key)} must be a table, not {value!r}")
        if isinstance(node, Names):
            return self.names(node, value, key)
        return self.table(node, value, key)

    def names(self, node: Names, value: dict, key: Key) -> Any:
        if not value and not node.empty:
            raise self.fail(key, f"{_name(key)} is an empty table: give at least one entry")
        for name in value:
            if not node.key.ok(name):
                raise self.fail((*key, name), f"{_where(key)}{name!r} must be {_what(node.key)}", node.key.hint)
        out = {name: self.node(node.value, v, (*key, name)) for name, v in value.items()}
        return node.convert(out) if node.convert else out

    def table(self, node: Table, value: dict, key: Key) -> dict:
        for name in value:
            if name not in node.fields:
                close = difflib.get_close_matches(name, node.fields, n=1, cutoff=0.6)
                # a key of a table below this one, written at this level (`packages` for [build])
                home = next((sub for sub, f in node.fields.items()
                             if isinstance(f, Table) and name in f.fields), None)
                what = f"table [{_dotted((*key, name))}]" if isinstance(value[name], dict) else f"key {name!r}"
                raise self.fail((*key, name), f"{_where(key)}unknown {what}",
                                (f"{name!r} belongs in the [{_dotted((*key, home))}] table; " if home else "")
                                + (f"did you mean {close[0]!r}? " if close and not home else "")
                                + f"known keys: {', '.join(sorted(node.fields))}")
        for name, sub in node.fields.items():
            if sub.required and name not in value:
                missing = f"[{_dotted((*key, name))}] table" if isinstance(sub, Table) else f"key {name!r}"
                raise self.fail(key, f"{_where(key)}missing {missing}")
        out = {name: self.node(node.fields[name], v, (*key, name)) for name, v in value.items()}
        for rule in node.rules:
            try:
                rule(out)
            except Invalid as bad:
                raise self.fail((*key, bad.key), f"{_name((*key, bad.key))} {bad.message}", bad.hint) from None
        return out


def _what(node: Value) -> str:
    return node.what() if callable(node.what) else node.what


def _dotted(key: Key) -> str:
    return ".".join(f"#{k + 1}" if isinstance(k, int) else k for k in key).replace(".#", " #")


def _where(table: Key) -> str:
    """ "[abi] ", "[target.rpi0] ", "[project #2] ": the table a key is in ("" at the top)."""
    return f"[{_dotted(table)}] " if table else ""


def _name(key: Key) -> str:
    if key and isinstance(key[-1], int):  # a table of an array: [project #2]
        return f"[{_dotted(key)}]"
    return f"{_where(key[:-1])}{key[-1]!r}" if key else "the file"


# --- where a key is written -------------------------------------------------------------------------

_BARE = r"""[A-Za-z0-9_-]+|"[^"]*"|'[^']*'"""
_HEADER = re.compile(rf"\s*(\[\[?)\s*((?:{_BARE})(?:\s*\.\s*(?:{_BARE}))*)\s*\]")
_KEY = re.compile(rf"\s*((?:{_BARE})(?:\s*\.\s*(?:{_BARE}))*)\s*=")
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'[^\']*\'')


def _parts(dotted: str) -> tuple[str, ...]:
    return tuple(a or b or c for a, b, c in re.findall(r""""([^"]*)"|'([^']*)'|([A-Za-z0-9_-]+)""", dotted))


def _lines(source: str) -> dict[Key, int]:
    """The line of each table header and `key =` of a TOML text, by key path ([[x]] tables are
    numbered as they come). Lines inside a multi-line array or inline table are skipped: brackets
    are counted outside strings and comments."""
    where: dict[Key, int] = {}
    table: Key = ()
    seen: dict[Key, int] = {}
    depth = 0
    for n, line in enumerate(source.splitlines(), 1):
        if depth == 0 and (m := _HEADER.match(line)):
            table = _parts(m[2])
            if m[1] == "[[":
                seen[table] = seen.get(table, -1) + 1
                table = (*table, seen[table])
            where.setdefault(table, n)
            continue
        if depth == 0 and (m := _KEY.match(line)):
            where.setdefault((*table, *_parts(m[1])), n)
        bare = _STRINGS.sub('""', line).split("#")[0]
        depth = max(0, depth + bare.count("[") + bare.count("{") - bare.count("]") - bare.count("}"))
    return where


def line_of(source: str, key: Key) -> str:
    """ " (line N)" of the key, or of the nearest enclosing key or table written in the file (a key
    inside an inline table points at that table's line); "" when nothing is."""
    where = _lines(source)
    for end in range(len(key), 0, -1):
        if key[:end] in where:
            return f" (line {where[key[:end]]})"
    return ""

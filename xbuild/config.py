"""The project's own xbuild.toml: [build] settings and [target.<name>] overrides of the same keys."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from xbuild.errors import ConfigError

FILENAME = "xbuild.toml"
# The longest time limit a build may ask for. Beyond it a value is a mistake, and a huge one
# (9223372036854775807) overflows the clocks that enforce it.
MAX_TIMEOUT = 7 * 24 * 3600
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True)
class ProjectConfig:
    recipe: str | None = None
    steps: tuple[str, ...] | None = None      # replace the recipe's steps
    artifacts: tuple[str, ...] = ()           # globs in the build tree, collected besides the install tree
    packages: tuple[str, ...] = ()            # target-arch -dev packages (multiarch in cross mode)
    env: tuple[tuple[str, str], ...] = ()     # set in the build container
    pass_env: tuple[str, ...] = ()            # names copied from the caller's environment, and only these
    timeout: int | None = None                # seconds
    os: str | None = None                     # the board's OS release (--os overrides it)
    static: bool | None = None                # fully static executables (--static overrides it)

    def to_json(self) -> dict:
        return {"recipe": self.recipe, "steps": list(self.steps) if self.steps is not None else None,
                "artifacts": list(self.artifacts), "packages": list(self.packages),
                "env": dict(self.env), "pass_env": list(self.pass_env), "timeout": self.timeout,
                "os": self.os, "static": self.static}


_KEYS = {f.name for f in fields(ProjectConfig)}


def _line_of(text: str, key: str, table: tuple[str, ...] = ()) -> str:
    """ " (line N)" of `key = ...` (or of a `[key]` header), looked for first in the table `table`
    (e.g. ("target", "rpi0")), so that a key set in both [build] and [target.X] is found where it
    is wrong; "" when it cannot be found (an inline table, a dotted key)."""
    lines = text.splitlines()
    start = 0
    if table:
        header = r"\s*\.\s*".join(rf"""["']?{re.escape(t)}["']?""" for t in table)
        start = next((n for n, line in enumerate(lines) if re.match(rf"\s*\[\s*{header}\s*\]", line)), 0)
    for first in (start, 0):
        for n, line in enumerate(lines[first:], first + 1):
            if re.match(rf"""\s*["']?{re.escape(key)}["']?\s*=""", line) or \
                    re.match(rf"\s*\[\s*{re.escape(key)}\s*[\].]", line):
                return f" (line {n})"
    return ""


def _check_strings(value, key, where, text, table=()) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: {key!r}{_line_of(text, key, table)} must be a list of strings",
                          hint=f'for example: {key} = ["..."]')
    return tuple(value)


def _settings(table, where: str, text: str, path: tuple[str, ...]) -> dict:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}{_line_of(text, path[-1], path[:-1])} must be a table",
                          hint="xbuild.toml has [build] and [target.<name>] tables")
    out: dict = {}
    for key, value in table.items():
        line = _line_of(text, key, path)
        if key not in _KEYS:
            raise ConfigError(f"{where}: unknown key {key!r}{line}",
                              hint=f"known keys: {', '.join(sorted(_KEYS))}")
        if key in ("recipe", "os"):
            if not isinstance(value, str):
                raise ConfigError(f"{where}: {key!r}{line} must be a string")
            out[key] = value
        elif key == "static":
            if not isinstance(value, bool):
                raise ConfigError(f"{where}: 'static'{line} must be true or false")
            out[key] = value
        elif key == "timeout":
            # bool is an int in Python: `timeout = true` must not become a 1-second limit
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"{where}: 'timeout'{line} must be a positive "
                                  "number of seconds")
            if value > MAX_TIMEOUT:
                raise ConfigError(f"{where}: 'timeout'{line} is {value} seconds, more than the "
                                  f"limit of {MAX_TIMEOUT} (7 days)",
                                  hint=f"give a number of seconds from 1 to {MAX_TIMEOUT}")
            out[key] = value
        elif key == "env":
            if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
                raise ConfigError(f"{where}: 'env'{line} must be a table of strings",
                                  hint='for example: env = { FOO = "1" }')
            if bad := [k for k in value if not _ENV_NAME.match(k)]:
                raise ConfigError(f"{where}: 'env'{line}: {bad[0]!r} is not a "
                                  "variable name")
            out[key] = tuple(sorted(value.items()))
        else:
            out[key] = _check_strings(value, key, where, text, path)
            if key == "steps" and not value:
                raise ConfigError(f"{where}: 'steps'{line} is empty",
                                  hint="list at least one shell command, or remove the key")
            if key == "pass_env" and (bad := [v for v in value if not _ENV_NAME.match(v)]):
                raise ConfigError(f"{where}: 'pass_env'{line}: {bad[0]!r} is not "
                                  "a variable name")
    return out


@dataclass(frozen=True)
class ProjectFile:
    base: dict = field(default_factory=dict)
    per_target: dict = field(default_factory=dict)

    def for_target(self, names: tuple[str, ...]) -> ProjectConfig:
        """[build], then [target.X] for the first of the target's names (name, aliases) present."""
        settings = dict(self.base)
        for name in names:
            if name in self.per_target:
                settings.update(self.per_target[name])
                break
        return replace(ProjectConfig(), **settings)


def load(project: Path) -> ProjectFile:
    path = project / FILENAME
    if not path.is_file():
        return ProjectFile()
    text = path.read_text(errors="replace")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}", hint="fix the syntax at the line shown") from None
    unknown = sorted(set(data) - {"build", "target"})
    if unknown:
        raise ConfigError(f"{path}: unknown table [{unknown[0]}]{_line_of(text, unknown[0])}",
                          hint="xbuild.toml has [build] and [target.<name>] tables")
    base = _settings(data.get("build", {}), f"{path} [build]", text, ("build",))
    tables = data.get("target", {})
    if not isinstance(tables, dict):  # `target = 3`
        raise ConfigError(f"{path}: 'target'{_line_of(text, 'target')} must be [target.<name>] tables",
                          hint='for example: [target.rpi0] steps = ["make STATIC=1"]')
    per_target = {name: _settings(table, f"{path} [target.{name}]", text, ("target", name))
                  for name, table in tables.items()}
    return ProjectFile(base, per_target)

"""The project's own xbuild.toml: [build] settings and [target.<name>] overrides of the same keys."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from xbuild.errors import ConfigError

FILENAME = "xbuild.toml"
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

    def to_json(self) -> dict:
        return {"recipe": self.recipe, "steps": list(self.steps) if self.steps is not None else None,
                "artifacts": list(self.artifacts), "packages": list(self.packages),
                "env": dict(self.env), "pass_env": list(self.pass_env), "timeout": self.timeout}


_KEYS = {f.name for f in fields(ProjectConfig)}


def _line_of(text: str, key: str) -> str:
    for n, line in enumerate(text.splitlines(), 1):
        if re.match(rf"\s*{re.escape(key)}\s*=", line):
            return f" (line {n})"
    return ""


def _check_strings(value, key, where, text) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: {key!r}{_line_of(text, key)} must be a list of strings",
                          hint=f'for example: {key} = ["..."]')
    return tuple(value)


def _settings(table: dict, where: str, text: str) -> dict:
    out: dict = {}
    for key, value in table.items():
        if key not in _KEYS:
            raise ConfigError(f"{where}: unknown key {key!r}{_line_of(text, key)}",
                              hint=f"known keys: {', '.join(sorted(_KEYS))}")
        if key == "recipe":
            if not isinstance(value, str):
                raise ConfigError(f"{where}: 'recipe'{_line_of(text, key)} must be a string")
            out[key] = value
        elif key == "timeout":
            if not isinstance(value, int) or value <= 0:
                raise ConfigError(f"{where}: 'timeout'{_line_of(text, key)} must be a positive "
                                  "number of seconds")
            out[key] = value
        elif key == "env":
            if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
                raise ConfigError(f"{where}: 'env'{_line_of(text, key)} must be a table of strings",
                                  hint='for example: env = { FOO = "1" }')
            out[key] = tuple(sorted(value.items()))
        else:
            out[key] = _check_strings(value, key, where, text)
            if key == "pass_env" and (bad := [v for v in value if not _ENV_NAME.match(v)]):
                raise ConfigError(f"{where}: 'pass_env'{_line_of(text, key)}: {bad[0]!r} is not "
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
    base = _settings(data.get("build", {}), f"{path} [build]", text)
    per_target = {name: _settings(table, f"{path} [target.{name}]", text)
                  for name, table in data.get("target", {}).items()}
    return ProjectFile(base, per_target)

"""The project's own xbuild.toml: [build] settings and [target.<name>] overrides of the same keys."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from xbuild import schema

FILENAME = "xbuild.toml"
# The longest time limit a build may ask for. Beyond it a value is a mistake, and a huge one
# (9223372036854775807) overflows the clocks that enforce it.
MAX_TIMEOUT = 7 * 24 * 3600
# A Debian package name, optionally with an architecture (libssl-dev:armhf).
PACKAGE = r"[a-z0-9][a-z0-9+.\-]+(:[a-z0-9]+)?"


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
    static: bool | None = None                # fully static executables (None: not set, --static decides)

    def to_json(self) -> dict:
        return {"recipe": self.recipe, "steps": list(self.steps) if self.steps is not None else None,
                "artifacts": list(self.artifacts), "packages": list(self.packages),
                "env": dict(self.env), "pass_env": list(self.pass_env), "timeout": self.timeout,
                "os": self.os, "static": self.static}


def _known_recipe(name) -> bool:
    from xbuild import recipes  # the recipes' data files are read only when a project names one
    return name in recipes.all_recipes()


def _recipe_names() -> str:
    from xbuild import recipes
    return f"a recipe name ({', '.join(recipes.all_recipes())})"


_ENV_VAR = schema.text("a variable name (letters, digits, _; not starting with a digit)", schema.ENV_NAME)
# One line per key of [build] and [target.<name>]: what each must be, and what it becomes.
SETTINGS = schema.Table({
    "recipe": schema.Value(_recipe_names, _known_recipe),
    "steps": schema.List(schema.text("a shell command (a non-empty string)"), empty=False,
                         hint='list at least one shell command, e.g. steps = ["make"], or remove the key'),
    "artifacts": schema.List(schema.text("a glob in the build tree (a non-empty string)")),
    "packages": schema.List(schema.text('a Debian package name such as "zlib1g-dev"', PACKAGE)),
    "env": schema.Names(_ENV_VAR, schema.ANY_TEXT, convert=lambda d: tuple(sorted(d.items()))),
    "pass_env": schema.List(_ENV_VAR),
    "timeout": schema.integer(1, MAX_TIMEOUT, f"a number of seconds from 1 to {MAX_TIMEOUT} (7 days)"),
    "os": schema.text("an OS release name such as bullseye", r"[A-Za-z][A-Za-z0-9.-]*"),
    "static": schema.BOOL,
})
PROJECT = schema.Table({
    "build": SETTINGS,
    "target": schema.Names(schema.text("a board name (letters, digits, . _ + -)", schema.NAME), SETTINGS),
})


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
    data = schema.load(path, PROJECT, hint="see the xbuild.toml section of the README")
    return ProjectFile(data.get("build", {}), data.get("target", {}))

"""Build recipes: recipes/*.toml, each with detection rules and the shell steps that build and
install into the staging prefix. Detection looks at the project's top-level files only."""

from __future__ import annotations

import functools
import shlex
from dataclasses import dataclass
from pathlib import Path

from xbuild import schema
from xbuild.datafiles import data_files
from xbuild.errors import ConfigError, NoRecipe
from xbuild.host import safefs
from xbuild.schema import Invalid

HEAD = 1 << 16  # how much of a file detection reads: markers are in a file's header
# Options appended to the recipe's own steps: each recipe step that takes them says @<key>@
# (xbuild.toml's cmake_args... : config.py).
BUILD_ARGS = ("cmake_args", "configure_args", "meson_args", "make_args", "go_args", "go_packages", "cargo_args")
# What a recipe builds, and so which steps run it (pipeline/build.py's STEPS).
KINDS = ("steps", "image", "wheel", "go", "cargo")


@dataclass(frozen=True)
class Rule:
    """Matches when any of `files` exists, or when `file` exists and contains / lacks a marker."""
    files: tuple[str, ...] = ()
    file: str | None = None
    contains: str | None = None
    lacks: str | None = None

    def matches(self, project: Path) -> bool:
        return self.found(project) is not None

    def found(self, project: Path) -> str | None:
        """The file that makes the rule match, else None. Read as data: a marker is looked for
        in the first 64 KiB of a regular file only (a link may lead out of the project, a FIFO
        would block, a sparse file may claim gigabytes); a link counts as present, for the build
        container to follow inside the project's copy."""
        if present := next((f for f in self.files if _present(project / f)), None):
            return present
        if self.file is None or not _present(project / self.file):
            return None
        try:
            head = safefs.read_prefix(project / self.file, HEAD).decode("utf-8", "replace")
        except OSError:  # a link, a FIFO, a directory: no marker to read
            head = ""
        if self.contains is not None:
            return self.file if self.contains in head else None
        return self.file if self.lacks is None or self.lacks not in head else None

    def looked_for(self) -> list[str]:
        return list(self.files) + ([self.file] if self.file else [])


def _present(path: Path) -> bool:
    return safefs.is_regular(path) or path.is_symlink()


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    steps: tuple[str, ...]
    detect: tuple[Rule, ...] = ()
    order: int = 100
    collect_new_elf: bool = False  # no install step: collect the ELF files the build created
    kind: str = "steps"            # steps: shell steps in the builder; image: a Dockerfile build;
                                   # wheel: a Python package's wheel (pipeline/wheel.py);
                                   # go: a Go module's programs (pipeline/gobuild.py)
                                   # cargo: a Rust project's binaries (pipeline/rust.py)
    # What its steps need in the builder, as xbuild.toml's packages (the target's) and tools (the
    # build machine's); {python} is the release's CPython version (3.11).
    packages: tuple[str, ...] = ()
    tools: tuple[str, ...] = ()

    def needs(self, python: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(packages, tools) for a release whose CPython is `python`."""
        return tuple(p.format(python=python) for p in self.packages), tuple(t.format(python=python) for t in self.tools)

    def matches(self, project: Path) -> bool:
        return self.found(project) is not None

    def found(self, project: Path) -> str | None:
        """The project's file that selects this recipe, else None."""
        return next(filter(None, (rule.found(project) for rule in self.detect)), None)

    def takes(self) -> list[str]:
        """The project options (xbuild.toml's cmake_args, make_args...) its steps append."""
        return [key for key in BUILD_ARGS if any(f"@{key}@" in step for step in self.steps)]

    def fill(self, args: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
        """The steps with each @<key>@ replaced by the project's options for it, shell-quoted."""
        steps = []
        for step in self.steps:
            for key in BUILD_ARGS:
                step = step.replace(f" @{key}@", "".join(" " + shlex.quote(a) for a in args.get(key, ())))
            steps.append(step)
        return tuple(steps)


def _rule_shape(rule: dict) -> None:
    """A rule looks for `files`, or for one `file` (optionally with one marker in it)."""
    if not rule.get("files") and "file" not in rule:
        raise Invalid("files", "or 'file' must be given: a rule needs something to look for")
    if "contains" in rule and "lacks" in rule:
        raise Invalid("lacks", "cannot be given with 'contains' in the same rule: write two rules")
    for marker in ("contains", "lacks"):
        if marker in rule and "file" not in rule:
            raise Invalid(marker, "needs 'file': the file to look in")


def _steps_or_image(recipe: dict) -> None:
    if recipe.get("kind", "steps") == "steps" and not recipe["steps"]:
        raise Invalid("steps", "is empty: a recipe of kind \"steps\" runs at least one", hint='steps = ["make"]')


_FILE = schema.text("a file name in the project's top folder", r"[^/\\]+")
_STEP = schema.text("a shell command (a non-empty string)")
RULE = schema.Table({
    "files": schema.List(_FILE),
    "file": _FILE,
    "contains": schema.text(),
    "lacks": schema.text(),
}, rules=(_rule_shape,))
RECIPE = schema.Table({
    "description": schema.text(required=True),
    "steps": schema.List(_STEP, required=True),
    "detect": schema.Tables(RULE),
    "order": schema.integer(0, 1000, "an order from 0 (tried first) to 1000"),
    "collect_new_elf": schema.BOOL,
    "kind": schema.one_of(KINDS),
    "packages": schema.List(schema.text("a Debian package name, {python} for the release's CPython",
                                        r"[a-z0-9{}][a-z0-9+.{}\-]+")),
    "tools": schema.List(schema.text("a Debian package name, {python} for the release's CPython",
                                     r"[a-z0-9{}][a-z0-9+.{}\-]+")),
}, rules=(_steps_or_image,))


def _load(path: Path) -> Recipe:
    data = schema.load(path, RECIPE, hint="recipes/make.toml shows every key of a recipe")
    rules = tuple(Rule(**rule) for rule in data.pop("detect", ()))
    return Recipe(name=path.stem, detect=rules, **data)


@functools.cache
def all_recipes() -> dict[str, Recipe]:
    recipes = sorted(map(_load, data_files("recipes")), key=lambda r: (r.order, r.name))
    return {r.name: r for r in recipes}


def get(name: str) -> Recipe:
    try:
        return all_recipes()[name]
    except KeyError:
        raise ConfigError(f"unknown recipe {name!r}",
                          hint=f"known recipes: {', '.join(all_recipes())}") from None


def detect(project: Path) -> Recipe:
    for recipe in all_recipes().values():
        if recipe.matches(project):
            return recipe
    looked = sorted({f for r in all_recipes().values() for rule in r.detect for f in rule.looked_for()})
    raise NoRecipe(f"no build recipe detected in {project}: looked for {', '.join(looked)}",
                   hint='add an xbuild.toml with [build] recipe = "..." or steps = ["..."]')


def choice(project: Path, chosen: Recipe) -> str | None:
    """When the project also holds another build system's files, which recipe was detected, why,
    and how to pick another; None when the detection had nothing to choose between."""
    others = [(r.name, f) for r in all_recipes().values() if r is not chosen and (f := r.found(project))]
    if not others:
        return None
    also = ", ".join(f"{name} ({f})" for name, f in others)
    return (f"building with the {chosen.name} recipe ({chosen.found(project)}), the first in "
            f"xbuild's order ({', '.join(all_recipes())}); also found: {also}. To use another, "
            f'set [build] recipe = "{others[0][0]}" in xbuild.toml')

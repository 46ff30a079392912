"""Build recipes: recipes/*.toml, each with detection rules and the shell steps that build and
install into the staging prefix. Detection looks at the project's top-level files only."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from xbuild.datafiles import build, data_files, read_toml
from xbuild.errors import ConfigError, NoRecipe


@dataclass(frozen=True)
class Rule:
    """Matches when any of `files` exists, or when `file` exists and contains / lacks a marker."""
    files: tuple[str, ...] = ()
    file: str | None = None
    contains: str | None = None
    lacks: str | None = None

    def matches(self, project: Path) -> bool:
        if any((project / f).is_file() for f in self.files):
            return True
        if self.file is None or not (project / self.file).is_file():
            return False
        head = (project / self.file).read_bytes()[:65536].decode("utf-8", "replace")
        if self.contains is not None:
            return self.contains in head
        return self.lacks is None or self.lacks not in head

    def looked_for(self) -> list[str]:
        return list(self.files) + ([self.file] if self.file else [])


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    steps: tuple[str, ...]
    detect: tuple[Rule, ...] = ()
    order: int = 100
    collect_new_elf: bool = False  # no install step: collect the ELF files the build created
    kind: str = "steps"            # steps: shell steps in the builder; image: a Dockerfile build

    def matches(self, project: Path) -> bool:
        return any(rule.matches(project) for rule in self.detect)


def _load(path: Path) -> Recipe:
    data = read_toml(path)
    rules = tuple(build(Rule, r, f"{path} detect") for r in data.pop("detect", []))
    return build(Recipe, {"name": path.stem, "detect": rules, **data}, str(path))


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

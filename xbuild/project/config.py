"""The project's own xbuild.toml: [build] settings and [target.<name>] overrides of the same keys."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from xbuild import schema
from xbuild.project import recipes
from xbuild.project.recipes import BUILD_ARGS
from xbuild.request import MAX_TIMEOUT

FILENAME = "xbuild.toml"


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
    tools: tuple[str, ...] = ()               # programs the build runs: build-machine packages
    name: str | None = None                   # artifact, package and cache name (default: the folder's)
    version: str | None = None                # the .deb's version (default: git describe, else 0~epoch)
    deb: bool | None = None                   # also write a .deb (None: not set, --deb decides)
    cmake_args: tuple[str, ...] = ()
    configure_args: tuple[str, ...] = ()
    meson_args: tuple[str, ...] = ()
    make_args: tuple[str, ...] = ()
    go_args: tuple[str, ...] = ()             # `go build`'s options (-tags, -ldflags)
    go_packages: tuple[str, ...] = ()         # the packages `go build` builds (default ./...)
    cargo_args: tuple[str, ...] = ()          # cargo build's options (--features, --bin)
    # Where each `artifacts` glob's files land in the artifact (None: by kind: bin/, lib/, share/).
    dests: tuple[str | None, ...] = ()

    def __post_init__(self):
        # `artifacts` entries are globs or { glob = "...", dest = "dir" }: split into two lists.
        entries = self.artifacts
        if any(isinstance(a, dict) for a in entries) or len(self.dests) != len(entries):
            object.__setattr__(self, "artifacts", tuple(a["glob"] if isinstance(a, dict) else a
                                                        for a in entries))
            object.__setattr__(self, "dests", tuple(a.get("dest") if isinstance(a, dict) else None
                                                    for a in entries))

    def build_args(self) -> dict[str, tuple[str, ...]]:
        return {key: getattr(self, key) for key in BUILD_ARGS}

    def to_json(self) -> dict:
        return {"recipe": self.recipe, "steps": list(self.steps) if self.steps is not None else None,
                "artifacts": list(self.artifacts), "dests": list(self.dests),
                "packages": list(self.packages), "tools": list(self.tools),
                "env": dict(self.env), "pass_env": list(self.pass_env), "timeout": self.timeout,
                "os": self.os, "static": self.static, "name": self.name, "version": self.version,
                "deb": self.deb, **{k: list(v) for k, v in self.build_args().items()}}


def _known_recipe(name) -> bool:
    return name in recipes.all_recipes()  # the recipes' data files are read only when a project names one


def _recipe_names() -> str:
    return f"a recipe name ({', '.join(recipes.all_recipes())})"


def _artifact(value) -> bool:
    """A glob, or a table of a glob and the directory (relative to the prefix) its files go to."""
    if isinstance(value, str):
        return value.strip() != ""
    return (isinstance(value, dict) and set(value) <= {"glob", "dest"}
            and isinstance(value.get("glob"), str) and value["glob"].strip() != ""
            and isinstance(value.get("dest", "x"), str) and value.get("dest", "x").strip("/") != ""
            and ".." not in value.get("dest", "").split("/"))


_ENV_VAR = schema.text("a variable name (letters, digits, _; not starting with a digit)", schema.ENV_NAME)
# The key that signs a build's provenance, on the host (pipeline/attestation.py): a build that
# could read it could sign anything as this builder, so no project may ask for it.
SIGNING_KEY = "XBUILD_SIGNING_KEY"
_PASSED = schema.Value(f"{_ENV_VAR.what} other than {SIGNING_KEY}, the key that signs builds (it never "
                       "enters a build container)", lambda v: _ENV_VAR.ok(v) and v != SIGNING_KEY)
# One line per key of [build] and [target.<name>]: what each must be, and what it becomes.
SETTINGS = schema.Table({
    "recipe": schema.Value(_recipe_names, _known_recipe),
    "steps": schema.List(schema.text("a shell command (a non-empty string)"), empty=False,
                         hint='list at least one shell command, e.g. steps = ["make"], or remove the key'),
    "artifacts": schema.List(schema.Value('a glob in the build tree, or { glob = "...", dest = "dir" }',
                                          _artifact)),
    "packages": schema.List(schema.text('a Debian package name such as "zlib1g-dev"', schema.DEBIAN_PACKAGE)),
    "tools": schema.List(schema.text('a Debian package name such as "xsltproc"', schema.DEBIAN_PACKAGE)),
    "name": schema.text("a name (letters, digits, . _ + -)", schema.NAME),
    "version": schema.text("a version such as \"1.2.0\"", r"[0-9][A-Za-z0-9.+~:-]*"),
    "deb": schema.BOOL,
    **{key: schema.List(schema.text("an option (a non-empty string)")) for key in BUILD_ARGS},
    "env": schema.Names(_ENV_VAR, schema.ANY_TEXT, convert=lambda d: tuple(sorted(d.items()))),
    "pass_env": schema.List(_PASSED),
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
    """The project's xbuild.toml, read as data: a regular file (not a link, which could name a
    file of the user's or the worker's, nor a FIFO, which would block), of bounded size."""
    from xbuild.host.safefs import read_project_file
    path = project / FILENAME
    if not os.path.lexists(path):
        return ProjectFile()
    data = schema.load(path, PROJECT, hint="see docs/xbuild-toml.md",
                       raw=read_project_file(path, "the project's settings file"))
    return ProjectFile(data.get("build", {}), data.get("target", {}))

"""BuildSpec: everything that decides one build, resolved from the command line (or the API, or
the nightly schedule) plus the project's files. Frozen and serialisable."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from xbuild import toolchain
from xbuild.board import targets
from xbuild.board.targets import Target
from xbuild.containers.sandbox import Limits
from xbuild.errors import BadProjectPath, ConfigError
from xbuild.host import safefs
from xbuild.project import config, gitmeta, projectmeta, pypi, recipes, sources
from xbuild.project.config import ProjectConfig
from xbuild.project.recipes import Recipe
from xbuild.request import BuildRequest, Mode
from xbuild.toolchain import Toolchain

OUT_DIRNAME = "xbuild-out"
PYPI = "pypi:"  # pypi:NAME[==VERSION]: the project is that sdist from the package index
# 1980-01-01: when a project is not a git checkout and SOURCE_DATE_EPOCH is unset, a fixed epoch
# keeps two builds of the same sources identical.
DEFAULT_EPOCH = 315532800


@dataclass(frozen=True)
class Variation:
    """What a reproducible build must not depend on; `xbuild verify` changes it between builds."""
    src_dir: str = "/xbuild/src"
    umask: str = "022"
    env: tuple[tuple[str, str], ...] = ()   # e.g. TZ, LC_ALL


@dataclass(frozen=True)
class BuildSpec:
    project: Path
    name: str
    target: Target
    mode: Mode
    recipe: Recipe
    config: ProjectConfig
    out: Path
    jobs: int
    limits: Limits
    source_date_epoch: int
    variation: Variation = Variation()
    static: bool = False   # --static: fully static executables (zig + musl)
    deb: bool = False      # also write a .deb
    keep_debug: bool = False  # --keep-debug: leave zig's runtime debug information in (zig.py)
    version: str = ""      # xbuild.toml's, git describe, the build system's, the folder's, 0~epoch
    version_from: str = ""  # where the version came from (said, and in the manifest)
    notes: tuple[str, ...] = ()  # said before the build (a .git that was not read); not in the key
    origin: dict | None = None  # pypi:NAME: the sdist the project was unpacked from (its hash)
    asked_packages: tuple[str, ...] = ()  # --package: -dev packages besides xbuild.toml's

    @property
    def toolchain(self) -> Toolchain:
        """The toolchain the board, its release, the mode and --static pick (toolchain.pick)."""
        return toolchain.pick(self.target, self.mode, self.static)

    @property
    def steps(self) -> tuple[str, ...]:
        if self.config.steps is not None:
            return self.config.steps
        return self.recipe.fill(self.config.build_args())

    @property
    def packages(self) -> tuple[str, ...]:
        """The target's -dev packages in the builder: the recipe's, xbuild.toml's, the request's."""
        return self.recipe.needs(self.target.selected.python)[0] + self.config.packages + self.asked_packages

    @property
    def tools(self) -> tuple[str, ...]:
        """The build machine's tools in the builder: the recipe's, then xbuild.toml's."""
        return self.recipe.needs(self.target.selected.python)[1] + self.config.tools

    def passed_env(self) -> dict[str, str]:
        """The caller's variables the project asks for by name (pass_env), those that are set
        (never the signing key: config.SIGNING_KEY)."""
        return {k: os.environ[k] for k in self.config.pass_env if k in os.environ}

    def options(self) -> dict:
        """The build options as recorded in the manifest (and part of the cache key)."""
        return {"target": self.target.name, "os": self.target.selected.name, "mode": self.mode.value,
                "static": self.static, "toolchain": self.toolchain.summary(),
                "recipe": self.recipe.name, "steps": list(self.steps), "config": self.config.to_json(),
                "jobs": self.jobs, "source_date_epoch": self.source_date_epoch, "deb": self.deb,
                "keep_debug": self.keep_debug, "version_from": self.version_from,
                "version": self.version,
                # --package: recorded for a rebuild (verify --against); absent when none, as before
                **({"packages": list(self.asked_packages)} if self.asked_packages else {})}


def _out_name(target: Target, static: bool = False) -> str:
    """rpi3 for the default release, rpi3-bullseye for another, rpi0-static for --static: builds
    for two releases of a board (or static and not) must not replace each other's output."""
    name = target.name if target.selected.name == target.default_os else \
        f"{target.name}-{target.selected.name}"
    return f"{name}-static" if static else name


def _name_version(path: Path, cfg: ProjectConfig, git: gitmeta.Meta, epoch: int,
                  recipe: Recipe) -> tuple[str, str, str]:
    """(name, version, where the version came from). The name: xbuild.toml's, else the folder's
    (`i2c-tools-4.3` -> i2c-tools): the folder is the name the user and the store know the
    project by, where a build system's may be another (rtl-sdr's CMake says rtlsdr). The
    version: xbuild.toml's; else `git describe --tags` (v1.2-3-gabc -> 1.2-3-gabc); else what
    the build system declares (projectmeta.py); else the folder's; else 0~<epoch>."""
    split = projectmeta.folder(path.name)
    name = cfg.name or (split[0] if split else path.name)
    if cfg.version:
        return name, cfg.version, config.FILENAME
    if git.version:
        return name, git.version, "git describe --tags"
    if found := projectmeta.declared(path, recipe.name):
        return name, found.version, found.source
    if split:
        return name, split[1], f"the folder name {path.name}"
    return name, f"0~{epoch}", "the default (none declared; xbuild.toml's version sets one)"


def _check_args(path: Path, cfg: ProjectConfig, recipe: Recipe) -> None:
    """cmake_args & co. go where the recipe's steps take them: nowhere else."""
    for key, args in cfg.build_args().items():
        if not args:
            continue
        if cfg.steps is not None:
            raise ConfigError(f"{path / config.FILENAME}: {key} are added to the recipe's own steps, "
                              "and this project lists its own steps",
                              hint=f"write the options into your steps, or remove {key}")
        if key not in recipe.takes():
            takes = [r.name for r in recipes.all_recipes().values() if key in r.takes()]
            raise ConfigError(f"{path / config.FILENAME}: {key} does not apply to the "
                              f"{recipe.name} recipe", hint=f"{key} applies to: {', '.join(takes)}")


def _epoch(git: gitmeta.Meta) -> int:
    if os.environ.get("SOURCE_DATE_EPOCH", "").isdigit():
        return int(os.environ["SOURCE_DATE_EPOCH"])
    return git.epoch if git.epoch is not None else DEFAULT_EPOCH


def check(request: BuildRequest) -> BuildRequest:
    """What can be checked of a request before its project is read (the API does, before it
    queues a build): the board, its OS release, a toolchain for the mode and --static. The
    request comes back with the board's own name and the release's (for an alias, a case)."""
    board = targets.get(request.target)
    release = board.with_os(request.os).selected.name if request.os else None
    if request.static or request.mode is not Mode.CROSS:  # a board the mode or --static cannot serve
        toolchain.pick(board.with_os(release), request.mode, bool(request.static))
    return dataclasses.replace(request, target=board.name, os=release)


def resolve(project: str | Path, request: BuildRequest, *, out: str | Path | None = None) -> BuildSpec:
    """Where a request meets a project. os: the request's; else xbuild.toml's ([target.X] over
    [build]); else the board's default. static and deb: the request's (--static, XBUILD_STATIC);
    else xbuild.toml's; else False. out: where the output goes [default: under the project]."""
    target = targets.get(request.target)  # first: an unknown target is the likeliest typo
    origin, given = None, out is not None
    if isinstance(project, str) and project.startswith(PYPI):
        origin = pypi.fetch(project.removeprefix(PYPI))
        project = origin.project
        # Not beside the sdist (xbuild's cache): where a project's output goes, under the caller's directory
        out = out or Path.cwd() / OUT_DIRNAME / origin.label  # then /<board>
    path = Path(project).expanduser()
    if not path.exists():
        raise BadProjectPath(f"project path {str(project)!r} does not exist",
                             hint="give the directory that holds the project's Makefile, "
                                  "CMakeLists.txt, configure or xbuild.toml")
    if not path.is_dir():
        raise BadProjectPath(f"project path {str(project)!r} is not a directory",
                             hint="give the project's directory, not a file in it")
    path = path.resolve()
    # The size limit before anything reads the project's content (xbuild.toml, the recipe's markers),
    # and the output path before anything is written: neither through a link the project placed.
    out_path = safefs.physical(Path(out) if out else path / OUT_DIRNAME, path)
    sources.check_size(path, sources.excluder(path, out_path, OUT_DIRNAME))
    project_file = config.load(path)
    known = {n for t in targets.all_targets().values() for n in (t.name, *t.aliases)}
    if unknown := sorted(set(project_file.per_target) - known):
        raise ConfigError(f"{path / config.FILENAME}: [target.{unknown[0]}] is not a board",
                          hint="`xbuild targets` lists the boards and their aliases")
    cfg = project_file.for_target((target.name, *target.aliases))
    target = target.with_os(request.os or cfg.os)
    static = bool(request.static if request.static is not None else cfg.static)
    toolchain.pick(target, request.mode, static)  # a board without --static fails here, before any work
    chose = None  # said when detection chose between build systems
    if cfg.recipe:
        recipe = recipes.get(cfg.recipe)
    elif cfg.steps is not None and not any(r.matches(path) for r in recipes.all_recipes().values()):
        recipe = recipes.get("script")
    else:
        recipe = recipes.detect(path)
        chose = recipes.choice(path, recipe)
    if recipe.name == "script" and cfg.steps is None and not (path / "xbuild.sh").is_file():
        raise ConfigError(f"{path / config.FILENAME}: the script recipe needs steps",
                          hint='add [build] steps = ["make all", "..."] or an xbuild.sh')
    for pattern in cfg.artifacts:
        if pattern.startswith("/") or ".." in Path(pattern).parts:
            raise ConfigError(f"{path / config.FILENAME}: artifact pattern {pattern!r} leaves the "
                              "project tree", hint="artifact globs are relative to the project root")
    _check_args(path, cfg, recipe)
    git = gitmeta.read(path)  # never by running git on the project's own .git: see gitmeta.py
    epoch = _epoch(git)
    make_deb = bool(cfg.deb if request.deb is None else request.deb)
    name, version, version_from = _name_version(path, cfg, git, epoch, recipe)
    if make_deb:
        from xbuild.artifact.deb import check_version
        check_version(version, str(path / config.FILENAME) if cfg.version else f"the version from {version_from}")
    fetched = f"{origin.filename} from the package index, sha256 {origin.sha256}" if origin else None
    notes = tuple(filter(None, (git.note, chose, fetched)))
    return BuildSpec(
        project=path, name=name, target=target, mode=request.mode, recipe=recipe, config=cfg,
        out=out_path if given else safefs.physical(out_path / _out_name(target, static), path),
        jobs=request.jobs or os.cpu_count() or 2,
        limits=Limits(timeout=request.timeout or cfg.timeout or 3600, memory=request.memory),
        source_date_epoch=epoch, static=static, deb=make_deb, keep_debug=request.keep_debug, version=version,
        version_from=version_from, origin=origin.to_json() if origin else None,
        asked_packages=tuple(p for p in request.packages if p not in cfg.packages),
        notes=(*notes, f"{name} {version}: version from {version_from}"))

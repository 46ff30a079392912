"""One build request: every per-build choice (board, OS release, mode, static, deb, ...) declared
once, with its type, default, help, command-line flag and whether the API takes it. The click
options (commands/options.py), the API's submit fields (service/fields.py), the client, the job
record, nightly.toml's projects and the OpenAPI document are all made from these declarations;
spec.resolve(project, request) is where a request meets a project.

Nothing here knows a board or a project: what needs them is checked in spec.py."""

from __future__ import annotations

import dataclasses
import enum
import re
import types
import typing
from dataclasses import dataclass, field

from xbuild.errors import ConfigError
from xbuild.schema import DEBIAN_PACKAGE

# The longest time limit a build may ask for. Beyond it a value is a mistake, and a huge one
# (9223372036854775807) overflows the clocks that enforce it.
MAX_TIMEOUT = 7 * 24 * 3600


class Mode(enum.StrEnum):
    """Where a build runs: cross (the build machine's cross compiler), emulate (the board's root
    filesystem under qemu), hybrid (that root filesystem with the cross compiler copied in)."""
    CROSS = "cross"
    EMULATE = "emulate"
    HYBRID = "hybrid"

    @classmethod
    def _missing_(cls, value: object) -> Mode:
        # Mode("native") is a user's mistake (a flag, an API field, a file): exit 6, not a ValueError.
        raise ConfigError(f"unknown mode {value!r}", hint=_either(m.value for m in cls))

    @property
    def emulated(self) -> bool:
        """The build runs the board's root filesystem under qemu (emulate and hybrid)."""
        return self is not Mode.CROSS


def _either(words: typing.Iterable[str]) -> str:
    *most, last = words
    return f"{', '.join(most)} or {last}"


@dataclass(frozen=True)
class About:
    """What the consumers of a request's field need besides its type and default."""
    help: str                          # the command line's help
    flags: tuple[str, ...] = ()        # click's declarations; () : --name-with-dashes
    env: str = ""                      # the XBUILD_* variable click reads it from
    api: str = ""                      # the API's description; "" : the API does not take it
    metavar: str | None = None
    show_default: bool = False
    bounds: tuple[int, int | None] = (1, None)   # a whole number's least and greatest value


def _about(default: object = dataclasses.MISSING, **about) -> typing.Any:
    return field(default=default, metadata={"about": About(**about)})


@dataclass(frozen=True)
class BuildRequest:
    """What the caller asks of one build; None: the project's xbuild.toml decides, else the
    default spec.resolve gives."""
    target: str = _about(
        flags=("-t", "--target"), env="XBUILD_TARGET", help="Board to build for (`xbuild targets`).",
        api="the board (`xbuild targets` lists them); an unknown one is a 422")
    os: str | None = _about(
        None, flags=("--os",), metavar="RELEASE", env="XBUILD_OS",
        help="The board's OS release, e.g. bullseye [default: xbuild.toml's os, else the board's "
             "default; `xbuild targets` lists them].",
        api="the board's OS release, e.g. bullseye; one the board does not run is a 422 that lists "
            "its releases [default: the project's xbuild.toml os, else the board's default]")
    mode: Mode = _about(
        Mode.CROSS, env="XBUILD_MODE", show_default=True,
        help="cross: Debian cross toolchain at native speed; emulate: the whole build in a "
             "target-arch root under qemu; hybrid: that root, with the x86-64 cross compiler and "
             "linker in it (builds that run target code).",
        api="how the build runs")
    static: bool | None = _about(
        None, flags=("--static/--no-static",), env="XBUILD_STATIC",
        help="Fully static executables (zig + musl), needing nothing from the board's userland; "
             "ARM boards [default: xbuild.toml's static, else off].",
        api="fully static executables (zig + musl; ARM boards); a board that has none is a 422 "
            "[default (also for false): the project's xbuild.toml static]")
    deb: bool | None = _about(
        None, flags=("--deb/--no-deb",), env="XBUILD_DEB",
        help="Also write NAME_VERSION_ARCH.deb, installable on the board with apt [default: "
             "xbuild.toml's deb].",
        api="also a .deb [default (also for false): the project's xbuild.toml deb]")
    keep_debug: bool = _about(
        False, env="XBUILD_KEEP_DEBUG",
        help="Leave in the debug information of the runtime zig links into every program (Pi "
             "Zero/1, L4T, --static). Without it only a project built with -g keeps debug "
             "information, as with gcc.")
    jobs: int | None = _about(None, flags=("-j", "--jobs"), env="XBUILD_JOBS",
                              help="Parallel jobs [default: CPUs].")
    timeout: int | None = _about(None, env="XBUILD_TIMEOUT", bounds=(1, MAX_TIMEOUT),
                                 help="Kill the build after this many seconds [default: 3600, or xbuild.toml's].")
    packages: tuple[str, ...] = _about(
        (), flags=("--package",), metavar="PKG", env="XBUILD_PACKAGES",
        help="A board -dev package the build needs besides xbuild.toml's (repeat it; e.g. "
             "libyaml-dev for pypi:pyyaml, which has no xbuild.toml).",
        api="board -dev packages the build needs besides the project's xbuild.toml packages, "
            "separated by spaces (a list in a JSON body)")
    memory: str = _about("4g", env="XBUILD_MEMORY", show_default=True,
                         help="Memory limit of the build container.")
    no_cache: bool = _about(
        False, env="XBUILD_NO_CACHE",
        help="Build even when the store (XBUILD_STORE) has this build already (the build cache; "
             "the compiler cache is --no-compiler-cache).",
        api="build even when an identical build is cached")

    def __post_init__(self) -> None:
        # A caller that passes a plain string (click, a test) gets the Mode, or exit 6 for a wrong one.
        object.__setattr__(self, "mode", Mode(self.mode))
        # A list (JSON), or words (a form field, an XBUILD_PACKAGES): a tuple of checked names.
        packages = self.packages.split() if isinstance(self.packages, str) else tuple(self.packages)
        for name in packages:
            if not re.fullmatch(DEBIAN_PACKAGE, name):
                raise ConfigError(f"package {name!r} is not a Debian package name",
                                  hint='name a -dev package as apt does, such as "libyaml-dev"')
        object.__setattr__(self, "packages", tuple(packages))
        for name in ("jobs", "timeout"):  # the whole numbers: within their bounds, as click checks
            low, high = ABOUT[name].bounds
            value = getattr(self, name)
            if value is not None and not (low <= value and (high is None or value <= high)):
                raise ConfigError(f"{name} is {value}: it must be at least {low}"
                                  + (f" and at most {high}" if high is not None else ""))

    def to_json(self, names: typing.Iterable[str] | None = None) -> dict:
        """The request as JSON types (mode as its string), all fields or those named."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["mode"], data["packages"] = self.mode.value, list(self.packages)
        return data if names is None else {n: data[n] for n in names}

    @classmethod
    def from_json(cls, data: object, where: str = "a build request") -> BuildRequest:
        """The request from JSON: an unknown key, a missing target or a value of the wrong type is
        a ConfigError that says which, never a TypeError."""
        if not isinstance(data, dict):
            raise ConfigError(f"{where} must be a JSON object, not {_json_type(data)}")
        if unknown := sorted(set(data) - set(FIELDS)):
            raise ConfigError(f"{where}: unknown field {unknown[0]!r}", hint=f"the fields: {', '.join(FIELDS)}")
        if "target" not in data:
            raise ConfigError(f"{where}: no target", hint="`xbuild targets` lists the boards")
        for name, value in data.items():
            if not _fits(value, FIELDS[name]):
                raise ConfigError(f"{where}: {name!r} must be {_wanted(FIELDS[name])}, not {_json_type(value)}")
        return cls(**data)


def field_type(hint: object) -> tuple[type, bool]:
    """(the type, whether None is allowed) of a field's annotation: X or X | None."""
    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType) and type(None) in args:
        (inner,) = (a for a in args if a is not type(None))
        return inner, True
    if typing.get_origin(hint) is tuple:  # tuple[str, ...]: names, many
        return tuple, False
    assert isinstance(hint, type)
    return hint, False


def _fits(value: object, hint: object) -> bool:
    kind, optional = field_type(hint)
    if value is None:
        return optional
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is Mode:
        return isinstance(value, str)  # which strings: Mode says (its own error)
    if kind is tuple:  # a list of strings, or one string of words (a form field)
        return isinstance(value, str) or isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)
    return isinstance(value, kind)


def _wanted(hint: object) -> str:
    kind, optional = field_type(hint)
    words = {bool: "true or false", int: "a whole number", str: "a string", Mode: "a string",
             tuple: "a list of strings"}[kind]
    return f"{words} or null" if optional else words


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list",
            dict: "an object"}.get(type(value), type(value).__name__)


# name -> its annotation, in declaration order; ABOUT: name -> its About
FIELDS: dict[str, object] = typing.get_type_hints(BuildRequest)
ABOUT: dict[str, About] = {f.name: f.metadata["about"] for f in dataclasses.fields(BuildRequest)}
DEFAULTS: dict[str, object] = {f.name: f.default for f in dataclasses.fields(BuildRequest)
                               if f.default is not dataclasses.MISSING}
# The fields a submit to the API takes (the others are the worker's to choose).
API_FIELDS: tuple[str, ...] = tuple(n for n, a in ABOUT.items() if a.api)

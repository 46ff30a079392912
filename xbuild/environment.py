"""Every XBUILD_* environment variable, declared once: its kind, default and meaning.

Three sorts of names live here:
- SETTINGS that xbuild reads on the host, each through the accessors below when it is used (never
  at import: a test's monkeypatch.setenv takes effect, and a wrong value is a ConfigError, exit 6,
  that names the variable and what it must be, not a ValueError at import);
- SETTINGS of kind "option": the variables click reads for a command-line option
  (commands.option's `env=`); click parses them, `--help` names them;
- CONTAINER: the names xbuild sets inside a build or run container for recipes and its own
  scripts; nothing on the host reads them.
A unit test (tests/unit/test_environment.py) holds this list, the code, the README and docs/ together;
`python -m xbuild.environment` prints the table docs/environment.md is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from xbuild.errors import ConfigError

MB = 1 << 20
_ON, _OFF = ("1", "on", "true", "yes"), ("0", "off", "false", "no")


@dataclass(frozen=True)
class Setting:
    name: str
    kind: str   # text, flag, whole, number, mb, list, choice; or option (click reads it)
    default: object
    help: str
    zero: bool = False              # whole / number / mb: 0 is allowed
    fraction: bool = False          # mb: a fraction of a MB is allowed (else a whole number)
    choices: tuple[str, ...] = ()   # choice


def _s(name: str, kind: str, default: object, help: str, *, zero: bool = False, fraction: bool = False,
       choices: tuple[str, ...] = ()) -> Setting:
    return Setting(name, kind, default, help, zero=zero, fraction=fraction, choices=choices)


def _opt(name: str, help: str) -> Setting:
    return Setting(name, "option", None, help)


_DECLARED = (
    # --- the build on the host ---------------------------------------------------------------
    _s("XBUILD_DATA_DIR", "text", "", "a site's own targets/, releases/, recipes/ and toolchains/ "
       "[default: the installation's]"),
    _s("XBUILD_DEBIAN_MIRROR", "text", "http://deb.debian.org/debian", "the Debian mirror rootfs "
       "bootstraps and hints read from"),
    _s("XBUILD_BINFMT_DIR", "text", "/proc/sys/fs/binfmt_misc", "the binfmt_misc mount (tests "
       "point it at an empty directory)"),
    _s("XBUILD_GOPROXY", "text", "https://proxy.golang.org", "the Go module proxy a Go project's "
       "go.sum modules are fetched from, on the host (docs/go.md)"),
    _s("XBUILD_CARGO_REGISTRY", "text", "https://static.crates.io/crates", "where a Rust "
       "project's locked crates are downloaded from (<registry>/<name>/<name>-<version>.crate)"),
    _s("XBUILD_DEBUG", "flag", False, "show the traceback of an internal error"),
    _s("XBUILD_PROGRESS_SECONDS", "number", 15, "a progress line at least this often on a quiet build"),
    _s("XBUILD_STORE", "text", "", "the store of builds, caches and images (a directory or s3://...) "
       "[default: a file:// store under the user's data directory]; also --store"),
    _s("XBUILD_TOKEN", "text", "", "the token `xbuild submit` sends (one of the server's XBUILD_API_TOKENS)"),
    _s("XBUILD_RETRY_SECONDS", "number", 300, "how long an outage of a server, store or broker is "
       "ridden out (0: not at all); also --retry-seconds", zero=True),
    # --- limits ------------------------------------------------------------------------------
    _s("XBUILD_MAX_SOURCE_MB", "mb", 2048, "the project tree, and a source uploaded to the service; exit 26"),
    _s("XBUILD_MAX_SOURCE_FILES", "whole", 100_000, "the entries of the project tree and of an "
       "uploaded source; exit 51"),
    _s("XBUILD_MAX_OUTPUT_MB", "mb", 4096, "the build output, and anything xbuild unpacks; exit 27"),
    _s("XBUILD_MAX_PIDS", "whole", 4096, "processes in a build container"),
    _s("XBUILD_MAX_CPUS", "number", None, "CPUs of a build container [default: all]"),
    _s("XBUILD_MAX_DISK_MB", "whole", 10240, "disk a build writes, and any one file; exit 29"),
    _s("XBUILD_MAX_LOG_MB", "mb", 50, "build.log and a service job's log; past it the last lines are kept",
       fraction=True),
    _s("XBUILD_MIN_FREE_MB", "whole", 1024, "free disk needed to start a build; exit 30", zero=True),
    # --- caches and images -------------------------------------------------------------------
    _s("XBUILD_COMPILER_CACHE", "flag", True, "the compiler cache (ccache); also --compiler-cache"),
    _s("XBUILD_COMPILER_CACHE_SHARE", "flag", False, "one compiler cache for all projects; also "
       "--share-compiler-cache"),
    _s("XBUILD_COMPILER_CACHE_SIZE", "text", "2G", "each compiler cache's cap, a size such as 500M, 2G, 4Gi"),
    _s("XBUILD_COMPILER_CACHE_PUSH", "flag", False, "put the compiler cache back into an s3:// "
       "XBUILD_STORE after a build (trusted CI runs only)"),
    _s("XBUILD_SIGNING_KEY", "text", "", "an ed25519 or ECDSA P-256 private key (PEM, or a PEM file's path) "
       "that signs each build's provenance (a DSSE envelope); unsigned when unset. Never enters a "
       "build container"),
    _s("XBUILD_VERIFY_KEY", "text", "", "the public key (PEM file) `xbuild attest verify` checks the "
       "provenance's signature with; also --key"),
    _s("XBUILD_VERIFY_AGAINST", "text", "", "`xbuild verify --against`: the build to rebuild and compare with"),
    _s("XBUILD_IMAGES_PUSH", "flag", False, "publish the images this process builds to an s3:// "
       "XBUILD_STORE (a worker's default: on)"),
    # --- S3 ----------------------------------------------------------------------------------
    _s("XBUILD_S3_ENDPOINT_URL", "text", "", "an S3-compatible server (SeaweedFS, Ceph, MinIO, R2) "
       "[default: AWS]"),
    _s("XBUILD_S3_ADDRESSING", "choice", "path", "S3 addressing style", choices=("path", "virtual", "auto")),
    _s("XBUILD_S3_MAX_ATTEMPTS", "whole", 5, "tries of one S3 call (the client's own retries)"),
    _s("XBUILD_S3_PART_MB", "whole", 16, "part size of a multipart upload"),
    _s("XBUILD_S3_MULTIPART_MB", "whole", 64, "uploads larger than this go in parts"),
    # --- the service -------------------------------------------------------------------------
    _s("XBUILD_STATE_DIR", "text", "", "the embedded broker's files [default: "
       "$XDG_DATA_HOME/xbuild, ~/.local/share/xbuild]"),
    _s("XBUILD_BROKER_URL", "text", "", "the farm's broker, redis://... or amqp://... "
       "[default: embedded SQLite]"),
    _s("XBUILD_API_TOKENS", "list", [], "the API's tokens, comma-separated (one tenant each)"),
    _s("XBUILD_MAX_UPLOAD_MB", "whole", 200, "an uploaded source, compressed (a 413)"),
    _s("XBUILD_MAX_ATTEMPTS", "whole", 3, "runs of a job whose worker died before it fails"),
    _s("XBUILD_REAPER_INTERVAL", "number", 10, "seconds between the reaper's rounds"),
    _s("XBUILD_LEASE_TTL", "number", 30, "seconds a dead worker's lease outlives it"),
    _s("XBUILD_REQUEUE_AFTER", "number", 120, "seconds before a queued job whose message was lost "
       "is sent again"),
    _s("XBUILD_JOB_RETENTION_DAYS", "number", 30, "days a finished job's record and log are kept"),
    _s("XBUILD_UNSERVED_AFTER", "number", 60, "seconds before a job in a queue no worker serves says so"),
    _s("XBUILD_SERVICE_PASS_ENV", "list", [], "the only variables a project's pass_env may name "
       "(never XBUILD_* or AWS_*)"),
    _s("XBUILD_SERVICE_DOCKERFILE", "flag", False, "allow Dockerfile projects"),
    _s("XBUILD_SERVICE_ALLOW_PRIVATE_GIT", "flag", False, "allow git URLs on loopback, link-local "
       "or private addresses"),
    # --- command-line options (click reads these) --------------------------------------------
    _opt("XBUILD_TARGET", "-t/--target: the board"),
    _opt("XBUILD_OS", "--os: the board's OS release"),
    _opt("XBUILD_MODE", "--mode: cross, emulate or hybrid (images: which builder)"),
    _opt("XBUILD_STATIC", "--static: fully static executables"),
    _opt("XBUILD_PACKAGES", "--package: board -dev packages besides xbuild.toml's, separated by spaces"),
    _opt("XBUILD_DEB", "--deb: also a .deb"),
    _opt("XBUILD_OUT_DIR", "-o/--out: where the artifacts go"),
    _opt("XBUILD_JOBS", "-j/--jobs: parallel jobs"),
    _opt("XBUILD_TIMEOUT", "--timeout: a build's time limit; exit 13"),
    _opt("XBUILD_MEMORY", "--memory: a build container's memory limit; exit 31"),
    _opt("XBUILD_PUBLISH", "--publish: a store to publish the artifacts to"),
    _opt("XBUILD_CREATE_BUCKET", "--create-bucket: create the S3 bucket"),
    _opt("XBUILD_PUSH", "--push: an OCI repository to push the runtime image to"),
    _opt("XBUILD_NO_CACHE", "--no-cache: build even when cached"),
    _opt("XBUILD_KEEP_DEBUG", "--keep-debug: keep debug symbols"),
    _opt("XBUILD_KEEP", "--keep: keep the build container"),
    _opt("XBUILD_VERBOSE", "-v/--verbose: stream the full log"),
    _opt("XBUILD_JSON", "--json: one JSON object on stdout"),
    _opt("XBUILD_RUN_TIMEOUT", "run --timeout"),
    _opt("XBUILD_QEMU_CPU", "run --cpu: the QEMU_CPU model"),
    _opt("XBUILD_RUN_PUBLISH", "run -p/--publish: ports"),
    _opt("XBUILD_HOST", "serve --host"),
    _opt("XBUILD_PORT", "serve --port"),
    _opt("XBUILD_QUEUES", "worker --queues"),
    _opt("XBUILD_WORKER_NAME", "worker --name"),
    _opt("XBUILD_NIGHTLY", "nightly --config"),
    _opt("XBUILD_NIGHT", "nightly run-now --night"),
    _opt("XBUILD_WAIT", "submit / nightly run-now --wait"),
    _opt("XBUILD_SERVER", "submit --server"),
    _opt("XBUILD_GIT_URL", "submit --git"),
    _opt("XBUILD_GIT_REF", "submit --ref"),
)
SETTINGS: dict[str, Setting] = {s.name: s for s in _DECLARED}

# Set by xbuild inside a build (toolchain.base, buildscript) or run (runner) container.
CONTAINER: dict[str, str] = {
    "XBUILD_TARGET": "the board", "XBUILD_MODE": "the build mode", "XBUILD_JOBS": "parallel jobs",
    "XBUILD_DEBIAN_ARCH": "the board's Debian architecture", "XBUILD_TOOLCHAIN": "the toolchain's name",
    "XBUILD_OUT": "the staging directory (DESTDIR)", "XBUILD_PREFIX": "the install prefix",
    "XBUILD_HOST": "the board's GNU triplet", "XBUILD_BUILD": "the build machine's GNU triplet",
    "XBUILD_CMAKE_TOOLCHAIN": "the CMake toolchain file (cross)", "XBUILD_MESON_CROSS": "the Meson "
    "cross file (cross)", "XBUILD_SRC": "the source directory", "XBUILD_RECIPE": "the recipe's name",
    "XBUILD_CCACHE": "`ccache` when the compiler cache is on, else empty",
    "XBUILD_TOOL_CACHE": "where cargo's and Go's own caches go when the compiler cache is on",
    "XBUILD_GO_PACKAGES": "what a Go build builds without go_packages: ./..., or each workspace module's",
    "XBUILD_COLLECT_NEW_ELF": "1: collect the new ELF files when nothing was installed",
    "XBUILD_DEB_ARCH": "depends.py's architecture",
    "XBUILD_DPKG_FORMAT": "inventory.py's dpkg-query format", "XBUILD_ONE_SOURCE": "zig's shim, one source at a time",
    "XBUILD_INSTALL": "run's install script", "XBUILD_MARK": "run's end-of-install mark",
    "XBUILD_CPU": "run's QEMU_CPU",
    "XBUILD_PYTHON_SETTINGS": "a wheel's pip --config-settings (meson-python's cross file)",
    "XBUILD_CARGO_LOCK": "cargo build's --frozen or --offline (pipeline/rust.py)",
}


def _declared(name: str, *kinds: str) -> Setting:
    setting = SETTINGS[name]  # a KeyError here is a bug: every name is declared above
    if setting.kind not in kinds:
        raise TypeError(f"{name} is a {setting.kind} setting, not {'/'.join(kinds)}")
    return setting


def _raw(name: str) -> str:
    return os.environ.get(name, "").strip()


def _fractional(setting: Setting) -> bool:
    return setting.kind == "number" or (setting.kind == "mb" and setting.fraction)


def what(setting: Setting) -> str:
    """What a value of the setting must be, as the error and the table say it."""
    if setting.kind in ("whole", "number", "mb"):
        noun = "a number" if _fractional(setting) else "a whole number"
        return noun + (", 0 or more" if setting.zero else " above 0")
    return {"flag": "1/on/true/yes or 0/off/false/no", "list": "comma-separated names",
            "choice": " or ".join(setting.choices), "option": "the option's (see --help)"}.get(setting.kind, "text")


def _wrong(setting: Setting, raw: str, example: object) -> ConfigError:
    return ConfigError(f"{setting.name}={raw!r} is not {what(setting)}",
                       hint=f"e.g. {setting.name}={example}, or unset it for the default")


def text(name: str) -> str:
    """$name, stripped, else its default."""
    return _raw(name) or str(_declared(name, "text", "choice").default)


def choice(name: str) -> str:
    setting = _declared(name, "choice")
    value = _raw(name) or str(setting.default)
    if value not in setting.choices:
        raise _wrong(setting, value, setting.default)
    return value


def flag(name: str) -> bool:
    setting = _declared(name, "flag")
    raw = _raw(name).lower()
    if not raw:
        return bool(setting.default)
    if raw in _ON or raw in _OFF:
        return raw in _ON
    raise _wrong(setting, raw, 1)


def names(name: str) -> list[str]:
    """A comma-separated list, empty items dropped."""
    _declared(name, "list")
    return [item.strip() for item in _raw(name).split(",") if item.strip()]


def number(name: str) -> float:
    """$name as a number (whole unless the kind allows fractions; above 0 unless zero), else its default (None:
    the caller's own, e.g. XBUILD_MAX_CPUS's CPU count)."""
    setting = _declared(name, "whole", "number", "mb")
    assert isinstance(setting.default, (int, float)) or setting.default is None
    raw = _raw(name)
    if not raw:
        return float(setting.default or 0)  # None: 0, the caller's own default
    try:
        value = float(raw) if _fractional(setting) else int(raw, 10)
    except ValueError:
        value = -1
    if value < 0 or (value == 0 and not setting.zero) or value != value or value == float("inf"):
        raise _wrong(setting, raw, f"{setting.default:g}" if setting.default is not None else 2)
    return value


def whole(name: str) -> int:
    _declared(name, "whole")
    return int(number(name))


def megabytes(name: str) -> int:
    """$name, a size in MB (a whole number unless the setting allows fractions), as bytes."""
    _declared(name, "mb")
    return int(number(name) * MB)


def get(name: str) -> object:
    """$name parsed as its kind says (the accessors above, for a caller that knows the kind)."""
    kind = SETTINGS[name].kind
    if kind == "option":
        raise TypeError(f"{name} is read by click, as its option's value")
    read = {"text": text, "choice": choice, "flag": flag, "list": names, "whole": whole,
            "number": number, "mb": megabytes}[kind]
    return read(name)


def check_all() -> None:
    """Parse every setting xbuild reads: a long-running process (serve, worker) refuses a wrong
    value when it starts, not at the first build or heartbeat that reads it."""
    for name, setting in SETTINGS.items():
        if setting.kind != "option":
            get(name)


def table() -> str:
    """The Markdown table of SETTINGS and CONTAINER: docs/environment.md (a unit test keeps it current)."""
    rows = ["| variable | kind | default | meaning |", "|---|---|---|---|"]
    for s in _DECLARED:
        shown = ("on" if s.default else "off") if s.kind == "flag" else s.default
        default = "" if shown in (None, "", []) or s.kind == "option" else f"`{shown}`"
        rows.append(f"| `{s.name}` | {what(s)} | {default} | {s.help} |")
    inside = ["| variable | meaning |", "|---|---|"]
    inside += [f"| `{name}` | {help} |" for name, help in CONTAINER.items()]
    return ("# Environment variables\n\n"
            "Generated by `python -m xbuild.environment` from xbuild/environment.py: do not edit.\n"
            "A wrong value is exit 6, naming the variable. Options also read their variable "
            "(`--help` names it).\n\n" + "\n".join(rows) +
            "\n\nSet by xbuild inside a build or run container, for recipes and its own scripts:\n\n"
            + "\n".join(inside) + "\n")


if __name__ == "__main__":
    print(table(), end="")

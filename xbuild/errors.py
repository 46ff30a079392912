"""Every failure a user can meet, each with its own exit code and a hint that says what to do,
and every other exit code xbuild itself ends with (`ExitCode`): no number appears anywhere else.

Only `xbuild.cli.main` turns these into exit codes; everything else just raises.
Errors are split by whose fault they are: `UserError` (the project, the command line, the config)
and `ServiceError` (the machine: engine, binfmt, images).

Each code has one meaning, and docs/exit-codes.md lists them all (tests/unit/test_errors.py checks
both). A subclass that does not set its own `exit_code` shares its parent's on purpose: it is a
finer case of the same failure (StoreUnavailable is a StoreError worth retrying)."""

from __future__ import annotations

import enum
import signal


def killed_by(signum: int) -> int:
    """The exit code of a process a signal ended: 128 + its number, as a shell reports it."""
    return 128 + signum


class ExitCode(enum.IntEnum):
    """The exit codes that are no error class's: outcomes reported rather than raised, and the
    ways a process ends without an XBuildError."""
    OK = 0
    INTERNAL = 1            # a bug in xbuild: an exception no error class names
    USAGE = 2               # a bad command line: click's own code (click.UsageError.exit_code)
    NOT_REPRODUCIBLE = 16   # `verify`: the two builds differ (a finding it reports, not an error)
    HANGUP = killed_by(signal.SIGHUP)        # the terminal went away
    INTERRUPTED = killed_by(signal.SIGINT)   # Ctrl-C
    TERMINATED = killed_by(signal.SIGTERM)   # what CI sends on cancel
    # Shares INTERNAL's 1 on purpose (an enum alias): `doctor`, `binfmt status` and `nightly
    # run-now` answer "is everything fine?", and 1 is a check's "no" as scripts expect it.
    NOT_ALL_OK = 1


class XBuildError(Exception):
    exit_code: int = ExitCode.INTERNAL  # an error with no code of its own
    hint: str | None = None

    def __init__(self, message: str, hint: str | None = None, detail: str | None = None):
        super().__init__(message)
        self.message = message
        if hint is not None:
            self.hint = hint
        self.detail = detail  # extra lines shown before the hint (e.g. a log tail)

    def to_json(self) -> dict:
        return {"error": type(self).__name__, "message": self.message, "hint": self.hint,
                "exit_code": self.exit_code}


class UserError(XBuildError):
    """The user's input is wrong; retrying the same command will fail the same way."""


class ServiceError(XBuildError):
    """The machine or a service is not ready; fixing the machine fixes the build."""


# --- the user's side -------------------------------------------------------------------------
class UnknownTarget(UserError):
    exit_code = 3
    hint = "`xbuild targets` lists the boards"


class BadProjectPath(UserError):
    exit_code = 4


class NoRecipe(UserError):
    exit_code = 5
    hint = 'add an xbuild.toml with [build] recipe = "..." or steps = ["..."]'


class ConfigError(UserError):
    exit_code = 6
    hint = "see docs/xbuild-toml.md"


class BuildFailed(UserError):
    exit_code = 7


class BuildCancelled(BuildFailed):
    """A service job's cancel (POST /v1/builds/<id>/cancel), at whatever moment it came."""
    exit_code = 52


class AbiMismatch(UserError):
    exit_code = 10


class NoArtifacts(UserError):
    exit_code = 11


class BuildTimeout(UserError):
    exit_code = 13
    hint = "raise the limit with --timeout (XBUILD_TIMEOUT) or `timeout` in xbuild.toml"


class BadArtifact(UserError):
    exit_code = 14
    hint = "give the .tar.gz from an xbuild output directory (its SHA256SUMS lists it)"


# --- the machine's side ----------------------------------------------------------------------
class EngineUnavailable(ServiceError):
    exit_code = 8
    hint = ("start the Docker engine: `dockerd &` (no init system) or `systemctl start docker`; "
            "`xbuild doctor` checks everything")


class BinfmtMissing(ServiceError):
    exit_code = 9
    hint = "register the qemu handlers: `xbuild binfmt install` (as root)"


class ImageBuildFailed(ServiceError):
    exit_code = 12
    hint = "`xbuild doctor` checks the machine; `xbuild images build -v --target T` shows apt's output"


class StoreError(ServiceError):
    exit_code = 15
    hint = "check XBUILD_STORE, the endpoint (XBUILD_S3_ENDPOINT_URL) and the credentials"


class StoreUnavailable(StoreError):
    """The store is down or failing for now (no connection, a 5xx, throttling) after the S3
    client's own retries: worth retrying later, unlike a missing bucket or a refused key."""
    hint = "the store is restarting or overloaded: try again in a moment (check XBUILD_S3_ENDPOINT_URL)"


class ServerUnavailable(ServiceError):
    exit_code = 18
    hint = "check --server (XBUILD_SERVER) and that `xbuild serve` runs there"


class TokenRejected(UserError):
    exit_code = 19
    hint = "set XBUILD_TOKEN to one of the server's XBUILD_API_TOKENS"


class WorkerLost(ServiceError):
    exit_code = 17


class UnresolvableBase(UserError):
    exit_code = 20
    hint = ("use a Debian base (debian:<suite> or debian:<suite>-slim), which xbuild makes from the "
            "Debian mirror, or make a registry reachable")


class RegistryError(ServiceError):
    exit_code = 21
    hint = "check the repository name and `docker login` to the registry (the engine's credentials)"


# --- the build service's API and client ----------------------------------------------------
class ServerError(ServiceError):
    """The build server answered, with an error of its own (HTTP 5xx): not the user's fault."""
    exit_code = 22
    hint = "the server failed, not your project: try again later, or tell its operator (its log has the details)"


class RefusedByService(UserError):
    """The build service's policy refuses what the project asks for (service/policy.py)."""
    exit_code = 23
    hint = "the build service's operator decides this (see docs/service.md)"


# --- output directories and sizes ----------------------------------------------------------
class OutputDirInUse(UserError):
    """An --out that holds something xbuild did not make: replacing it would delete the user's files."""
    exit_code = 25
    hint = ("give a new or empty directory (or one an earlier xbuild run made); move the files "
            "away yourself if they may go")


class SourceTooLarge(UserError):
    exit_code = 26
    hint = ("leave big files out of the project (.git and xbuild-out/ are skipped already), or "
            "raise XBUILD_MAX_SOURCE_MB")


class TooManyFiles(UserError):
    exit_code = 51
    hint = ("leave generated or vendored trees out of the project (.git and xbuild-out/ are "
            "skipped already), or raise XBUILD_MAX_SOURCE_FILES")


class OutputTooLarge(UserError):
    exit_code = 27
    hint = "install less into the output, or raise XBUILD_MAX_OUTPUT_MB"


# --- the sandbox's limits --------------------------------------------------------------------
class DiskLimitExceeded(UserError):
    exit_code = 29
    hint = "raise it with XBUILD_MAX_DISK_MB, or make the build write less"


class NoSpace(ServiceError):
    exit_code = 30
    hint = "free some space (`xbuild images prune`, old outputs), or lower XBUILD_MIN_FREE_MB"


class OutOfMemory(UserError):
    exit_code = 31
    hint = "raise it with --memory (XBUILD_MEMORY), or lower the parallel jobs (-j)"


# --- the installation's side -----------------------------------------------------------------
class DataFilesMissing(ServiceError):
    """targets/ or recipes/ is empty or absent: a broken install (or a wrong XBUILD_DATA_DIR)."""
    exit_code = 34


# --- OS releases -----------------------------------------------------------------------------
class UnknownRelease(UserError):
    """--os (or xbuild.toml's os) names a release the board does not run."""
    exit_code = 36
    hint = "`xbuild targets` lists each board's OS releases"


class ToolchainMissing(ServiceError):
    """A build needs zig and this installation has no `ziglang` package (it is a dependency)."""
    exit_code = 24
    hint = "reinstall xbuild (`pip install xbuild` brings ziglang), or `pip install ziglang`"


# --- the compiler cache ----------------------------------------------------------------------
class CompilerCacheError(ServiceError):
    """The compiler cache's directory cannot be made or removed (its disk, its owner)."""
    exit_code = 37
    hint = "check the disk and the owner of ~/.cache/xbuild/compiler-cache, or build with --no-compiler-cache"


# --- images in a store (image_store.py) ------------------------------------------------------
class ImageStoreCorrupt(ServiceError):
    """An image's record or layer in the store fails its check: it is never loaded."""
    exit_code = 39
    hint = ("rebuild the image (`xbuild images build`) and push it again (`xbuild images push`); "
            "a build that needs it builds it instead")


class ImageMissing(UserError):
    """`xbuild images push` of an image this machine lacks, or `pull` of one the store lacks."""
    exit_code = 40
    hint = "build it (`xbuild images build`), then `xbuild images push` it to the store"


# --- the project is hostile data on the host (tests/security/README.md) -----------------------
class LinkInOutputPath(UserError):
    """An output directory (or what xbuild writes beside it) that is a link, holds one, or is
    reached through a link inside the project: xbuild never writes through a link a project
    could have placed."""
    exit_code = 45
    hint = ("remove the link (a project may ship one to make xbuild overwrite a file of yours), or "
            "give --out a real directory outside the project")


class UnsafeName(UserError):
    """A name from the command line, a request, a record or an archive that would not be one plain
    path component (`/`, `..`, control characters)."""
    exit_code = 46
    hint = "give a plain name: `xbuild targets` lists the boards and their OS releases"


class UnsafeProjectFile(UserError):
    """A project file xbuild reads on the host (xbuild.toml, a Dockerfile) that is a link, not a
    regular file (a FIFO would block), or larger than xbuild ever reads."""
    exit_code = 47
    hint = "make it a plain, small file inside the project (not a link, FIFO or device)"


class UnreadableProject(UserError):
    """A project tree xbuild cannot walk whole: a directory it may not read, or a path longer than
    the system allows (directories nested thousands deep)."""
    exit_code = 48
    hint = "make every directory of the project readable, and its paths shorter than 4096 bytes"


# --- `xbuild run` installs the artifact as the board would ------------------------------------
class InstallFailed(UserError):
    """apt (or dpkg, or ldconfig) could not install the artifact in a clean container of the
    board's release: on the board it would fail the same way."""
    exit_code = 53
    hint = ("read the installer's messages above: a Depends the release has no package for, a file "
            "another package owns, or an archive that is not the board's")


# --- Go modules (pipeline/gobuild.py, project/goproxy.py) ---------------------------------------
class GoModuleError(ConfigError):
    """A Go module's go.mod, go.work or go.sum the offline build cannot use: a `go` line newer than
    xbuild's Go, a `replace` by a directory outside the project, a go.work `use` that is not a
    plain directory of the project, a go.sum line that names no module."""
    exit_code = 49
    hint = "see docs/go.md"


class GoModuleMismatch(UserError):
    """A Go module from the module proxy that does not hash to go.sum's h1: (nothing of it is
    kept), or a Go toolchain wheel that is not the one xbuild pins."""
    exit_code = 50
    hint = "see docs/go.md"


# --- the Python package index (project/pypi.py) -----------------------------------------------
class PackageUnavailable(UserError):
    """The package index has no such project, no file of it that fits (a wheel for the platforms
    asked, an sdist), or no set of versions that satisfies every requirement at once."""
    exit_code = 41
    hint = ("check the name on the index; pin a version that publishes what is needed, or vendor "
            "the package into the project")


class IndexUnreachable(ServiceError):
    """pip (or xbuild itself) could not reach the package index, or it did not answer in time."""
    exit_code = 42
    hint = ("check the network and the index pip is configured with (PIP_INDEX_URL, pip.conf); "
            "`python -m pip download NAME` on this machine shows the same failure")


# --- attestations (attest/): what a build says of itself, checked ------------------------------
class AttestationMismatch(UserError):
    """A build's files do not match its provenance, its SBOMs or SHA256SUMS, or its provenance is
    not signed by the key given: something was altered, or it was signed by someone else."""
    exit_code = 58
    hint = ("fetch the build again from its store; if it still differs, do not use it: rebuild it "
            "(xbuild verify --against) and compare")


# --- a Cargo project's crates (project/crates.py) ---------------------------------------------
class CratesNotLocked(UserError):
    """A Rust project's dependencies cannot be fetched by checksum: no Cargo.lock, or a git or
    non-crates.io source in it."""
    exit_code = 43
    hint = ("commit Cargo.lock (`cargo generate-lockfile`), or vendor the dependencies "
            "(`cargo vendor`, with the .cargo/config.toml it prints)")


class CrateFetchFailed(UserError):
    """A locked crate could not be fetched from XBUILD_CARGO_REGISTRY, or was refused: another
    checksum than the lock's, too large, too slow, or an unsafe archive."""
    exit_code = 44
    hint = "check XBUILD_CARGO_REGISTRY and the network, or vendor the dependencies (`cargo vendor`)"

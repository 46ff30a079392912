"""What a Rust (Cargo) build for a board needs: the Rust target, the CPU, the Debian packages of
the toolchain and the environment cargo, cc-rs and pkg-config read. Pure: nothing here runs
cargo. pipeline/rust.py wires it into the cargo recipe; docs/rust.md holds the findings.

- Rust targets: aarch64 boards `aarch64-unknown-linux-gnu`; ARMv7/v8 32-bit boards
  `armv7-unknown-linux-gnueabihf`; ARMv6 hard-float (Pi Zero/1) `arm-unknown-linux-gnueabihf`,
  whose std Debian does not package (its armhf is ARMv7), so the image builds it once
  (-Zbuild-std, pipeline/rust.py) into the sysroot, where rustc finds it as a packaged one.
- Toolchains: the release suite's `rustc`/`cargo` where recent enough (trixie: 1.85), else its
  `rustc-web`/`cargo-web` (bullseye 1.78, bookworm 1.85); the target's std through multiarch.
- Build scripts and proc macros are linked for the build machine by a linker that cannot see
  /xbuild/bin, whose `cc` and `ld` are the board's."""

from __future__ import annotations

from xbuild.board.requirement import ARM_RANK
from xbuild.board.targets import Target, host_arch
from xbuild.errors import ConfigError

# Debian architecture -> Rust target, for the architectures whose std Debian packages.
_RUST_TARGETS = {
    "arm64": "aarch64-unknown-linux-gnu",
    "armhf": "armv7-unknown-linux-gnueabihf",
    "armel": "armv5te-unknown-linux-gnueabi",
    "amd64": "x86_64-unknown-linux-gnu",
    "i386": "i686-unknown-linux-gnu",
    "ppc64el": "powerpc64le-unknown-linux-gnu",
    "riscv64": "riscv64gc-unknown-linux-gnu",
    "s390x": "s390x-unknown-linux-gnu",
}
ARMV6_HARD_FLOAT = "arm-unknown-linux-gnueabihf"
# --static: the musl targets, whose std Debian never packages (built in the image, -Zbuild-std)
# and which link through zig's musl, libunwind included (docs/rust.md).
_MUSL_TARGETS = {
    "arm64": "aarch64-unknown-linux-musl",
    "armhf": "armv7-unknown-linux-musleabihf",
    "armel": "armv5te-unknown-linux-musleabi",
    "amd64": "x86_64-unknown-linux-musl",
    "i386": "i686-unknown-linux-musl",
    "ppc64el": "powerpc64le-unknown-linux-musl",
    "riscv64": "riscv64gc-unknown-linux-musl",
    "s390x": "s390x-unknown-linux-musl",
}
ARMV6_MUSL = "arm-unknown-linux-musleabihf"
# Which source package's toolchain each suite builds with: "" is rustc/cargo/libstd-rust-dev,
# "-web" rustc-web/cargo-web/libstd-rust-web-dev (bullseye's rustc is 1.48, bookworm's 1.63: too
# old for most crates; their rustc-web is 1.78 and 1.85).
_FLAVOUR = {"bullseye": "-web", "bookworm": "-web", "trixie": ""}
# The rustc each suite builds with, pinned: the image's tag (and so every build's cache key)
# carries it, and a mirror that moved on fails the image build instead of changing it silently.
RUSTC_VERSIONS = {"bullseye": "1.78.0+dfsg1-2~deb11u3", "bookworm": "1.85.0+dfsg3-1~deb12u3",
                  "trixie": "1.85.1+dfsg1-1+deb13u1"}
# The build machine's linker for build scripts, with /xbuild/bin off PATH (docs/rust.md).
HOST_LINKER = "/xbuild/cargo/host-cc"
HOST_LINKER_SCRIPT = '#!/bin/sh\nPATH=/usr/local/bin:/usr/bin:/bin exec /usr/bin/cc "$@"\n'


def rust_target(target: Target, static: bool = False) -> str:
    """The Rust target triple for the board: ARMv6 hard-float boards (arm_arch_max below v7) get
    `arm-unknown-linux-gnueabihf`, which Debian's armhf std (ARMv7, Thumb-2) cannot serve;
    static: the musl one."""
    arch_max = target.abi.arm_arch_max
    if target.debian_arch == "armhf" and arch_max is not None and ARM_RANK.get(arch_max, 99) < ARM_RANK["v7"]:
        return ARMV6_MUSL if static else ARMV6_HARD_FLOAT
    try:
        return (_MUSL_TARGETS if static else _RUST_TARGETS)[target.debian_arch]
    except KeyError:
        raise ConfigError(f"no Rust target is known for {target.name} ({target.debian_arch})",
                          hint="build for another board, or build the project on the board") from None


def std_packaged(target: Target, static: bool = False) -> bool:
    """Whether Debian packages the std for the board's Rust target (else: -Zbuild-std)."""
    return not static and rust_target(target) != ARMV6_HARD_FLOAT


def target_cpu(target: Target) -> str | None:
    """rustc's -C target-cpu: the board's GCC -mcpu (LLVM takes the same names for these cores:
    arm1176jzf-s, cortex-a7/a8/a53/a57/a72/a76), or None for a generic board."""
    for flag in target.cflags:
        if flag.startswith("-mcpu="):
            return flag.split("=", 1)[1]
    return None


def build_machine() -> str:
    """The Rust target of the machine the build runs on (build scripts, proc macros)."""
    return _RUST_TARGETS.get(host_arch(), "x86_64-unknown-linux-gnu")


def env_key(rust_triple: str) -> str:
    """cargo's spelling of a target in variable names: CARGO_TARGET_<THIS>_LINKER."""
    return rust_triple.upper().replace("-", "_").replace(".", "_")


def rustc_version(target: Target) -> str:
    """The Debian version of the rustc the board's release builds with."""
    try:
        return RUSTC_VERSIONS[target.suite]
    except KeyError:
        raise ConfigError(f"no Rust toolchain is known for Debian {target.suite}",
                          hint="build for a release on bullseye, bookworm or trixie") from None


def packages(target: Target, static: bool = False) -> tuple[list[str], list[str]]:
    """(tools for the build machine, packages for the board) the build needs from the suite."""
    flavour = _FLAVOUR.get(target.suite)
    if flavour is None:
        raise ConfigError(f"no Rust toolchain is known for Debian {target.suite}",
                          hint="build for a release on bullseye, bookworm or trixie")
    tools = [f"rustc{flavour}", f"cargo{flavour}"]
    if std_packaged(target, static):
        return tools, [f"libstd-rust{flavour}-dev"]
    return [*tools, f"rust{flavour}-src"], []


def environment(target: Target, static: bool = False) -> dict[str, str]:
    """What cargo, cc-rs and the pkg-config crate read for a cross build to the board. The
    linker and C compilers are xbuild's shims (<triple>-gcc: GCC or zig); build scripts link
    with HOST_LINKER. static: the musl target, linked by zig's shim (musl, -static) with the C
    runtime it brings (crt objects, libc, libunwind) instead of rustc's self-contained ones,
    which Debian does not ship."""
    rt, gnu = rust_target(target, static), target.triple
    build = build_machine()
    key, low = env_key(rt), rt.replace("-", "_")
    flags = [f"-C target-cpu={cpu}"] if (cpu := target_cpu(target)) else []
    if static:
        flags += ["-C link-self-contained=no", "-C target-feature=+crt-static"]
    rustflags = " ".join(flags)
    env = {
        "CARGO_BUILD_TARGET": rt,
        f"CARGO_TARGET_{key}_LINKER": f"{gnu}-gcc",
        f"CARGO_TARGET_{key}_RUSTFLAGS": rustflags,
        f"CC_{low}": f"{gnu}-gcc", f"CXX_{low}": f"{gnu}-g++", f"AR_{low}": f"{gnu}-ar",
        f"PKG_CONFIG_{low}": f"{gnu}-pkg-config",
        "CARGO_NET_OFFLINE": "true",
    }
    if build != rt:
        blow = build.replace("-", "_")
        env[f"CARGO_TARGET_{env_key(build)}_LINKER"] = HOST_LINKER
        # cc-rs in a build script compiling for the build machine: its compiler, and not the
        # board's CFLAGS (CPU flags the build machine's gcc refuses), which it would take otherwise.
        env[f"CC_{blow}"] = HOST_LINKER
        env[f"AR_{blow}"] = "/usr/bin/ar"
        env[f"CFLAGS_{blow}"] = env[f"CXXFLAGS_{blow}"] = "-O2"
    return env


def build_args(target: Target, static: bool = False) -> list[str]:
    """cargo build's arguments for the board: offline and to the lock, release, its target (the
    ARMv6 and musl std are in the image's sysroot: no -Zbuild-std here)."""
    return ["build", "--frozen", "--release", "--target", rust_target(target, static)]

"""xbuild/pipeline/cargo.py: the Rust target, CPU, packages and environment each board gets
(docs/rust.md), read from the real boards and releases."""

import pytest

from xbuild.board import targets
from xbuild.board.targets import host_arch
from xbuild.errors import ConfigError
from xbuild.pipeline import cargo


@pytest.mark.parametrize("board, triple", [
    ("rpi0", "arm-unknown-linux-gnueabihf"), ("rpi1", "arm-unknown-linux-gnueabihf"),
    ("rpi2", "armv7-unknown-linux-gnueabihf"), ("rpi3", "armv7-unknown-linux-gnueabihf"),
    ("beaglebone", "armv7-unknown-linux-gnueabihf"), ("armhf", "armv7-unknown-linux-gnueabihf"),
    ("rpi3-64", "aarch64-unknown-linux-gnu"), ("rpi4", "aarch64-unknown-linux-gnu"),
    ("jetson-nano", "aarch64-unknown-linux-gnu"), ("armel", "armv5te-unknown-linux-gnueabi"),
    ("riscv64", "riscv64gc-unknown-linux-gnu"),
])
def test_each_board_gets_the_rust_target_its_cpu_runs(board, triple):
    assert cargo.rust_target(targets.get(board)) == triple


def test_only_the_armv6_boards_build_their_std():
    assert [b for b in ("rpi0", "rpi1", "rpi2", "rpi3", "rpi4", "jetson-nano")
            if not cargo.std_packaged(targets.get(b))] == ["rpi0", "rpi1"]


@pytest.mark.parametrize("board, cpu", [
    ("rpi0", "arm1176jzf-s"), ("rpi3", "cortex-a53"), ("rpi4", "cortex-a72"),
    ("jetson-nano", "cortex-a57"), ("arm64", None),
])
def test_the_target_cpu_is_the_boards_mcpu(board, cpu):
    assert cargo.target_cpu(targets.get(board)) == cpu


def test_packages_follow_the_suite_and_whether_the_std_is_packaged():
    assert cargo.packages(targets.get("rpi3")) == (["rustc", "cargo"], ["libstd-rust-dev"])
    assert cargo.packages(targets.get("rpi0")) == (["rustc", "cargo", "rust-src"], [])
    # bullseye's rustc is 1.48: L4T R32 (packages from bullseye) builds with rustc-web.
    assert cargo.packages(targets.get("jetson-nano")) == (["rustc-web", "cargo-web"], ["libstd-rust-web-dev"])
    assert cargo.packages(targets.get("rpi4").with_os("bookworm"))[0] == ["rustc-web", "cargo-web"]


def test_armv7_environment_aims_cargo_cc_and_pkg_config_at_the_board():
    env = cargo.environment(targets.get("rpi3"))
    assert env["CARGO_BUILD_TARGET"] == "armv7-unknown-linux-gnueabihf"
    assert env["CARGO_TARGET_ARMV7_UNKNOWN_LINUX_GNUEABIHF_LINKER"] == "arm-linux-gnueabihf-gcc"
    assert env["CARGO_TARGET_ARMV7_UNKNOWN_LINUX_GNUEABIHF_RUSTFLAGS"] == "-C target-cpu=cortex-a53"
    assert env["CC_armv7_unknown_linux_gnueabihf"] == "arm-linux-gnueabihf-gcc"
    assert env["PKG_CONFIG_armv7_unknown_linux_gnueabihf"] == "arm-linux-gnueabihf-pkg-config"
    assert "RUSTC_BOOTSTRAP" not in env


def test_build_scripts_link_for_the_build_machine_without_the_boards_shims():
    env = cargo.environment(targets.get("rpi4"))
    build = cargo.build_machine()
    if build != "aarch64-unknown-linux-gnu":
        assert env[f"CARGO_TARGET_{cargo.env_key(build)}_LINKER"] == cargo.HOST_LINKER
        assert env[f"CC_{build.replace('-', '_')}"] == cargo.HOST_LINKER
    assert "/xbuild/bin" not in cargo.HOST_LINKER_SCRIPT.split("PATH=", 1)[1].split()[0]
    assert host_arch() != "amd64" or build == "x86_64-unknown-linux-gnu"


def test_armv6_uses_the_std_the_image_built_with_the_release_compiler():
    # the std is in the image's sysroot (pipeline/rust.py): the project's build is a plain one
    env = cargo.environment(targets.get("rpi0"))
    assert "RUSTC_BOOTSTRAP" not in env
    assert cargo.build_args(targets.get("rpi0")) == ["build", "--frozen", "--release", "--target",
                                                      "arm-unknown-linux-gnueabihf"]
    assert env["CARGO_TARGET_ARM_UNKNOWN_LINUX_GNUEABIHF_RUSTFLAGS"] == "-C target-cpu=arm1176jzf-s"


def test_each_supported_suite_pins_its_rustc():
    assert cargo.rustc_version(targets.get("rpi3")).startswith("1.85.1+")
    assert cargo.rustc_version(targets.get("jetson-nano")).startswith("1.78.0+")  # bullseye's rustc-web


def test_a_generic_board_gets_no_target_cpu():
    assert cargo.environment(targets.get("arm64"))["CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS"] == ""


def test_an_architecture_without_a_rust_target_is_a_config_error():
    t = targets.get("rpi4")
    from dataclasses import replace
    with pytest.raises(ConfigError):
        cargo.rust_target(replace(t, debian_arch="mips64el"))


@pytest.mark.parametrize("board, triple", [
    ("rpi0", "arm-unknown-linux-musleabihf"), ("rpi3", "armv7-unknown-linux-musleabihf"),
    ("rpi4", "aarch64-unknown-linux-musl"), ("riscv64", "riscv64gc-unknown-linux-musl"),
])
def test_static_builds_the_musl_target_whose_std_the_image_builds(board, triple):
    t = targets.get(board)
    assert cargo.rust_target(t, static=True) == triple
    assert not cargo.std_packaged(t, static=True)
    tools, board_packages = cargo.packages(t, static=True)
    assert "rust-src" in tools and board_packages == []  # no glibc std for the board
    env = cargo.environment(t, static=True)
    key = cargo.env_key(triple)
    assert env["CARGO_BUILD_TARGET"] == triple
    assert env[f"CARGO_TARGET_{key}_LINKER"] == f"{t.triple}-gcc"  # zig's shim: musl, -static
    # zig brings the C runtime (crt objects, libc, libunwind): Debian ships no self-contained ones
    flags = env[f"CARGO_TARGET_{key}_RUSTFLAGS"].split()
    assert {"link-self-contained=no", "target-feature=+crt-static"} <= set(flags)

"""xbuild.containers.images definitions, no engine: tags are a hash of everything that defines an image
(stable from one run to the next, changed by any change of the definition, its parent's
included), package names are checked before they reach a Dockerfile, and cross mode installs the
target's packages through multiarch."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys

import pytest

import xbuild
from xbuild.board import targets
from xbuild.containers import images
from xbuild.errors import ConfigError
from xbuild.toolchain import pick

ROOT = xbuild.__file__.rsplit("/xbuild/", 1)[0]


@pytest.fixture(autouse=True)
def amd64_host(monkeypatch):
    """Tags depend on the host architecture (a cross builder is a host-arch image): pin it."""
    monkeypatch.setattr(images, "host_arch", lambda: "amd64")
    monkeypatch.setattr(targets, "host_arch", lambda: "amd64")


def tag(target="rpi3", mode="cross", packages=()):
    return images.builder_def(pick(targets.get(target), mode), tuple(packages)).tag


def test_tag_shapes():
    rpi3 = targets.get("rpi3")
    suite = rpi3.suite  # the board's default release's
    assert re.fullmatch(rf"xbuild/base:{suite}-armhf-[0-9a-f]{{12}}", images.runtime_def(rpi3).tag)
    assert re.fullmatch(rf"xbuild/builder:{suite}-armhf-cross-[0-9a-f]{{12}}", tag())
    assert re.fullmatch(rf"xbuild/builder:{suite}-armhf-emulate-[0-9a-f]{{12}}", tag(mode="emulate"))
    assert re.fullmatch(rf"xbuild/deps:{suite}-armhf-cross-[0-9a-f]{{12}}", tag(packages=["zlib1g-dev"]))


def test_tags_are_stable_across_processes():
    """The cache key holds these tags: a new process (another hash seed) must compute the same."""
    code = ("from xbuild.containers import images; from xbuild.board import targets; "
            "from xbuild.toolchain import pick; "
            "images.host_arch = targets.host_arch = lambda: 'amd64';"
            "print(images.builder_def(pick(targets.get('rpi3'), 'cross'), ('zlib1g-dev', 'libssl-dev')).tag)")
    tags = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT,
                           env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"}).stdout.strip()
            for seed in ("1", "2")}
    assert tags == {tag(packages=["zlib1g-dev", "libssl-dev"])}


def test_boards_of_one_debian_arch_share_images():
    """The board's tuning is applied by the shims at build time, not baked into the image."""
    assert tag("rpi2") == tag("rpi3") == tag("beaglebone") == tag("armhf")
    # rpi0 builds with zig, in a layer on the same armhf cross builder (zig's cache is per CPU)
    rpi0 = images.builder_def(pick(targets.get("rpi0"), "cross"), ())
    assert rpi0.parent is not None and rpi0.parent.tag == tag("rpi3") != tag("armel")
    assert rpi0.tag == images.builder_def(pick(targets.get("rpi1"), "cross"), ()).tag


@pytest.mark.parametrize("change", [
    lambda t: t.with_os("bullseye"),
    lambda t: dataclasses.replace(t, debian_arch="arm64"),
])
def test_tag_changes_with_the_target(change):
    rpi3 = targets.get("rpi3")
    for mode in ("cross", "emulate"):
        assert images.builder_def(pick(change(rpi3), mode)).tag != images.builder_def(pick(rpi3, mode)).tag


def test_tag_changes_with_mode_and_packages():
    tags = {tag(), tag(mode="emulate"), tag(packages=["zlib1g-dev"]), tag(packages=["libssl-dev"]),
            tag(packages=["zlib1g-dev", "libssl-dev"]), tag(mode="emulate", packages=["zlib1g-dev"])}
    assert len(tags) == 6
    assert tag(packages=["b-dev", "a-dev"]) == tag(packages=["a-dev", "b-dev"])  # order is not meaning


def test_a_parents_change_reaches_every_child(monkeypatch):
    """The mirror changes the base's hash; the builder's Dockerfile names its parent by tag, so
    its hash (and the deps image's) changes too."""
    before = [tag(), tag(mode="emulate"), tag(packages=["zlib1g-dev"])]
    monkeypatch.setenv("XBUILD_DEBIAN_MIRROR", "http://mirror.example/debian")
    after = [tag(), tag(mode="emulate"), tag(packages=["zlib1g-dev"])]
    assert all(a != b for a, b in zip(before, after, strict=True))


def test_a_new_build_logic_version_changes_every_tag(monkeypatch):
    before = [images.runtime_def(targets.get("rpi3")).tag, tag(), tag(packages=["zlib1g-dev"])]
    monkeypatch.setattr(images, "BUILD_LOGIC_VERSION", "999")
    after = [images.runtime_def(targets.get("rpi3")).tag, tag(), tag(packages=["zlib1g-dev"])]
    assert all(a != b for a, b in zip(before, after, strict=True))


def test_the_tag_hashes_the_definition_not_the_name():
    """Two definitions that differ only in what they install get different tags."""
    a = images.builder_def(pick(targets.get("rpi3"), "cross"), ("zlib1g-dev",))
    b = images.builder_def(pick(targets.get("rpi3"), "cross"), ("zlib1g-dev:armhf",))
    assert a.dockerfile == b.dockerfile and a.tag == b.tag  # the same install: the same image
    c = images.builder_def(pick(targets.get("rpi3"), "cross"), ("zlib1g-dev:amd64",))
    assert c.dockerfile != a.dockerfile and c.tag != a.tag


@pytest.mark.parametrize("name", ["zlib1g-dev", "libssl-dev", "g++", "libstdc++-12-dev", "python3.11-dev",
                                  "libssl-dev:armhf", "ab"])
def test_valid_package_names(name):
    assert name in images.builder_def(pick(targets.get("rpi3"), "emulate"), (name,)).dockerfile


@pytest.mark.parametrize("name", ["", "a", "Zlib", "-dash-first", "zlib1g-dev; rm -rf /", "zlib1g-dev && curl x",
                                  "$(id)", "`id`", "zlib1g dev", "zlib\n-dev", "libssl-dev:armhf:x",
                                  "libssl-dev:", "pkg=1.0", "../etc", "pkg/sub"])
def test_invalid_package_names_are_a_config_error(name):
    with pytest.raises(ConfigError) as exc:
        images.builder_def(pick(targets.get("rpi3"), "cross"), ("zlib1g-dev", name))
    assert repr(name) in exc.value.message and exc.value.exit_code == 6
    assert "zlib1g-dev" in exc.value.hint


@pytest.mark.parametrize("target, arch", [("rpi3", "armhf"), ("armel", "armel"), ("rpi4", "arm64"),
                                          ("riscv64", "riscv64")])
def test_cross_mode_installs_the_targets_packages_through_multiarch(target, arch):
    t = targets.get(target)
    deps = images.builder_def(pick(t, "cross"), ("zlib1g-dev", "libssl-dev", "pkgconf:amd64"))
    install = deps.dockerfile.splitlines()[-1]
    assert install.endswith(f"libssl-dev:{arch} pkgconf:amd64 zlib1g-dev:{arch} "
                            "&& apt-get clean && rm -rf /var/lib/apt/lists/*")
    builder = deps.parent
    assert builder.kind == "builder" and deps.dockerfile.startswith(f"FROM {builder.tag}\n")
    assert f"dpkg --add-architecture {arch} &&" in builder.dockerfile
    assert f"crossbuild-essential-{arch}" in builder.dockerfile and f"libc6-dev:{arch}" in builder.dockerfile
    # a cross builder is a host-arch image on a host-arch base, whatever the target
    assert builder.platform == builder.parent.platform == "linux/amd64"
    assert builder.parent.kind == "base" and builder.parent.arch == "amd64"
    assert dict(deps.labels) == {"org.xbuild.kind": "deps", "org.xbuild.arch": arch, "org.xbuild.mode": "cross"}


def test_emulate_mode_installs_native_names_in_a_target_arch_image():
    t = targets.get("rpi3")
    deps = images.builder_def(pick(t, "emulate"), ("zlib1g-dev",))
    assert deps.dockerfile.splitlines()[-1].startswith("RUN apt-get update -q && apt-get install -y -q "
                                                       "--no-install-recommends zlib1g-dev &&")
    builder = deps.parent
    assert "--add-architecture" not in builder.dockerfile and "crossbuild-essential" not in builder.dockerfile
    assert builder.platform == "linux/arm/v7" and builder.parent == images.runtime_def(t)
    assert "useradd --create-home --uid 1000" in builder.dockerfile  # builds run as uid 1000


def test_no_packages_is_the_builder_itself():
    t = targets.get("rpi3")
    assert images.builder_def(pick(t, "cross")) == images.builder_def(pick(t, "cross"), ())
    assert images.builder_def(pick(t, "cross")).kind == "builder"

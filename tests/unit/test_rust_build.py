"""pipeline/rust.py and recipes/cargo.toml: what a Rust project's build is made of before any
container runs (detection, the image's Rust layer, the crates step's /xbuild/cargo); the builds
themselves are tests/integration/test_rust.py's."""

from __future__ import annotations

import pytest

from tests.helpers import make_project
from xbuild.errors import ConfigError, CratesNotLocked
from xbuild.pipeline import build, rust
from xbuild.pipeline import spec as specs
from xbuild.pipeline.context import NO_CACHE, BuildContext
from xbuild.pipeline.observer import NullObserver
from xbuild.project import recipes
from xbuild.request import BuildRequest, Mode

CARGO = '[package]\nname = "app"\nversion = "0.3.1"\nedition = "2021"\n'
PYPROJECT = '[build-system]\nrequires = ["maturin"]\nbuild-backend = "maturin"\n'


@pytest.mark.parametrize("files,recipe", [
    ({"Cargo.toml": CARGO, "Makefile": "all:\n", "CMakeLists.txt": "project(x)\n"}, "cargo"),
    ({"Cargo.toml": '[workspace]\nmembers = ["a"]\n'}, "cargo"),
    ({"Cargo.toml": CARGO, "pyproject.toml": PYPROJECT}, "python"),  # a maturin package is a wheel
    ({"Cargo.toml": "# nothing\n", "Makefile": "all:\n"}, "make"),
])
def test_a_cargo_project_is_detected_by_its_package_or_workspace(tmp_path, files, recipe):
    assert recipes.detect(make_project(tmp_path / "p", files)).name == recipe


def _context(tmp_path, files: dict, target: str = "rpi3", mode: Mode = Mode.CROSS) -> BuildContext:
    project = make_project(tmp_path / "p", files)
    ctx = BuildContext(specs.resolve(project, BuildRequest(target, mode=mode)), NullObserver(),
                       NO_CACHE, {}, False, False)
    ctx.work = tmp_path / "work"
    ctx.work.mkdir()
    return ctx


def test_the_image_tag_carries_the_releases_rustc_and_the_armv6_layer_builds_the_std(tmp_path):
    # with xbuild.toml's packages, on top of the Rust layer
    top = build.builder_def(_context(tmp_path / "a", {"Cargo.toml": CARGO,
                                                      "xbuild.toml": '[build]\npackages = ["zlib1g-dev"]\n'}).spec)
    rpi3 = top.parent
    assert rpi3 is not None and rpi3.dockerfile is not None and "zlib1g-dev:armhf" in (top.dockerfile or "")
    assert "rust-armv7-1.85.1-" in rpi3.tag and "rustc=1.85.1+" in rpi3.dockerfile
    assert "libstd-rust-dev:armhf" in rpi3.dockerfile and "Zbuild-std" not in rpi3.dockerfile
    rpi0 = build.builder_def(_context(tmp_path / "b", {"Cargo.toml": CARGO}, "rpi0").spec)
    assert "rust-arm-1.85.1-" in rpi0.tag and "-Zbuild-std=std,panic_abort" in rpi0.dockerfile
    assert "apt-helper download-file" in rpi0.dockerfile and "target-cpu=arm1176jzf-s" in rpi0.dockerfile
    jetson = build.builder_def(_context(tmp_path / "c", {"Cargo.toml": CARGO}, "jetson-nano").spec)
    assert "rustc-web=1.78.0+" in jetson.dockerfile and "libstd-rust-web-dev:arm64" in jetson.dockerfile


def test_emulate_mode_is_refused_before_any_work(tmp_path):
    with pytest.raises(ConfigError, match="cross mode"):
        build.builder_def(_context(tmp_path, {"Cargo.toml": CARGO}, mode=Mode.EMULATE).spec)


def test_the_crates_step_writes_cargo_home_env_and_records_the_version(tmp_path):
    ctx = _context(tmp_path, {"Cargo.toml": CARGO, "src/main.rs": "fn main() {}\n"})
    assert ctx.spec.version == "0.3.1" and ctx.spec.recipe.kind == "cargo"
    rust.crates(ctx)
    home = ctx.payload["cargo"] / "home" / "config.toml"
    assert home.read_text() == ""  # no dependencies: no source replacement
    env = (ctx.payload["cargo"] / "env.sh").read_text()
    assert "export XBUILD_CARGO_LOCK=--offline" in env  # no lock: cargo writes it
    assert "PKG_CONFIG_armv7_unknown_linux_gnueabihf=arm-linux-gnueabihf-pkg-config" in env
    assert "--remap-path-prefix=$XBUILD_SRC=/build" in env
    assert ctx.sections["cargo"]["crates_source"] == "none"


def test_dependencies_without_a_lock_are_refused_with_the_way_out(tmp_path):
    ctx = _context(tmp_path, {"Cargo.toml": CARGO + '\n[dependencies]\nlibc = "0.2"\n'})
    with pytest.raises(CratesNotLocked, match="no Cargo.lock") as exc:
        rust.crates(ctx)
    assert "cargo generate-lockfile" in (exc.value.hint or "")


def test_a_vendored_project_is_not_fetched_even_with_git_dependencies(tmp_path):
    ctx = _context(tmp_path, {
        "Cargo.toml": CARGO + '\n[dependencies]\nfoo = { git = "https://example.com/foo" }\n',
        "Cargo.lock": 'version = 3\n\n[[package]]\nname = "foo"\nversion = "0.1.0"\n'
                      'source = "git+https://example.com/foo#0123456789abcdef"\n',
        ".cargo/config.toml": '[source."git+https://example.com/foo"]\ngit = "https://example.com/foo"\n'
                              'replace-with = "vendored-sources"\n\n[source.vendored-sources]\ndirectory = "vendor"\n'})
    rust.crates(ctx)
    assert "XBUILD_CARGO_LOCK=--frozen" in (ctx.payload["cargo"] / "env.sh").read_text()
    assert "crates" not in ctx.payload and ctx.sections["cargo"]["crates_source"] == "vendored"

"""project/crates.py: a Cargo project's locked crates fetched on the host from a registry (a real
HTTP server on this machine), checked against the lock before anything is kept, unpacked safely."""

import hashlib
import json

import pytest

from tests.helpers import make_project, serve, tgz
from xbuild.errors import CrateFetchFailed, CratesNotLocked
from xbuild.project import crates

CRATES_IO = crates.CRATES_IO


def _crate_file(name: str, version: str, extra: dict | None = None, evil: str | None = None) -> bytes:
    top = f"{name}-{version}"
    return tgz({f"{top}/Cargo.toml": f'[package]\nname = "{name}"\nversion = "{version}"\n',
                f"{top}/src/lib.rs": "pub fn f() -> u32 { 7 }\n", **(extra or {})}, evil=evil)


def _lock(entries: list[tuple[str, str, str, str | None]]) -> str:
    out = ["version = 3\n"]
    for name, version, source, checksum in entries:
        out.append(f'[[package]]\nname = "{name}"\nversion = "{version}"\nsource = "{source}"\n'
                   + (f'checksum = "{checksum}"\n' if checksum else "") + "\n")
    return "".join(out)


@pytest.fixture
def registry(tmp_path, monkeypatch):
    """A registry folder served over HTTP, XBUILD_CARGO_REGISTRY pointing at it."""
    root = tmp_path / "registry"
    root.mkdir()
    with serve(root) as (url, _log):
        monkeypatch.setenv(crates.REGISTRY, url)
        yield root


def _publish(root, name, version, data: bytes) -> str:
    (root / name).mkdir(exist_ok=True)
    (root / name / f"{name}-{version}.crate").write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def test_locked_crates_are_fetched_checked_cached_and_unpacked_as_a_directory_source(tmp_path, registry):
    sha = _publish(registry, "tiny", "1.2.3", _crate_file("tiny", "1.2.3"))
    project = make_project(tmp_path / "p", {"Cargo.lock": _lock([
        ("p", "0.1.0", "", None), ("tiny", "1.2.3", CRATES_IO, sha)]).replace('source = ""\n', "")})
    locked = crates.locked(project)
    assert locked == [crates.Crate("tiny", "1.2.3", sha)]  # the project itself is not fetched
    cache, dest = tmp_path / "cache", tmp_path / "dest"
    crates.fetch(locked, cache, dest)
    assert (dest / "tiny-1.2.3" / "src" / "lib.rs").is_file()
    assert json.loads((dest / "tiny-1.2.3" / ".cargo-checksum.json").read_text()) == {"package": sha, "files": {}}
    assert [p.name for p in cache.iterdir()] == [f"{sha}.crate"]
    # from the cache now: the registry may be gone
    (registry / "tiny" / "tiny-1.2.3.crate").unlink()
    crates.fetch(locked, cache, tmp_path / "again")
    assert (tmp_path / "again" / "tiny-1.2.3" / "Cargo.toml").is_file()


def test_a_crate_whose_checksum_is_not_the_locks_is_refused_and_nothing_is_kept(tmp_path, registry):
    _publish(registry, "tiny", "1.0.0", _crate_file("tiny", "1.0.0"))
    cache, dest = tmp_path / "cache", tmp_path / "dest"
    with pytest.raises(CrateFetchFailed) as exc:
        crates.fetch([crates.Crate("tiny", "1.0.0", "0" * 64)], cache, dest)
    assert "Cargo.lock says" in exc.value.message and exc.value.exit_code == 44
    assert list(cache.iterdir()) == [] and list(dest.iterdir()) == []


def test_a_crate_larger_than_the_bound_is_refused(tmp_path, registry, monkeypatch):
    data = _crate_file("big", "1.0.0", {"big-1.0.0/blob": "x" * 100_000})
    sha = _publish(registry, "big", "1.0.0", data)
    monkeypatch.setattr(crates, "MAX_CRATE", len(data) // 2)
    with pytest.raises(CrateFetchFailed, match="larger than"):
        crates.fetch([crates.Crate("big", "1.0.0", sha)], tmp_path / "cache", tmp_path / "dest")
    assert list((tmp_path / "cache").iterdir()) == []


def test_a_crate_missing_from_the_registry_says_so(tmp_path, registry):
    with pytest.raises(CrateFetchFailed, match="has no nothere-1.0.0"):
        crates.fetch([crates.Crate("nothere", "1.0.0", "a" * 64)], tmp_path / "cache", tmp_path / "dest")


@pytest.mark.parametrize("evil", ["../escape.rs", "tiny-1.0.0/../../escape.rs", "/etc/evil", "other-9.9.9/x"])
def test_a_crate_tarball_that_leaves_its_folder_is_refused(tmp_path, registry, evil):
    sha = _publish(registry, "tiny", "1.0.0", _crate_file("tiny", "1.0.0", evil=evil))
    with pytest.raises(CrateFetchFailed, match="tiny-1.0.0"):
        crates.fetch([crates.Crate("tiny", "1.0.0", sha)], tmp_path / "cache", tmp_path / "dest")
    assert not (tmp_path / "escape.rs").exists() and not list((tmp_path / "dest").iterdir())


def test_git_and_other_registries_are_refused_with_the_advice_to_vendor(tmp_path):
    git = make_project(tmp_path / "g", {"Cargo.lock": _lock([
        ("dep", "0.1.0", "git+https://example.com/dep.git#abc", None)])})
    with pytest.raises(CratesNotLocked, match="git source") as exc:
        crates.locked(git)
    assert "cargo vendor" in (exc.value.hint or "") and exc.value.exit_code == 43
    other = make_project(tmp_path / "o", {"Cargo.lock": _lock([
        ("dep", "0.1.0", "registry+https://my.example/index", "b" * 64)])})
    with pytest.raises(CratesNotLocked, match="another registry"):
        crates.locked(other)


@pytest.mark.parametrize("name, version", [("../x", "1.0.0"), ("x", "1.0.0/../../y"), ("x", "latest")])
def test_lock_names_and_versions_that_are_not_plain_are_refused(tmp_path, name, version):
    project = make_project(tmp_path / "p", {"Cargo.lock": _lock([(name, version, CRATES_IO, "c" * 64)])})
    with pytest.raises(CratesNotLocked):
        crates.locked(project)


def test_no_lock_is_none_and_a_vendored_project_is_recognised(tmp_path):
    project = make_project(tmp_path / "p", {"Cargo.toml": "[package]\n"})
    assert crates.locked(project) is None and not crates.vendored(project)
    (project / ".cargo").mkdir()
    (project / ".cargo" / "config.toml").write_text(
        '[source.crates-io]\nreplace-with = "vendored-sources"\n\n[source.vendored-sources]\ndirectory = "vendor"\n')
    assert crates.vendored(project)


def test_a_lockless_project_needs_crates_only_for_a_dependency_it_does_not_hold(tmp_path):
    pkg = '[package]\nname = "{}"\nversion = "0.1.0"\n'
    local = make_project(tmp_path / "local", {
        "Cargo.toml": pkg.format("app") + '[dependencies]\na = { path = "a" }\n[workspace]\nmembers = ["b"]\n',
        "a/Cargo.toml": pkg.format("a") + '[target."cfg(unix)".build-dependencies]\nb = { path = "../b" }\n',
        "b/Cargo.toml": pkg.format("b")})
    assert not crates.needs_crates(local)
    (local / "b" / "Cargo.toml").write_text(pkg.format("b") + '[dev-dependencies]\nlibc = "0.2"\n')
    assert crates.needs_crates(local)  # a member's registry dependency, however deep
    outside = make_project(tmp_path / "out", {
        "Cargo.toml": pkg.format("o") + '[dependencies]\nx = { path = "../x" }\n'})
    make_project(tmp_path / "x", {"Cargo.toml": pkg.format("x")})
    assert crates.needs_crates(outside)  # not in the build's copy of the project
    glob = make_project(tmp_path / "glob", {"Cargo.toml": '[workspace]\nmembers = ["crates/*"]\n'})
    assert crates.needs_crates(glob)  # unsure: the build would need a lock to be sure

"""The compiler cache's pure parts: switch, size, namespace, store key, ccache's counter files, and
fetch/publish through a real local store (no engine)."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from xbuild import toolchain
from xbuild.board import targets
from xbuild.errors import ConfigError
from xbuild.pipeline import cache, compiler_cache, spec
from xbuild.request import BuildRequest
from xbuild.store import open_store

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hello-make"
NS = "rpi3/trixie/gcc-cross/app-0123456789abcdef"


@pytest.mark.parametrize("value, on", [("", True), ("on", True), ("1", True), ("off", False),
                                       ("0", False), ("false", False), ("No", False)])
def test_the_switch_reads_the_environment(monkeypatch, value, on):
    monkeypatch.setenv("XBUILD_COMPILER_CACHE", value)
    assert compiler_cache.enabled() is on
    assert compiler_cache.enabled(True) is True and compiler_cache.enabled(False) is False


@pytest.mark.parametrize("text, size", [("2G", 2 * 10**9), ("500M", 500 * 10**6), ("4Gi", 4 << 30),
                                        ("1.5G", 1_500_000_000), ("64k", 64_000), ("2GB", 2 * 10**9)])
def test_sizes_read_as_ccache_reads_them(text, size):
    assert compiler_cache.parse_size(text) == size


@pytest.mark.parametrize("text", ["", "big", "-1G", "0", "2X", "2 G G"])
def test_a_bad_size_is_a_config_error_with_a_hint(text):
    with pytest.raises(ConfigError) as err:
        compiler_cache.parse_size(text)
    assert "XBUILD_COMPILER_CACHE_SIZE" in err.value.message and "2G" in err.value.hint


def test_the_default_size_and_the_variable(monkeypatch):
    monkeypatch.delenv("XBUILD_COMPILER_CACHE_SIZE", raising=False)
    assert compiler_cache.size_limit() == ("2G", 2 * 10**9)
    monkeypatch.setenv("XBUILD_COMPILER_CACHE_SIZE", "300M")
    assert compiler_cache.size_limit() == ("300M", 300 * 10**6)


def _cc(target: str = "rpi3", os_release: str | None = None, mode: str = "cross", tree: Path = EXAMPLE,
        use: bool | Path = True, **kwargs):
    return compiler_cache.for_build(spec.resolve(tree, BuildRequest(target, mode=mode, os=os_release)), use, **kwargs)


def test_one_namespace_per_board_release_toolchain_and_project(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("XBUILD_COMPILER_CACHE", raising=False)
    monkeypatch.delenv("XBUILD_COMPILER_CACHE_SHARE", raising=False)
    key = compiler_cache.project_key("hello-make", str(EXAMPLE))
    seen = set()
    for os_release in ("bookworm", "trixie"):
        for mode in ("cross", "emulate"):
            cc = _cc(os_release=os_release, mode=mode)
            assert cc is not None and cc.directory == tmp_path / "xbuild" / "compiler-cache" / cc.namespace
            seen.add(cc.namespace)
    assert seen == {f"rpi3/bookworm/gcc-cross/{key}", f"rpi3/bookworm/gcc-native/{key}",
                    f"rpi3/trixie/gcc-cross/{key}", f"rpi3/trixie/gcc-native/{key}"}
    assert _cc("rpi0").namespace == f"rpi0/trixie/zig/{key}"
    with pytest.raises(ValueError):
        compiler_cache.namespace("../x", "trixie", "gcc-cross", key)
    with pytest.raises(ValueError):
        compiler_cache.namespace("rpi3", "trixie", "gcc-cross", "..")


def test_each_project_has_its_own_namespace_unless_it_opts_into_sharing(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("XBUILD_COMPILER_CACHE_SHARE", raising=False)
    import shutil
    copy = Path(shutil.copytree(EXAMPLE, tmp_path / "elsewhere" / "hello-make"))  # same name, same files
    own, other = _cc().namespace, _cc(tree=copy).namespace
    assert own != other and own.startswith("rpi3/trixie/gcc-cross/hello-make-")
    assert _cc().namespace == own  # the same project: the same cache (rebuilds hit)
    assert _cc(share=True).namespace == _cc(tree=copy, share=True).namespace == "rpi3/trixie/gcc-cross/shared"
    monkeypatch.setenv("XBUILD_COMPILER_CACHE_SHARE", "1")
    assert _cc(tree=copy).namespace.endswith("/shared") and _cc(share=False).namespace == own
    # the farm names the project itself (the tenant is in the store key)
    assert _cc(use=tmp_path / "job", project="p-1").namespace == "rpi3/trixie/gcc-cross/p-1"
    # a project key is a plain segment whatever the folder is called, and never "shared"
    for label in ("shared", "..", "a/b", "-x", "é" * 80, ""):
        key = compiler_cache.project_key(label, "/somewhere")
        assert compiler_cache.namespace("rpi3", "trixie", "gcc-cross", key) and key != "shared"


def test_off_or_a_directory(monkeypatch, tmp_path):
    assert _cc(use=False) is None
    monkeypatch.setenv("XBUILD_COMPILER_CACHE", "off")
    assert _cc() is None
    # a farm worker's job-private directory is used as given (the worker's switch was read before)
    assert _cc(use=tmp_path).directory == tmp_path


def test_the_environment_keeps_outputs_identical():
    env = compiler_cache.CompilerCache(NS, Path("/x")).environment()
    assert env["CCACHE_DIR"] == compiler_cache.MOUNT and env["XBUILD_CCACHE"] == "ccache"
    assert "CCACHE_BASEDIR" not in env  # it rewrites the compiler's arguments: outputs would differ
    assert env["CCACHE_NOHASHDIR"] == "1" and "locale" in env["CCACHE_SLOPPINESS"]
    assert env["CCACHE_UMASK"] == "000"


def test_the_shims_go_through_ccache_only_when_it_is_set():
    for name, mode in (("rpi3", "cross"), ("rpi3", "emulate"), ("rpi0", "cross")):
        t = targets.get(name)
        shims = toolchain.pick(t, mode).shims()
        for rel in ("bin/gcc", "bin/g++", f"bin/{t.triple}-gcc"):
            assert "exec $XBUILD_CCACHE /" in shims[rel], (name, mode, rel)
        assert "XBUILD_CCACHE" not in shims.get("bin/ar", "")


def test_the_build_cache_key_does_not_depend_on_the_compiler_cache(monkeypatch):
    s = spec.resolve(EXAMPLE, BuildRequest("rpi3"))
    monkeypatch.setenv("XBUILD_COMPILER_CACHE", "off")
    off = cache.key(spec.resolve(EXAMPLE, BuildRequest("rpi3")), "src", "img")
    monkeypatch.setenv("XBUILD_COMPILER_CACHE", "on")
    assert cache.key(s, "src", "img") == off
    assert "ccache" not in str(s.options()).lower()  # nor the options the manifest records


def _stats(path: Path, values: dict[int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    row = [0] * 80
    for i, v in values.items():
        row[i] = v
    path.write_text("\n".join(map(str, row)) + "\n")


def test_counters_sum_ccaches_stats_files(tmp_path):
    # indices as ccache 4 writes them: 22 direct hit, 8 preprocessed hit, 4 miss
    _stats(tmp_path / "0" / "stats", {22: 3, 4: 1})
    _stats(tmp_path / "0" / "a" / "stats", {8: 2, 4: 5, 11: 7})
    (tmp_path / "1").mkdir()
    (tmp_path / "1" / "stats").write_text("0\n0\n")  # short: an older ccache's
    (tmp_path / "2").mkdir()
    (tmp_path / "2" / "stats").write_text("garbage\n")  # half-written: skipped
    assert compiler_cache.counters(tmp_path) == (5, 6)
    assert compiler_cache.counters(tmp_path / "missing") == (0, 0)


def test_namespaces_filter_by_board_and_release(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    p = "app-0123456789abcdef"
    for ns in (f"rpi3/trixie/gcc-cross/{p}", f"rpi3/bookworm/gcc-cross/{p}", "rpi0/trixie/zig/shared",
               "rpi3/trixie/gcc-cross/0"):  # not a namespace: ccache's own directory, of an old layout
        (compiler_cache.root() / ns).mkdir(parents=True)
    assert compiler_cache.namespaces() == ["rpi0/trixie/zig/shared", f"rpi3/bookworm/gcc-cross/{p}",
                                           f"rpi3/trixie/gcc-cross/{p}"]
    assert compiler_cache.namespaces("rpi3") == [f"rpi3/bookworm/gcc-cross/{p}", f"rpi3/trixie/gcc-cross/{p}"]
    assert compiler_cache.namespaces(os_release="trixie") == ["rpi0/trixie/zig/shared",
                                                             f"rpi3/trixie/gcc-cross/{p}"]


def test_store_keys_are_per_tenant_and_plain():
    assert compiler_cache.store_key("ab12", NS) == f"compiler-cache/ab12/{NS}.tar"
    assert compiler_cache.store_key("a", NS) != \
        compiler_cache.store_key("b", NS)
    for tenant in ("..", "a/b", ""):
        with pytest.raises(ValueError):
            compiler_cache.store_key(tenant, NS)


def test_publish_then_fetch_through_a_store(tmp_path):
    store = open_store((tmp_path / "store").as_uri())
    src = tmp_path / "worker1" / "ccache"
    _stats(src / "0" / "stats", {22: 1})
    (src / "0" / "ab").mkdir()
    (src / "0" / "ab" / "cdR").write_bytes(b"an object")
    (src / "lock").mkdir()
    (src / "lock" / "held").write_text("")
    lines: list[str] = []
    assert compiler_cache.publish(store, "tenant-a", NS, src, lines.append)
    dest = tmp_path / "worker2" / "ccache"
    dest.mkdir(parents=True)
    assert compiler_cache.fetch(store, "tenant-a", NS, dest, lines.append)
    assert (dest / "0" / "ab" / "cdR").read_bytes() == b"an object"
    assert not (dest / "lock").exists()  # a lock is the publishing worker's own
    assert (dest / "0" / "ab" / "cdR").stat().st_mode & 0o777 == 0o666  # the container's uid writes it
    assert (dest / "0").stat().st_mode & 0o777 == 0o777
    other = tmp_path / "worker3" / "ccache"
    other.mkdir(parents=True)
    assert not compiler_cache.fetch(store, "tenant-b", NS, other, lines.append)
    assert list(other.iterdir()) == []


def test_publish_respects_the_size_cap(tmp_path, monkeypatch):
    monkeypatch.setenv("XBUILD_COMPILER_CACHE_SIZE", "10k")
    store = open_store((tmp_path / "store").as_uri())
    src = tmp_path / "ccache"
    (src / "0").mkdir(parents=True)
    (src / "0" / "big").write_bytes(b"x" * 20_000)
    lines: list[str] = []
    assert not compiler_cache.publish(store, "t", NS, src, lines.append)
    assert not store.exists(compiler_cache.store_key("t", NS))
    assert "not published" in lines[-1]


def test_an_unsafe_cache_archive_is_not_used(tmp_path):
    store = open_store((tmp_path / "store").as_uri())
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        link = tarfile.TarInfo("0/escape")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc"
        tar.addfile(link)
    store.write(compiler_cache.store_key("t", NS), buf.getvalue())
    dest = tmp_path / "w" / "ccache"
    dest.mkdir(parents=True)
    lines: list[str] = []
    assert not compiler_cache.fetch(store, "t", NS, dest, lines.append)
    assert not dest.exists() or list(dest.iterdir()) == []
    assert "not used" in lines[-1]


def test_a_fetched_cache_keeps_no_link(tmp_path):
    """Links that stay inside the tree pass the extractor; none is left for chmod to follow."""
    store = open_store((tmp_path / "store").as_uri())
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = tarfile.TarInfo("0/ab/cdR")
        data.size = 9
        tar.addfile(data, io.BytesIO(b"an object"))
        link = tarfile.TarInfo("0/ab/efR")
        link.type, link.linkname = tarfile.SYMTYPE, "cdR"
        tar.addfile(link)
    store.write(compiler_cache.store_key("t", NS), buf.getvalue())
    dest = tmp_path / "w" / "ccache"
    dest.mkdir(parents=True)
    assert compiler_cache.fetch(store, "t", NS, dest, lambda line: None)
    assert sorted(p.name for p in (dest / "0" / "ab").iterdir()) == ["cdR"]


def test_counters_follow_no_link_and_open_no_fifo(tmp_path):
    """The build container writes the tree: a FIFO would hang a plain read, a link would read
    the host's files."""
    _stats(tmp_path / "0" / "stats", {22: 1})
    os.mkfifo(tmp_path / "0" / "a", 0o666)  # not a directory: skipped
    (tmp_path / "1").mkdir()
    os.mkfifo(tmp_path / "1" / "stats")
    (tmp_path / "2").mkdir()
    (tmp_path / "2" / "stats").symlink_to(tmp_path / "0" / "stats")
    (tmp_path / "3").symlink_to(tmp_path / "0")
    assert compiler_cache.counters(tmp_path) == (1, 0)


@pytest.mark.parametrize("host, cached", [(None, True), ("unix:///var/run/docker.sock", True),
                                          ("tcp://10.0.0.5:2376", False), ("ssh://me@build", False)])
def test_a_remote_engine_gets_no_mount(monkeypatch, host, cached):
    if host is None:
        monkeypatch.delenv("DOCKER_HOST", raising=False)
    else:
        monkeypatch.setenv("DOCKER_HOST", host)
    monkeypatch.delenv("XBUILD_COMPILER_CACHE", raising=False)
    assert (_cc() is not None) is cached


def test_the_open_namespace_directory_sits_behind_a_root_only_its_owner_enters(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("XBUILD_COMPILER_CACHE", raising=False)
    cc = _cc()
    compiler_cache.root().mkdir(parents=True)
    compiler_cache.root().chmod(0o755)  # as an older xbuild, or a umask, may have left it
    cc.prepare()
    assert cc.directory.stat().st_mode & 0o777 == 0o777  # the container's uid 1000 writes it
    assert compiler_cache.root().stat().st_mode & 0o777 == 0o700  # no other user reaches it


def _hostile_tree(root: Path, outside: Path) -> None:
    """What a build can leave in /ccache: ccache's files, and a FIFO, a socket, links (to a file
    and a directory outside, dangling), and directories nested far deeper than ccache nests."""
    import socket
    _stats(root / "1" / "stats", {22: 1})
    (root / "1" / "ab").mkdir()
    (root / "1" / "ab" / "cdR").write_bytes(b"an object")
    (root / "2").mkdir()
    os.mkfifo(root / "2" / "stats")
    sock, cwd = socket.socket(socket.AF_UNIX), os.getcwd()
    try:  # bound by a relative name: a test's directory can be longer than a socket's address
        os.chdir(root / "1")
        sock.bind("sock")
    finally:
        os.chdir(cwd)
        sock.close()
    (root / "1" / "ab" / "efR").symlink_to(outside / "secret")
    (root / "3").symlink_to(outside)
    (root / "4").symlink_to("/nonexistent")
    fd = os.open(root, os.O_RDONLY)
    try:  # 3000 levels: past Python's recursion limit, and past PATH_MAX as one path
        for _ in range(3000):
            os.mkdir("d", dir_fd=fd)
            fd, old = os.open("d", os.O_RDONLY, dir_fd=fd), fd
            os.close(old)
        os.mkfifo("fifo", dir_fd=fd)
    finally:
        os.close(fd)


def test_scrub_leaves_only_ccaches_files_and_follows_nothing(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("the user's")
    (outside / "fifo").mkdir()
    cache_dir = tmp_path / "cache"
    _hostile_tree(cache_dir, outside)
    with pytest.raises(compiler_cache.TooDeep):  # counted without recursion, and not past a bound
        compiler_cache.usage(cache_dir)
    compiler_cache.scrub(cache_dir)
    assert compiler_cache.usage(cache_dir) == ((cache_dir / "1" / "stats").stat().st_size + 9, 2)
    left = sorted(p.relative_to(cache_dir).as_posix() for p in cache_dir.rglob("*"))
    kept_depth = ["/".join(["d"] * n) for n in range(1, 7)]  # as deep as ccache nests, emptied below
    assert left == ["1", "1/ab", "1/ab/cdR", "1/stats", "2", *kept_depth]
    assert (outside / "secret").read_text() == "the user's" and (outside / "fifo").is_dir()
    assert compiler_cache.counters(cache_dir) == (1, 0)


def test_clear_removes_any_tree_without_following_it(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("the user's")
    ns = compiler_cache.root() / NS
    ns.mkdir(parents=True)
    _hostile_tree(ns, outside)
    compiler_cache.clear(ns)
    assert not ns.exists() and ns.parent.is_dir() and list(ns.parent.iterdir()) == []
    assert (outside / "secret").read_text() == "the user's"
    compiler_cache.clear(ns)  # gone already: nothing to do


def test_the_configuration_comes_from_xbuilds_payload_only(tmp_path):
    env = compiler_cache.CompilerCache(NS, tmp_path).environment()
    assert env["CCACHE_CONFIGPATH"] == compiler_cache.CONFIG == "/xbuild/ccache.conf"
    from xbuild.toolchain import ROOT
    assert compiler_cache.CONFIG.startswith(ROOT + "/") and not compiler_cache.CONFIG.startswith(compiler_cache.MOUNT)


def test_scrub_lets_the_language_caches_nest_deeper_and_still_bounds_them(tmp_path):
    """cargo's target directory and Go's build cache live under tools/: deeper than ccache's
    own tree is theirs, past a bound it is a build's doing (the walk stays bounded)."""
    cargo = tmp_path / compiler_cache.TOOLS / "/".join(["d"] * 20)
    cargo.mkdir(parents=True)
    (cargo / "lib.rlib").write_bytes(b"x")
    too_deep = tmp_path / compiler_cache.TOOLS / "/".join(["e"] * 60)
    too_deep.mkdir(parents=True)
    ccache_deep = tmp_path / "/".join(["c"] * 10)
    ccache_deep.mkdir(parents=True)
    compiler_cache.scrub(tmp_path)
    assert (cargo / "lib.rlib").read_bytes() == b"x"
    assert not too_deep.exists() and (tmp_path / compiler_cache.TOOLS / "/".join(["e"] * 30)).is_dir()
    assert not ccache_deep.exists() and (tmp_path / "/".join(["c"] * 6)).is_dir()


def test_the_build_is_told_where_the_language_caches_go(tmp_path):
    env = compiler_cache.CompilerCache(NS, tmp_path).environment()
    assert env["XBUILD_TOOL_CACHE"] == f"{compiler_cache.MOUNT}/{compiler_cache.TOOLS}"

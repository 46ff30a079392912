"""xbuild.host.archive: deterministic tar.gz (the same tree gives the same bytes) and safe extraction."""

import gzip
import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from xbuild.errors import BadArtifact
from xbuild.host import archive

EPOCH = 1_600_000_000  # 2020-09-13
OLD = 1_000_000_000    # 2001, older than EPOCH: kept as is when clamping


def make_tree(root: Path, order: list[str], mtime: int) -> Path:
    """The same content, created in `order`, every path's mtime set to `mtime`."""
    contents = {
        "bin/app": (b"\x7fELF fake binary\n", 0o755),
        "bin/tool": (b"#!/bin/sh\necho tool\n", 0o700),
        "lib/libx.so.1": (b"library bytes\n", 0o664),
        "share/doc/README": (b"read me\n", 0o600),
        "a-b": (b"sorts between a and a/b\n", 0o644),
    }
    root.mkdir()
    for rel in order:
        data, mode = contents[rel]
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(mode)
    (root / "lib" / "libx.so").symlink_to("libx.so.1")
    for path in [*root.rglob("*"), root]:
        os.utime(path, (mtime, mtime), follow_symlinks=False)
    return root


ORDER = ["bin/app", "bin/tool", "lib/libx.so.1", "share/doc/README", "a-b"]


def members(data: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.getmembers()


def tar_bytes(members_spec) -> bytes:
    """A tar from [(name, kind, extra)]: kind in file/dir/sym/lnk/fifo/chr."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, kind, extra in members_spec:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(extra)
                tar.addfile(info, io.BytesIO(extra))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE, "lnk": tarfile.LNKTYPE,
                         "fifo": tarfile.FIFOTYPE, "chr": tarfile.CHRTYPE, "blk": tarfile.BLKTYPE}[kind]
            if kind in ("sym", "lnk"):
                info.linkname = extra
            tar.addfile(info)
    return buf.getvalue()


# --- deterministic archives ------------------------------------------------------------------

def test_same_tree_gives_identical_bytes(tmp_path):
    a = make_tree(tmp_path / "a", ORDER, EPOCH + 1000)
    b = make_tree(tmp_path / "b", list(reversed(ORDER)), EPOCH + 999_999)
    archive.write_tar_gz(a, tmp_path / "a.tar.gz", mtime=EPOCH)
    archive.write_tar_gz(b, tmp_path / "b.tar.gz", mtime=EPOCH)
    assert (tmp_path / "a.tar.gz").read_bytes() == (tmp_path / "b.tar.gz").read_bytes()
    assert archive.sha256_file(tmp_path / "a.tar.gz") == archive.sha256_file(tmp_path / "b.tar.gz")


def test_different_content_gives_different_bytes(tmp_path):
    a = make_tree(tmp_path / "a", ORDER, EPOCH + 10)
    b = make_tree(tmp_path / "b", ORDER, EPOCH + 10)
    (b / "bin" / "app").write_bytes(b"\x7fELF other binary\n")
    os.utime(b / "bin" / "app", (EPOCH + 10, EPOCH + 10))
    archive.write_tar_gz(a, tmp_path / "a.tar.gz", mtime=EPOCH)
    archive.write_tar_gz(b, tmp_path / "b.tar.gz", mtime=EPOCH)
    assert (tmp_path / "a.tar.gz").read_bytes() != (tmp_path / "b.tar.gz").read_bytes()


def test_gzip_header_has_no_timestamp_or_name(tmp_path):
    tree = make_tree(tmp_path / "t", ORDER, EPOCH + 5)
    dest = tmp_path / "named-archive.tar.gz"
    archive.write_tar_gz(tree, dest, mtime=EPOCH)
    raw = dest.read_bytes()
    assert raw[:2] == b"\x1f\x8b"
    assert raw[4:8] == b"\0\0\0\0"        # MTIME
    assert not raw[3] & 0x08               # FLG.FNAME: no file name stored
    assert b"named-archive" not in raw[:64]


def test_entries_sorted_owned_by_root_and_clamped(tmp_path):
    tree = make_tree(tmp_path / "t", ORDER, EPOCH + 1000)
    dest = tmp_path / "t.tar.gz"
    archive.write_tar_gz(tree, dest, mtime=EPOCH)
    ms = members(gzip.decompress(dest.read_bytes()))
    names = [m.name for m in ms]
    assert names == sorted(names)
    assert names == ["a-b", "bin", "bin/app", "bin/tool", "lib", "lib/libx.so", "lib/libx.so.1",
                     "share", "share/doc", "share/doc/README"]
    for m in ms:
        assert (m.uid, m.gid, m.uname, m.gname) == (0, 0, "", ""), m.name
        assert m.mtime == EPOCH, m.name


def test_older_mtimes_are_kept(tmp_path):
    tree = make_tree(tmp_path / "t", ORDER, OLD)
    os.utime(tree / "bin" / "app", (EPOCH + 50, EPOCH + 50))
    ms = {m.name: m for m in members(archive.tar_tree(tree, mtime=EPOCH))}
    assert ms["bin/app"].mtime == EPOCH
    assert ms["lib/libx.so.1"].mtime == OLD
    assert ms["share/doc/README"].mtime == OLD


def test_modes_are_normalised(tmp_path):
    tree = make_tree(tmp_path / "t", ORDER, EPOCH)
    ms = {m.name: m for m in members(archive.tar_tree(tree, mtime=EPOCH))}
    assert ms["bin/app"].mode == 0o755
    assert ms["bin/tool"].mode == 0o755       # 0700: executable -> 0755
    assert ms["lib/libx.so.1"].mode == 0o644  # 0664 -> 0644
    assert ms["share/doc/README"].mode == 0o644  # 0600 -> 0644
    assert ms["bin"].mode == 0o755 and ms["bin"].isdir()


def test_symlinks_are_kept_as_symlinks(tmp_path):
    tree = make_tree(tmp_path / "t", ORDER, EPOCH)
    ms = {m.name: m for m in members(archive.tar_tree(tree, mtime=EPOCH))}
    link = ms["lib/libx.so"]
    assert link.issym() and link.linkname == "libx.so.1"
    assert link.size == 0


def test_file_content_round_trips(tmp_path):
    tree = make_tree(tmp_path / "t", ORDER, EPOCH)
    dest = tmp_path / "t.tar.gz"
    archive.write_tar_gz(tree, dest, mtime=EPOCH)
    with tarfile.open(dest) as tar:
        assert tar.extractfile("bin/app").read() == b"\x7fELF fake binary\n"


def test_special_files_are_left_out(tmp_path):
    tree = make_tree(tmp_path / "t", ORDER, EPOCH)
    os.mkfifo(tree / "pipe")
    names = [m.name for m in members(archive.tar_tree(tree, mtime=EPOCH))]
    assert "pipe" not in names and "bin/app" in names


def test_unclamped_sets_every_mtime_to_the_epoch(tmp_path):
    tree = make_tree(tmp_path / "t", ORDER, OLD)
    os.utime(tree / "bin" / "app", (EPOCH + 50, EPOCH + 50))
    ms = members(archive.tar_tree(tree, mtime=EPOCH, clamp=False, prefix="src/"))
    assert ms and all(m.mtime == EPOCH for m in ms)


def test_prefix_directories_come_first_with_the_given_owner(tmp_path):
    tree = make_tree(tmp_path / "t", ORDER, EPOCH)
    ms = members(archive.tar_tree(tree, mtime=EPOCH, uid=1000, gid=1000, prefix="a/b/"))
    assert [m.name for m in ms[:2]] == ["a", "a/b"]
    for m in ms[:2]:
        assert m.isdir() and m.mode == 0o755 and m.mtime == EPOCH
    for m in ms:
        assert (m.uid, m.gid) == (1000, 1000), m.name
    assert all(m.name.startswith("a/b/") for m in ms[2:])
    assert "a/b/bin/app" in [m.name for m in ms]


@pytest.mark.parametrize("prefix", ["a/b", "/a/b/", "a//b/"])
def test_prefix_spellings_are_normalised(tmp_path, prefix):
    tree = make_tree(tmp_path / "t", ORDER, EPOCH)
    names = [m.name for m in members(archive.tar_tree(tree, mtime=EPOCH, prefix=prefix))]
    assert names[:2] == ["a", "a/b"]
    assert "a/b/bin/app" in names
    assert all(n in ("a", "a/b") or n.startswith("a/b/") for n in names)


def test_exclude(tmp_path):
    tree = make_tree(tmp_path / "t", ORDER, EPOCH)
    names = [m.name for m in members(archive.tar_tree(tree, mtime=EPOCH,
                                                      exclude=lambda rel: rel.startswith("share")))]
    assert not any(n.startswith("share") for n in names)
    assert "bin/app" in names


# --- safe extraction -------------------------------------------------------------------------

@pytest.mark.parametrize("spec, why", [
    ([("../evil", "file", b"x")], "unsafe path"),
    (["dir", ("dir/../../evil", "file", b"x")], "unsafe path"),
    ([("/abs", "file", b"x")], "unsafe path"),
    ([("d", "dir", None), ("d/l", "sym", "../../etc")], "out of the tree"),
    ([("l", "sym", "..")], "out of the tree"),
    ([("l", "sym", "/etc/passwd")], "out of the tree"),
    ([("h", "lnk", "../outside")], "out of the tree"),
    ([("h", "lnk", "/etc/passwd")], "out of the tree"),
    ([("f", "fifo", None)], "special"),
    ([("c", "chr", None)], "special"),
    ([("b", "blk", None)], "special"),
])
def test_unsafe_members_are_refused(tmp_path, spec, why):
    spec = [s if isinstance(s, tuple) else (s, "dir", None) for s in spec]
    data = tar_bytes(spec)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar, pytest.raises(BadArtifact, match=why):
        list(archive.safe_members(tar, "test.tar"))
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(BadArtifact) as exc:
        archive.extract(data, dest, "test.tar")
    assert exc.value.exit_code == 14
    assert "test.tar" in exc.value.message
    assert list(dest.iterdir()) == []  # refused before anything was written
    assert not (tmp_path / "evil").exists() and not (tmp_path / "outside").exists()


def test_safe_links_inside_the_tree_are_accepted(tmp_path):
    data = tar_bytes([("lib", "dir", None), ("lib/libx.so.1", "file", b"lib"),
                      ("lib/libx.so", "sym", "libx.so.1"), ("lib/up", "sym", "../lib/libx.so.1"),
                      ("lib/hard", "lnk", "lib/libx.so.1")])
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert len(list(archive.safe_members(tar, "t"))) == 5
    archive.extract(data, tmp_path, "t")
    assert (tmp_path / "lib" / "libx.so").read_bytes() == b"lib"
    assert os.readlink(tmp_path / "lib" / "libx.so") == "libx.so.1"
    assert (tmp_path / "lib" / "up").read_bytes() == b"lib"
    assert (tmp_path / "lib" / "hard").read_bytes() == b"lib"


def test_extract_strip_drops_the_leading_dir(tmp_path):
    data = tar_bytes([("stage", "dir", None), ("stage/install", "dir", None),
                      ("stage/install/bin", "dir", None), ("stage/install/bin/app", "file", b"app"),
                      ("stage/install/bin/app2", "lnk", "stage/install/bin/app"),
                      ("stage/install/bin/app3", "sym", "app")])
    dest = tmp_path / "out"
    dest.mkdir()
    archive.extract(data, dest, "build output", strip="stage")
    assert (dest / "install" / "bin" / "app").read_bytes() == b"app"
    assert (dest / "install" / "bin" / "app2").read_bytes() == b"app"
    assert os.readlink(dest / "install" / "bin" / "app3") == "app"
    assert not (dest / "stage").exists()


def test_extract_strip_checks_links_as_extracted(tmp_path):
    # "stage/x -> ../y" stays inside the archive's tree, but once "stage/" is dropped the link
    # is "x -> ../y", which points out of the destination
    data = tar_bytes([("stage", "dir", None), ("stage/x", "sym", "../y")])
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(BadArtifact, match="out of the tree"):
        archive.extract(data, dest, "build output", strip="stage")
    assert not (dest / "x").is_symlink()


def test_extract_refuses_a_chain_of_links_leaving_the_tree(tmp_path):
    # each link alone looks inside the tree; together x/out resolves to dest/..
    data = tar_bytes([("x", "dir", None), ("x/up", "sym", ".."), ("x/out", "sym", "up/..")])
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(BadArtifact):
        archive.extract(data, dest, "test.tar")
    assert not (dest / "x" / "out").is_symlink()


def test_extract_from_a_tar_gz_file(tmp_path):
    tree = make_tree(tmp_path / "t", ORDER, EPOCH)
    art = tmp_path / "t.tar.gz"
    archive.write_tar_gz(tree, art, mtime=EPOCH)
    dest = tmp_path / "unpacked"
    dest.mkdir()
    archive.extract(art, dest, str(art))
    assert (dest / "bin" / "app").read_bytes() == b"\x7fELF fake binary\n"
    assert os.readlink(dest / "lib" / "libx.so") == "libx.so.1"
    assert stat.S_IMODE((dest / "bin" / "app").stat().st_mode) & 0o100


def test_extract_from_tar_tree_bytes_with_prefix(tmp_path):
    tree = make_tree(tmp_path / "t", ORDER, EPOCH)
    data = archive.tar_tree(tree, mtime=EPOCH, prefix="stage/")
    dest = tmp_path / "unpacked"
    dest.mkdir()
    archive.extract(data, dest, "t", strip="stage")
    assert (dest / "share" / "doc" / "README").read_bytes() == b"read me\n"


def test_non_archive_is_bad_artifact(tmp_path):
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"this is not an archive at all\n" * 10)
    with pytest.raises(BadArtifact, match="not a readable archive"):
        archive.extract(junk, tmp_path / "dest", "junk.tar.gz")
    with pytest.raises(BadArtifact):
        archive.extract(b"garbage bytes" * 50, tmp_path, "bytes")


def test_missing_archive_is_bad_artifact(tmp_path):
    with pytest.raises(BadArtifact):
        archive.extract(tmp_path / "nope.tar.gz", tmp_path, "nope.tar.gz")


def test_sha256_file(tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"abc")
    assert archive.sha256_file(f) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_a_hard_link_is_extracted_after_its_file_and_refused_before_it(tmp_path):
    def tar_of(order):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for name in order:
                info = tarfile.TarInfo(name)
                if name == "b":
                    info.type, info.linkname = tarfile.LNKTYPE, "a"
                    tar.addfile(info)
                else:
                    info.size = 5
                    tar.addfile(info, io.BytesIO(b"hello"))
        return buf.getvalue()
    archive.extract(tar_of(["a", "b", "c"]), tmp_path / "ok", "t")
    assert (tmp_path / "ok" / "b").read_text() == "hello" and (tmp_path / "ok" / "c").is_file()
    with pytest.raises(BadArtifact, match="comes before its file"):
        archive.extract(tar_of(["b", "a", "c"]), tmp_path / "bad", "t")


def test_gzip_members_concatenated_are_one_archive(tmp_path):
    """RFC 1952: gzip members one after another are one gzip file (`tar xz` reads them all);
    tarfile's stream mode alone stops after the first ("unexpected end of data")."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name in ("a.txt", "b.txt"):
            info = tarfile.TarInfo(name)
            info.size = 5
            tar.addfile(info, io.BytesIO(b"hello"))
    raw = buf.getvalue()
    upload = tmp_path / "s.tar.gz"  # split inside a.txt's content: b.txt is in the second member
    upload.write_bytes(gzip.compress(raw[:700]) + gzip.compress(raw[700:]))
    seen: list[str] = []
    archive.check_upload(upload, lambda tar, m: seen.append(m.name))
    assert seen == ["a.txt", "b.txt"]
    archive.extract(upload, tmp_path / "out", "the upload")
    assert (tmp_path / "out" / "b.txt").read_bytes() == b"hello"

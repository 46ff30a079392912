"""xbuild.project.sources: what goes into the build, and the hash of its content (real files, no mocks)."""

from __future__ import annotations

import io
import os
import tarfile

import pytest

from xbuild.errors import SourceTooLarge
from xbuild.project import sources


@pytest.fixture(autouse=True)
def own_hash_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "_CACHE_DIR", tmp_path / "srchash")


def tree(root, files: dict[str, str]):
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def everything(rel):
    return False


def test_the_hash_is_of_content_not_of_mtimes_or_place(tmp_path):
    a = tree(tmp_path / "a", {"main.c": "int main;", "lib/x.h": "#define X"})
    b = tree(tmp_path / "b", {"lib/x.h": "#define X", "main.c": "int main;"})
    os.utime(b / "main.c", (1, 1))
    assert sources.tree_hash(a, everything) == sources.tree_hash(b, everything)


@pytest.mark.parametrize("change", [
    lambda p: (p / "main.c").write_text("int main2;"),
    lambda p: (p / "main.c").chmod(0o755),
    lambda p: (p / "main.c").rename(p / "other.c"),
    lambda p: (p / "empty").mkdir(),
    lambda p: (p / "link").symlink_to("main.c"),
])
def test_every_kind_of_change_changes_the_hash(tmp_path, change):
    p = tree(tmp_path / "p", {"main.c": "int main;"})
    before = sources.tree_hash(p, everything)
    change(p)
    assert sources.tree_hash(p, everything) != before


def test_the_remembered_digest_is_used_only_while_size_mtime_and_inode_hold(tmp_path):
    p = tree(tmp_path / "p", {"main.c": "one"})
    first = sources.tree_hash(p, everything)
    assert sources.tree_hash(p, everything) == first
    st = (p / "main.c").stat()
    (p / "main.c").write_text("two")  # the same size, a different mtime: read again
    os.utime(p / "main.c", ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    assert sources.tree_hash(p, everything) != first


def test_the_excluder_skips_vcs_the_default_output_and_the_out_and_its_siblings(tmp_path):
    project = tmp_path / "p"
    exclude = sources.excluder(project, project / "dist" / "rpi3", "xbuild-out")
    for rel in (".git", ".git/config", ".hg", "xbuild-out", "xbuild-out/rpi3/a.tar.gz", "dist/rpi3",
                "dist/rpi3/app.tar.gz", "dist/.rpi3.tmp-x1y2", "dist/.rpi3.old-1234", "dist/.rpi3.fetch-ab",
                "dist/rpi3.failed.log"):
        assert exclude(rel), rel
    for rel in ("src/main.c", "dist", "dist/README", "rpi3.failed.log", "src/.rpi3.tmp-x", "dist/rpi3x",
                ".github/ci.yml", "xbuild-outer"):
        assert not exclude(rel), rel


def test_an_out_outside_the_project_excludes_nothing_of_it(tmp_path):
    exclude = sources.excluder(tmp_path / "p", tmp_path / "elsewhere", "xbuild-out")
    assert not exclude("elsewhere") and not exclude(".elsewhere.tmp-1") and exclude(".git")


def test_a_tree_over_the_cap_is_refused_before_it_is_hashed(tmp_path, monkeypatch):
    p = tree(tmp_path / "p", {"main.c": "x"})
    with (p / "disk.img").open("wb") as f:
        f.truncate(3 << 20)  # sparse: counted by its apparent size
    monkeypatch.setenv("XBUILD_MAX_SOURCE_MB", "2")
    with pytest.raises(SourceTooLarge) as exc:
        sources.tree_hash(p, everything)
    assert exc.value.exit_code == 26
    assert "disk.img" in exc.value.message and "XBUILD_MAX_SOURCE_MB=2" in exc.value.message
    assert not (tmp_path / "srchash").exists()  # no digest was computed (none remembered)
    monkeypatch.setenv("XBUILD_MAX_SOURCE_MB", "4")
    assert sources.tree_hash(p, everything)
    assert (tmp_path / "srchash").is_dir()


def test_excluded_files_do_not_count_toward_the_cap(tmp_path, monkeypatch):
    p = tree(tmp_path / "p", {"main.c": "x"})
    (p / "xbuild-out").mkdir()
    with (p / "xbuild-out" / "big").open("wb") as f:
        f.truncate(3 << 20)
    monkeypatch.setenv("XBUILD_MAX_SOURCE_MB", "1")
    assert sources.tree_hash(p, sources.excluder(p, p / "xbuild-out" / "rpi3", "xbuild-out"))


def test_the_payload_is_a_streamed_tar_owned_by_the_build_user(tmp_path):
    p = tree(tmp_path / "p", {"main.c": "int main;", "xbuild-out/rpi3/old": "x"})
    (p / "run.sh").write_text("#!/bin/sh\n")
    (p / "run.sh").chmod(0o755)
    exclude = sources.excluder(p, p / "xbuild-out" / "rpi3", "xbuild-out")
    with sources.payload(p, exclude, 1234, "/work/src") as f:
        assert f.tell() == 0 and not isinstance(f, bytes)
        with tarfile.open(fileobj=f) as tar:
            members = {m.name: m for m in tar.getmembers()}
    assert sorted(members) == ["work", "work/src", "work/src/main.c", "work/src/run.sh"]
    assert {(m.uid, m.gid, m.mtime) for m in members.values()} == {(1000, 1000, 1234)}
    assert members["work/src/run.sh"].mode == 0o755 and members["work/src/main.c"].mode == 0o644
    assert f.closed  # the temporary file is gone with the block


def test_a_tar_given_as_then_continues_the_payload_as_one_archive(tmp_path):
    from xbuild.host.archive import tar_tree
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "main.c").write_text("int main(void){return 0;}\n")
    (tmp_path / "ctl").mkdir()
    (tmp_path / "ctl" / "build.sh").write_text("make\n")
    control = tar_tree(tmp_path / "ctl", mtime=0, prefix="xbuild/")
    with sources.payload(tmp_path / "proj", lambda rel: False, 0, then=control) as f:
        data = f.read()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:  # read to the first end-of-archive only
        members = {m.name: m for m in tar.getmembers()}
        assert tar.extractfile(members["xbuild/build.sh"]).read() == b"make\n"
        assert tar.extractfile(members["xbuild/src/main.c"]).read().startswith(b"int main")

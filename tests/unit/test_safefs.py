"""safefs and paths.component: the one place for host file operations on project-shaped paths, and
the one check of a name that becomes a path (tests/security/README.md)."""

from __future__ import annotations

import os

import pytest

from xbuild.errors import LinkInOutputPath, UnsafeName, UnsafeProjectFile
from xbuild.host import safefs
from xbuild.host.paths import component, is_component, under


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "../x", ".hidden", "-rf", "x\ny", "x\x1b", "é",
                                  "a" * 256, None, 3])
def test_a_name_that_is_no_plain_component_is_refused(name):
    assert not is_component(name)
    with pytest.raises(UnsafeName):
        component(name, "a test name")


@pytest.mark.parametrize("name", ["rpi3", "bookworm", "gcc-cross", "x_0~1_armhf.deb", "v1.2+b3", "a" * 255])
def test_plain_names_pass_unchanged(name, tmp_path):
    assert component(name) == name and under(tmp_path, name) == tmp_path / name


def test_physical_refuses_a_link_at_the_end_and_inside_the_project_only(tmp_path):
    project, outside = tmp_path / "p", tmp_path / "elsewhere"
    (project / "real").mkdir(parents=True)
    outside.mkdir()
    (project / "in").symlink_to(outside)
    (tmp_path / "mine").symlink_to(project)  # the user's own link, above the project
    assert safefs.physical(tmp_path / "mine" / "real" / "out", project) == project / "real" / "out"
    with pytest.raises(LinkInOutputPath, match="inside the project"):
        safefs.physical(project / "in" / "out", project)
    with pytest.raises(LinkInOutputPath, match="is a symbolic link"):
        safefs.physical(project / "in", project)


def test_write_replacing_replaces_a_link_and_leaves_its_target(tmp_path):
    (tmp_path / "victim").write_text("the user's")
    (tmp_path / "log").symlink_to(tmp_path / "victim")
    safefs.write_text(tmp_path / "log", "ours")
    assert not (tmp_path / "log").is_symlink() and (tmp_path / "log").read_text() == "ours"
    assert (tmp_path / "victim").read_text() == "the user's"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log", "victim"]  # no temporary left


def test_reads_refuse_links_fifos_and_size(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "big").write_bytes(b"x" * 100)
    (tmp_path / "link").symlink_to(tmp_path / "big")
    with pytest.raises(OSError):
        safefs.read_prefix(tmp_path / "fifo", 10)  # refused, not blocked on
    with pytest.raises(OSError):
        safefs.read_prefix(tmp_path / "link", 10)
    assert safefs.read_prefix(tmp_path / "big", 10) == b"x" * 10
    with pytest.raises(UnsafeProjectFile, match="larger than"):
        safefs.read_project_file(tmp_path / "big", "a file", limit=50)
    with pytest.raises(UnsafeProjectFile, match="FIFO"):
        safefs.read_project_file(tmp_path / "fifo", "a file")


def test_walk_goes_deeper_than_the_recursion_limit(tmp_path):
    fd = os.open(tmp_path, os.O_RDONLY)
    for _ in range(1200):
        os.mkdir("d", dir_fd=fd)
        fd, old = os.open("d", os.O_RDONLY, dir_fd=fd), fd
        os.close(old)
    os.close(fd)
    assert sum(1 for _ in safefs.walk(tmp_path)) == 1201
    safefs.remove_tree(tmp_path / "d")  # not left to pytest's clean-up, which recurses


def test_remove_tree_removes_any_depth_and_follows_no_link(tmp_path):
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "file").write_text("the user's")
    root = tmp_path / "tree"
    root.mkdir()
    (root / "link").symlink_to(keep)
    fd = os.open(root, os.O_RDONLY)
    for _ in range(1200):
        os.mkdir("d", dir_fd=fd)
        fd, old = os.open("d", os.O_RDONLY, dir_fd=fd), fd
        os.close(old)
    os.close(fd)
    safefs.remove_tree(root)
    assert not root.exists() and (keep / "file").read_text() == "the user's"

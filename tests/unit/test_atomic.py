"""xbuild.host.atomic: an output directory changes all at once, or not at all, and only a directory
xbuild made (or an empty one) is ever replaced."""

import json

import pytest

from xbuild.errors import LinkInOutputPath, OutputDirInUse
from xbuild.host.atomic import MARKER, check_out, remove_made, replacing


def made_by_xbuild(dest, *names):
    dest.mkdir(parents=True)
    (dest / MARKER).write_text("x")
    for name in names:
        (dest / name).write_text(name)
    return dest


def test_replacing_swaps_in_the_new_contents(tmp_path):
    dest = made_by_xbuild(tmp_path / "out", "old.txt")
    with replacing(dest) as tmp:
        (tmp / "new.txt").write_text("new")
        assert (dest / "old.txt").exists()  # readers still see the old contents meanwhile
    assert sorted(p.name for p in dest.iterdir()) == [MARKER, "new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # nothing left beside it


def test_a_failure_leaves_the_old_contents_and_no_debris(tmp_path):
    dest = made_by_xbuild(tmp_path / "out", "old.txt")
    with pytest.raises(RuntimeError), replacing(dest) as tmp:
        (tmp / "half.txt").write_text("half")
        raise RuntimeError("interrupted")
    assert sorted(p.name for p in dest.iterdir()) == [MARKER, "old.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_new_destination_is_created_and_marked(tmp_path):
    dest = tmp_path / "a" / "b"
    with replacing(dest) as tmp:
        (tmp / "f").write_text("x")
    assert (dest / "f").read_text() == "x"
    assert (dest / MARKER).is_file()
    with replacing(dest) as tmp:  # and so it can be replaced next time
        (tmp / "g").write_text("y")
    assert sorted(p.name for p in dest.iterdir()) == [MARKER, "g"]


def test_an_empty_directory_is_replaced(tmp_path):
    (tmp_path / "out").mkdir()
    with replacing(tmp_path / "out") as tmp:
        (tmp / "f").write_text("x")
    assert (tmp_path / "out" / "f").is_file()


def test_a_directory_of_the_users_files_is_refused_before_anything_runs(tmp_path):
    dest = tmp_path / "mine"
    dest.mkdir()
    (dest / "thesis.tex").write_text("years of work")
    with pytest.raises(OutputDirInUse) as exc, replacing(dest):
        pytest.fail("the block must not run")
    assert exc.value.exit_code == 25
    assert str(dest) in exc.value.message and "thesis.tex" in exc.value.message
    assert [p.name for p in dest.iterdir()] == ["thesis.tex"]
    assert [p.name for p in tmp_path.iterdir()] == ["mine"]


def test_a_file_as_output_directory_is_refused(tmp_path):
    (tmp_path / "f").write_text("keep")
    with pytest.raises(OutputDirInUse, match="is a file"):
        check_out(tmp_path / "f")
    assert (tmp_path / "f").read_text() == "keep"


@pytest.mark.parametrize("where", [".", ".."])
def test_the_project_or_a_directory_above_it_is_refused(tmp_path, where):
    project = tmp_path / "proj"
    made_by_xbuild(project)  # even with a marker: the project itself is never replaced
    with pytest.raises(OutputDirInUse, match="is the project or contains it"):
        check_out(project / where, project)


def test_a_symlink_as_the_output_directory_is_refused_and_its_target_kept(tmp_path):
    """Issue 16: an output directory that is a link is refused (a project can ship one); the link
    and what it points to stay as they were."""
    real = made_by_xbuild(tmp_path / "real", "old")
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(LinkInOutputPath, match="is a symbolic link"), replacing(tmp_path / "link"):
        pass
    assert (tmp_path / "link").is_symlink() and (real / "old").is_file()


def test_an_output_of_an_xbuild_before_the_marker_is_replaced(tmp_path):
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "manifest.json").write_text(json.dumps({"xbuild": {"version": "0.1"}}))
    (dest / "hello-rpi3.tar.gz").write_bytes(b"x")
    (dest / "build.log").write_text("log")
    (dest / "SHA256SUMS").write_text("ab  hello-rpi3.tar.gz\ncd  manifest.json\n")
    check_out(dest)
    (dest / "notes.txt").write_text("the user's")  # anything else makes it the user's
    with pytest.raises(OutputDirInUse, match="notes.txt"):
        check_out(dest)


def test_a_release_directory_with_checksums_is_not_mistaken_for_an_output(tmp_path):
    dest = tmp_path / "release"
    dest.mkdir()
    (dest / "app.tar.gz").write_bytes(b"x")
    (dest / "manifest.json").write_text('{"name": "app"}')
    (dest / "SHA256SUMS").write_text("ab  app.tar.gz\n")
    with pytest.raises(OutputDirInUse):
        check_out(dest)


def test_a_stale_kept_tree_is_removed_only_when_xbuild_made_it(tmp_path):
    kept = tmp_path / "rpi4.failed"
    with replacing(kept, "failed") as tmp:  # as pipeline._keep_tree makes it
        (tmp / "config.log").write_text("checking...")
    assert remove_made(kept) and not kept.exists() and list(tmp_path.iterdir()) == []

    users = tmp_path / "rpi3.failed"  # the user's own directory of that name
    users.mkdir()
    (users / "notes.txt").write_text("mine")
    assert not remove_made(users) and (users / "notes.txt").read_text() == "mine"

    elsewhere = tmp_path / "elsewhere"
    with replacing(elsewhere, "failed") as tmp:
        (tmp / "x").write_text("x")
    link = tmp_path / "rpi0.failed"
    link.symlink_to(elsewhere)  # a link is never followed, even to a tree xbuild made
    assert not remove_made(link) and link.is_symlink() and (elsewhere / "x").exists()
    assert not remove_made(tmp_path / "absent")

"""xbuild.atomic: an output directory changes all at once, or not at all."""

import pytest

from xbuild.atomic import replacing


def test_replacing_swaps_in_the_new_contents(tmp_path):
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "old.txt").write_text("old")
    with replacing(dest) as tmp:
        (tmp / "new.txt").write_text("new")
        assert (dest / "old.txt").exists()  # readers still see the old contents meanwhile
    assert [p.name for p in dest.iterdir()] == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # nothing left beside it


def test_a_failure_leaves_the_old_contents_and_no_debris(tmp_path):
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "old.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with replacing(dest) as tmp:
            (tmp / "half.txt").write_text("half")
            raise RuntimeError("interrupted")
    assert [p.name for p in dest.iterdir()] == ["old.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_new_destination_is_created(tmp_path):
    dest = tmp_path / "a" / "b"
    with replacing(dest) as tmp:
        (tmp / "f").write_text("x")
    assert (dest / "f").read_text() == "x"

"""wheelfile.retag: a backend's wheel (named for the qemu CPU it ran on) renamed and retagged for
the board, its RECORD still true, byte for byte the same each time."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import zipfile

import pytest
from packaging.utils import parse_wheel_filename

from tests.wheelmaker import make_wheel
from xbuild.artifact import wheelfile, wheeltags
from xbuild.board import targets
from xbuild.errors import BadArtifact

BUILT = "cp313-cp313-linux_armv7l"  # what setuptools names a wheel built under QEMU_CPU=max


def record_is_true(path) -> bool:
    """Every member but RECORD is listed in RECORD with its own hash and size."""
    with zipfile.ZipFile(path) as z:
        [record] = [n for n in z.namelist() if n.endswith(".dist-info/RECORD")]
        rows = {row[0]: row[1:] for row in csv.reader(io.StringIO(z.read(record).decode()))}
        for name in z.namelist():
            if name == record:
                continue
            data = z.read(name)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            if rows.get(name) != [f"sha256={digest}", str(len(data))]:
                return False
    return True


@pytest.mark.parametrize("board,expected", [
    ("rpi0", "msgpack-1.1.0-cp313-cp313-linux_armv6l.whl"),
    ("rpi3", "msgpack-1.1.0-cp313-cp313-manylinux_2_41_armv7l.whl"),
    ("armel", "msgpack-1.1.0-cp313-cp313-linux_armv5tel.linux_armv5tejl.linux_armv6l.whl"),
])
def test_retag_names_tags_and_records(tmp_path, board, expected):
    built = make_wheel(tmp_path / "built", "msgpack", "1.1.0", BUILT, {"msgpack/_cmsgpack.so": "\x7fELF..."})
    tags = wheeltags.for_board(targets.get(board))
    out = wheelfile.retag(built, tags, tmp_path)
    assert out.name == expected and parse_wheel_filename(out.name)[3] == tags.tags
    with zipfile.ZipFile(out) as z, zipfile.ZipFile(built) as b:
        wheel = z.read("msgpack-1.1.0.dist-info/WHEEL").decode()
        assert {ln[5:] for ln in wheel.splitlines() if ln.startswith("Tag: ")} == set(map(str, tags.tags))
        assert "Root-Is-Purelib: false" in wheel and "Tag: cp313-cp313-linux_armv7l" not in wheel
        assert z.namelist() == b.namelist()
        assert z.read("msgpack/_cmsgpack.so") == b.read("msgpack/_cmsgpack.so")
    assert record_is_true(out) and record_is_true(built)


def test_retag_is_the_same_bytes_every_time(tmp_path):
    built = make_wheel(tmp_path / "built", "a", "1", BUILT, {"a/x.py": "x = 1\n" * 1000})
    tags = wheeltags.for_board(targets.get("rpi0"))
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    first, second = (wheelfile.retag(built, tags, tmp_path / d) for d in ("one", "two"))
    assert first != second and first.read_bytes() == second.read_bytes()


def test_not_a_wheel(tmp_path):
    tags = wheeltags.for_board(targets.get("rpi3"))
    (tmp_path / f"a-1-{BUILT}.whl").write_bytes(b"not a zip")
    with pytest.raises(BadArtifact, match="not a readable wheel"):
        wheelfile.retag(tmp_path / f"a-1-{BUILT}.whl", tags, tmp_path / "out")
    with pytest.raises(BadArtifact, match="not a wheel's file name"):
        wheelfile.retag(tmp_path / "a.whl", tags, tmp_path)


def test_a_wheel_without_one_dist_info_is_refused(tmp_path):
    tags = wheeltags.for_board(targets.get("rpi3"))
    built = make_wheel(tmp_path / "b", "a", "1", BUILT)
    with zipfile.ZipFile(built, "a") as z:
        z.writestr("b-1.dist-info/WHEEL", "Wheel-Version: 1.0\n")
    with pytest.raises(BadArtifact, match="2 .dist-info/WHEEL files, not one"):
        wheelfile.retag(built, tags, tmp_path)
    assert not list(tmp_path.glob("*manylinux*"))


def test_a_member_that_inflates_past_its_declared_size_is_refused(tmp_path):
    """zipfile stops at the size the directory declares and checks the CRC: a lie is an error."""
    built = make_wheel(tmp_path / "b", "a", "1", BUILT, {"a/big.py": "#" * 100_000})
    data = bytearray(built.read_bytes())
    offset = data.rfind(b"a/big.py")  # its central directory entry, whose name starts at byte 46
    data[offset - 22:offset - 18] = (1000).to_bytes(4, "little")  # the uncompressed size, at 24
    built.write_bytes(bytes(data))
    with pytest.raises(BadArtifact, match="not a readable wheel"):
        wheelfile.retag(built, wheeltags.for_board(targets.get("rpi3")), tmp_path)

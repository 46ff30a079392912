"""wheelindex: a PEP 503 simple index with PEP 658 metadata files, kept in a file:// store; wheels
are untrusted (bounded METADATA, names checked, pages escaped). pip reading it over HTTP is
tests/integration/test_wheelindex_pip.py."""

from __future__ import annotations

import hashlib
import html.parser
import os
import zipfile

import pytest

from tests.wheelmaker import make_wheel
from xbuild.errors import BadArtifact, ConfigError, StoreError
from xbuild.store import open_store, wheelindex

BASE = "wheels/rpi3-trixie"
TAG = "cp313-cp313-manylinux_2_41_armv7l"


class Links(html.parser.HTMLParser):
    """The anchors of a page: (href, attributes, text), as pip's own parser sees them."""

    def __init__(self, page: bytes):
        super().__init__()
        self.links: list[tuple[str, dict, str]] = []
        self._open: dict | None = None
        self.feed(page.decode())

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self._open = dict(attrs)

    def handle_data(self, data):
        if self._open is not None:
            self.links.append((self._open["href"], self._open, data))
            self._open = None


@pytest.fixture
def store(tmp_path):
    return open_store((tmp_path / "store").as_uri())


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_wheel_its_metadata_and_both_pages(store, tmp_path):
    wheel = make_wheel(tmp_path, "msgpack", "1.1.0", TAG, {"msgpack/__init__.py": ""},
                       metadata_extra="Requires-Python: >=3.8\n")
    page_key = wheelindex.add(store, BASE, wheel)
    assert page_key == f"{BASE}/simple/msgpack/index.html"
    folder = f"{BASE}/simple/msgpack"
    assert store.read(f"{folder}/{wheel.name}") == wheel.read_bytes()
    with zipfile.ZipFile(wheel) as z:
        metadata = z.read("msgpack-1.1.0.dist-info/METADATA")
    assert store.read(f"{folder}/{wheel.name}.metadata") == metadata  # PEP 658: the METADATA as is
    [(href, attrs, text)] = Links(store.read(page_key)).links
    assert href == f"{wheel.name}#sha256={sha(wheel.read_bytes())}" and text == wheel.name
    assert attrs["data-dist-info-metadata"] == attrs["data-core-metadata"] == f"sha256={sha(metadata)}"
    assert attrs["data-requires-python"] == ">=3.8"  # unescaped by the parser: it was escaped
    assert b"&gt;=3.8" in store.read(page_key)
    [(root_href, _, root_text)] = Links(store.read(f"{BASE}/simple/index.html")).links
    assert (root_href, root_text) == ("msgpack/", "msgpack")


def test_projects_normalized_versions_listed_and_adding_twice_is_one_link(store, tmp_path):
    for name, version in [("My_Package.x", "1.0"), ("my_package_x", "2.0"), ("PyYAML", "6.0.2")]:
        wheelindex.add(store, BASE, make_wheel(tmp_path / name, name, version, TAG))
    wheelindex.add(store, BASE, make_wheel(tmp_path / "again", "PyYAML", "6.0.2", TAG))
    root = Links(store.read(f"{BASE}/simple/index.html")).links
    assert [text for _, _, text in root] == ["my-package-x", "pyyaml"]
    mine = Links(store.read(f"{BASE}/simple/my-package-x/index.html")).links
    assert [text for _, _, text in mine] == [f"My_Package.x-1.0-{TAG}.whl", f"my_package_x-2.0-{TAG}.whl"]
    assert len(Links(store.read(f"{BASE}/simple/pyyaml/index.html")).links) == 1


def test_one_index_per_board_and_release(store, tmp_path):
    wheelindex.add(store, "wheels/rpi3-trixie", make_wheel(tmp_path / "a", "a", "1", TAG))
    wheelindex.add(store, "wheels/rpi0-trixie", make_wheel(tmp_path / "b", "b", "1", "cp313-cp313-linux_armv6l"))
    assert [t for _, _, t in Links(store.read("wheels/rpi3-trixie/simple/index.html")).links] == ["a"]
    assert [t for _, _, t in Links(store.read("wheels/rpi0-trixie/simple/index.html")).links] == ["b"]


def test_reindex_makes_lost_pages_whole(store, tmp_path):
    wheelindex.add(store, BASE, make_wheel(tmp_path, "a", "1", TAG))
    page = store.read(f"{BASE}/simple/a/index.html")
    store.write(f"{BASE}/simple/a/index.html", b"")
    store.delete(f"{BASE}/simple/index.html")
    wheelindex.reindex(store, BASE)
    assert store.read(f"{BASE}/simple/a/index.html") == page
    assert Links(store.read(f"{BASE}/simple/index.html")).links[0][2] == "a"


def test_requires_python_is_escaped(store, tmp_path):
    evil = '>=3"><script>alert(1)</script>'
    wheelindex.add(store, BASE, make_wheel(tmp_path, "a", "1", TAG, metadata_extra=f"Requires-Python: {evil}\n"))
    page = store.read(f"{BASE}/simple/a/index.html")
    assert b"<script>" not in page
    assert Links(page).links[0][1]["data-requires-python"] == evil


@pytest.mark.parametrize("metadata,message", [
    (b"Metadata-Version: 2.1\nName: other\nVersion: 1\n", r"METADATA names 'other' '1', not the file name's"),
    (b"Metadata-Version: 2.1\nName: a\nVersion: 2\n", r"names 'a' '2'"),
    (b"Metadata-Version: 2.1\nName: a\nVersion: not a version\n", r"names 'a' 'not a version'"),
])
def test_a_wheel_whose_metadata_lies_or_is_huge_is_refused(store, tmp_path, metadata, message):
    wheel = make_wheel(tmp_path, "a", "1", TAG, metadata=metadata)
    with pytest.raises(BadArtifact, match=message) as exc:
        wheelindex.add(store, BASE, wheel)
    assert exc.value.exit_code == 14 and ".whl" in exc.value.hint
    assert store.list("") == []  # nothing of it was stored


def test_metadata_is_read_with_a_bound_on_what_it_inflates_to(store, tmp_path):
    metadata = b"Metadata-Version: 2.1\nName: a\nVersion: 1\n\n" + b"x" * (64 << 20)
    wheel = make_wheel(tmp_path, "a", "1", TAG, metadata=metadata)
    assert wheel.stat().st_size < 1 << 20  # a small file that inflates to 64 MiB
    with pytest.raises(BadArtifact, match="METADATA is over 4 MiB"):
        wheelindex.add(store, BASE, wheel)
    assert store.list("") == []


@pytest.mark.parametrize("name,message", [
    ("a-1.whl", "not a wheel's file name"),
    (f"my-package-1-{TAG}.whl", "not a wheel's file name"),  # a - in the name is not escaped
    ("a-1-cp313-cp313-linux_armv7l.zip", "not a wheel's file name"),
    ("a-1-cp313-cp313-linux_armv7l.whl", "not a readable zip file"),
])
def test_not_a_wheel(store, tmp_path, name, message):
    (tmp_path / name).write_bytes(b"PK not really")
    with pytest.raises(BadArtifact, match=message):
        wheelindex.add(store, BASE, tmp_path / name)


def test_two_dist_infos_are_refused(store, tmp_path):
    wheel = make_wheel(tmp_path, "a", "1", TAG)
    with zipfile.ZipFile(wheel, "a") as z:
        z.writestr("b-1.dist-info/METADATA", "Metadata-Version: 2.1\nName: b\nVersion: 1\n")
    with pytest.raises(BadArtifact, match="2 .dist-info/METADATA files, not one"):
        wheelindex.add(store, BASE, wheel)


def test_a_link_placed_where_the_wheel_was_is_not_followed(store, tmp_path):
    real = make_wheel(tmp_path / "real", "a", "1", TAG)
    (tmp_path / real.name).symlink_to(real)
    with pytest.raises(BadArtifact, match="cannot read it as a regular file"):
        wheelindex.add(store, BASE, tmp_path / real.name)


@pytest.mark.parametrize("base", ["../up", "/abs", "a/../../b"])
def test_the_base_stays_in_the_store(store, tmp_path, base):
    with pytest.raises(ConfigError):
        wheelindex.add(store, base, make_wheel(tmp_path, "a", "1", TAG))


def test_a_sidecar_not_written_by_xbuild_stops_the_page(store, tmp_path):
    wheelindex.add(store, BASE, make_wheel(tmp_path, "a", "1", TAG))
    store.write(f"{BASE}/simple/a/a-2-{TAG}.whl.json", b'{"sha256": "../../etc"}')
    with pytest.raises(StoreError, match="is not what xbuild wrote"):
        wheelindex.reindex(store, BASE)


def test_pages_are_the_same_bytes_whatever_the_order_of_adding(tmp_path):
    wheels = [make_wheel(tmp_path / n, n, "1", TAG) for n in ("b", "a", "c")]
    pages = []
    for order in (wheels, wheels[::-1]):
        store = open_store((tmp_path / f"s{len(pages)}").as_uri())
        for w in order:
            wheelindex.add(store, BASE, w)
        pages.append([store.read(k) for k in sorted(store.list("")) if k.endswith(".html")])
    assert pages[0] == pages[1] and len(pages[0]) == 4
    assert not any(name.startswith(".tmp-") for name in os.listdir(tmp_path / "s0" / BASE / "simple"))

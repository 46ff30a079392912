"""depends.resolve on a faithful reduction of i2c-tools' tree: sbin/i2cdetect needs libi2c.so.0,
which the artifact ships as lib/libi2c.so.0.1.1 (SONAME libi2c.so.0) and the link lib/libi2c.so.0.
Real ELF files, built here with the host compiler, described as the pipeline describes them."""

import shutil

import pytest

from xbuild import artifacts, depends

LIBC = {"libc.so.6": "libc6 (>= 2.36)"}


@pytest.fixture
def i2c_tree(build, tmp_path):
    """lib/libi2c.so.0.1.1 (SONAME libi2c.so.0), lib/libi2c.so.0 -> it, sbin/i2cdetect needing it."""
    lib = build("libi2c.so.0.1.1", "gcc", "-shared", "-fPIC", "-Wl,-soname,libi2c.so.0")
    program = build("i2cdetect", "gcc", "-Wl,--no-as-needed", str(lib))
    tree = tmp_path / "tree"
    (tree / "lib").mkdir(parents=True)
    (tree / "sbin").mkdir()
    shutil.copy(lib, tree / "lib" / "libi2c.so.0.1.1")
    shutil.copy(program, tree / "sbin" / "i2cdetect")
    (tree / "lib" / "libi2c.so.0").symlink_to("libi2c.so.0.1.1")
    return tree


def _needs(tree):
    return next(f for f in artifacts.describe(tree) if f["path"] == "sbin/i2cdetect")["elf"]["needed"]


def test_the_shipped_library_is_no_dependency_and_no_warning(i2c_tree):
    assert "libi2c.so.0" in _needs(i2c_tree)  # the reduction is faithful: the name is the SONAME
    files = artifacts.describe(i2c_tree)
    assert [f["path"] for f in files] == ["lib/libi2c.so.0.1.1", "sbin/i2cdetect"]  # links unlisted
    needs, unresolved = depends.resolve(files, LIBC, artifacts.links(i2c_tree))
    assert depends.packages(needs) == ["libc6"] and unresolved == []


def test_the_libraries_soname_alone_is_enough(i2c_tree):
    (i2c_tree / "lib" / "libi2c.so.0").unlink()  # as before ldconfig ran: the SONAME says it
    files = artifacts.describe(i2c_tree)
    assert next(f for f in files if f["path"] == "lib/libi2c.so.0.1.1")["elf"]["soname"] == "libi2c.so.0"
    assert depends.resolve(files, LIBC, artifacts.links(i2c_tree))[1] == []


def test_a_link_counts_by_its_name(i2c_tree):
    """A manifest from before sonames were read: the link's name is what finds the library."""
    files = artifacts.describe(i2c_tree)
    for f in files:
        f.get("elf", {}).pop("soname", None)
    assert depends.resolve(files, LIBC, artifacts.links(i2c_tree))[1] == []
    # and without the links (the pipeline before): the false warning of issue 17
    assert depends.resolve(files, LIBC)[1] == [{"file": "sbin/i2cdetect", "soname": "libi2c.so.0"}]


@pytest.mark.parametrize("target", ["/usr/lib/libi2c.so.0.1.1", "../../outside/libi2c.so.0.1.1",
                                    "libi2c.so.0", "missing.so"])
def test_a_link_that_reaches_no_shipped_file_provides_nothing(target):
    files = [{"path": "lib/libi2c.so.0.1.1", "elf": {}}, {"path": "sbin/x", "elf": {"needed": ["libi2c.so.0"]}}]
    assert depends.shipped_names(files, {"lib/libi2c.so.0": target}) == {"libi2c.so.0.1.1", "x"}


def test_a_chain_of_links_is_followed_by_name():
    files = [{"path": "lib/arm/libz.so.1.3", "elf": {}}]
    links = {"lib/libz.so.1": "arm/libz.so", "lib/arm/libz.so": "libz.so.1.3"}
    assert depends.shipped_names(files, links) == {"libz.so.1.3", "libz.so.1", "libz.so"}

"""depends.resolve on a faithful reduction of i2c-tools' tree: sbin/i2cdetect needs libi2c.so.0,
which the artifact ships as lib/libi2c.so.0.1.1 (SONAME libi2c.so.0) and the link lib/libi2c.so.0.
Real ELF files, built here with the host compiler, described as the pipeline describes them."""

import shutil

import pytest

from xbuild.artifact import artifacts, depends

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
    needs, unresolved, *_ = depends.resolve(files, LIBC, depends.links(i2c_tree))
    assert depends.packages(needs) == ["libc6"] and unresolved == []


def test_the_libraries_soname_alone_is_enough(i2c_tree):
    (i2c_tree / "lib" / "libi2c.so.0").unlink()  # as before ldconfig ran: the SONAME says it
    files = artifacts.describe(i2c_tree)
    assert next(f for f in files if f["path"] == "lib/libi2c.so.0.1.1")["elf"]["soname"] == "libi2c.so.0"
    assert depends.resolve(files, LIBC, depends.links(i2c_tree))[1] == []


def test_a_link_counts_by_its_name(i2c_tree):
    """A manifest from before sonames were read: the link's name is what finds the library."""
    files = artifacts.describe(i2c_tree)
    for f in files:
        f.get("elf", {}).pop("soname", None)
    assert depends.resolve(files, LIBC, depends.links(i2c_tree))[1] == []
    # and without the links (the pipeline before): the false warning of issue 17
    assert depends.resolve(files, LIBC)[1] == [{"file": "sbin/i2cdetect", "soname": "libi2c.so.0"}]


@pytest.mark.parametrize("target", ["/usr/lib/libi2c.so.0.1.1", "../../outside/libi2c.so.0.1.1",
                                    "libi2c.so.0", "missing.so"])
def test_a_link_that_reaches_no_shipped_file_provides_nothing(target):
    files = [{"path": "lib/libi2c.so.0.1.1", "elf": {}}, {"path": "sbin/x", "elf": {"needed": ["libi2c.so.0"]}}]
    assert set(depends.shipped(files, {"lib/libi2c.so.0": target})) == {"libi2c.so.0.1.1", "x"}


def test_a_chain_of_links_is_followed_by_name():
    files = [{"path": "lib/arm/libz.so.1.3", "elf": {}}]
    links = {"lib/libz.so.1": "arm/libz.so", "lib/arm/libz.so": "libz.so.1.3"}
    assert set(depends.shipped(files, links)) == {"libz.so.1.3", "libz.so.1", "libz.so"}


# --- a release whose suite stands in (L4T R32: bullseye's packages, Ubuntu 18.04's names) ---------
BULLSEYE = {"libc.so.6": "libc6 (>= 2.31)", "libcrypt.so.1": "libcrypt1 (>= 1:4.1.0)",
            "libssl.so.1.1": "libssl1.1 (>= 1.1.1)", "libgcc_s.so.1": "libgcc-s1 (>= 3.0)",
            "libjson-c.so.5": "libjson-c5 (>= 0.15)"}


def _program(*needed, glibc="2.27"):
    return [{"path": "bin/app", "elf": {"needed": list(needed), "glibc": glibc}}]


def _l4t():
    from xbuild.board.releases import all_releases
    return all_releases()["l4t-r32"]


def test_l4t_depends_name_ubuntu_18_04s_packages():
    """bionic has no libcrypt1: its libcrypt.so.1 is in libc6; libgcc_s.so.1 is libgcc1."""
    found = depends.resolve(_program("libc.so.6", "libcrypt.so.1", "libssl.so.1.1", "libgcc_s.so.1"),
                            BULLSEYE, own=dict(_l4t().sonames))
    assert found.depends == ["libc6 (>= 2.27)", "libgcc1 (>= 1:4.2)", "libssl1.1 (>= 1.1.0)"]
    assert found.unresolved == [] and found.stand_ins == []
    # what `xbuild run` installs in bullseye, the stand-in userland
    assert depends.packages(found.stand_in_depends) == ["libc6", "libcrypt1", "libgcc-s1", "libssl1.1"]


def test_a_soname_the_table_lacks_keeps_the_stand_ins_name_and_says_so():
    found = depends.resolve(_program("libc.so.6", "libjson-c.so.5"), BULLSEYE, own=dict(_l4t().sonames))
    assert found.depends == ["libc6 (>= 2.27)", "libjson-c5 (>= 0.15)"]
    assert found.stand_ins == [{"file": "bin/app", "soname": "libjson-c.so.5", "package": "libjson-c5"}]


def test_a_debian_release_has_no_table_and_no_stand_ins():
    from xbuild.board.releases import all_releases
    for name, release in all_releases().items():
        assert bool(release.sonames) == release.stand_in, name
    found = depends.resolve(_program("libc.so.6", "libcrypt.so.1", glibc="2.31"), BULLSEYE)
    assert found.depends == ["libc6 (>= 2.31)", "libcrypt1 (>= 1:4.1.0)"]
    assert found.stand_ins == [] and found.stand_in_depends == []


def test_the_l4t_table_fits_bionic():
    """No bullseye-only name, libc6's floor at most bionic's glibc, the sonames people link."""
    from xbuild.board.requirement import glibc_tuple
    table = dict(_l4t().sonames)
    names = set(depends.packages(list(table.values())))
    assert not names & {"libcrypt1", "libgcc-s1", "libssl3", "libffi7", "libreadline8", "libtinfo6",
                        "libjpeg62-turbo", "libncurses6"}
    for soname in ("libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1",
                   "libresolv.so.2", "libutil.so.1", "ld-linux-aarch64.so.1"):
        assert table[soname] == "libc6 (>= 2.27)"
    assert table["libcrypt.so.1"].startswith("libc6 ")
    assert table["libssl.so.1.1"].startswith("libssl1.1") and table["libcrypto.so.1.1"].startswith("libssl1.1")
    assert table["libjpeg.so.8"].startswith("libjpeg-turbo8") and table["libi2c.so.0"].startswith("libi2c0")
    for dep in table.values():
        if dep.startswith("libc6 "):
            assert glibc_tuple(dep.removeprefix("libc6 (>= ").rstrip(")")) <= glibc_tuple(_l4t().glibc)


def test_run_installs_a_stand_in_releases_packages_by_the_stand_ins_names(tmp_path):
    """artifacts.built_for: manifest.json's depends_stand_in (bullseye's names) for the userland
    `xbuild run` makes, not depends (bionic's, which bullseye may lack)."""
    import json

    from xbuild.host.archive import sha256_file
    archive = tmp_path / "p-jetson-nano.tar.gz"
    archive.write_bytes(b"artifact")
    manifest = {"target": {"name": "jetson-nano"}, "options": {"os": "l4t-r32"},
                "artifacts": [{"name": archive.name, "sha256": sha256_file(archive)}],
                "depends": ["libc6 (>= 2.27)", "libgcc1 (>= 1:4.2)"],
                "depends_stand_in": ["libc6 (>= 2.27)", "libcrypt1 (>= 1:4.1.0)", "libgcc-s1 (>= 3.0)"]}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    assert artifacts.built_for(archive, "jetson-nano") == ("l4t-r32", ("libc6", "libcrypt1", "libgcc-s1"))
    del manifest["depends_stand_in"]  # a Debian release's manifest: its depends are its userland's
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    assert artifacts.built_for(archive, "jetson-nano") == ("l4t-r32", ("libc6", "libgcc1"))


@pytest.mark.parametrize("dep, board", [
    ("libstdc++6:armhf", "libstdc++6"),  # a cross toolchain's shlibs (libstdc++6-armhf-cross)
    ("libc6:armhf (>= 2.36)", "libc6 (>= 2.36)"),
    ("liba:armhf | libb:armhf (>= 1), libc", "liba | libb (>= 1), libc"),
    ("libx:armhfoo (>= 1)", "libx:armhfoo (>= 1)"),  # another architecture's name stays as it is
    ("libssl3 (>= 3.0.20)", "libssl3 (>= 3.0.20)"),
])
def test_shlibs_dependencies_are_named_as_the_board_names_them(dep, board):
    assert depends._board_name(dep, "armhf") == board

"""The gate's link check (xbuild.artifact.linkage) and the dynamic symbols it reads (elf.read_symbols), on
real ELF files built here with the host and cross compilers. The release's libraries are this
host's own (x86-64), read with the same elf reader; reading them out of a builder image is
tests/integration/test_linkage.py's."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from xbuild.artifact import artifacts, depends, elf, linkage
from xbuild.artifact.abi import AbiProblem
from xbuild.board.requirement import AbiRequirement
from xbuild.errors import AbiMismatch

# what libgpiod's sources became under a configure that guessed malloc(0) wrong
LIBRARY = r"""
#include <stdio.h>
#include <stdlib.h>
#define malloc rpl_malloc
void *malloc(size_t);
__attribute__((weak)) void optional_hook(void);
__attribute__((visibility("hidden"))) int helper(int x) { return x * 2; }
int lib_api(int x) { if (optional_hook) optional_hook(); puts("lib"); return helper(x); }
void *lib_alloc(void) { return malloc(4); }
"""
PROGRAM = r"""
#include <stdio.h>
int lib_api(int);
int main(void) { printf("%d\n", lib_api(2)); return 0; }
"""
PLUGIN = r"""
int host_register(const char *name);  /* the host program defines it */
int plugin_init(void) { return host_register("plugin"); }
"""

HOST_LIBS = ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64")
HOST = AbiRequirement(machine="x86-64", bits=64, endian="little", float_abi=None,
                      arm_arch_max=None, glibc_max=None, loader="/lib64/ld-linux-x86-64.so.2",
                      os="Debian test")


def compile_c(compiler: str, source: str, out: Path, *flags: str) -> Path:
    if shutil.which(compiler) is None:
        pytest.skip(f"{compiler} not found")
    out.parent.mkdir(parents=True, exist_ok=True)
    src = out.parent / f"{out.name}.c"
    src.write_text(source)
    subprocess.run([compiler, str(src), "-o", str(out), *flags], check=True, capture_output=True)
    src.unlink()
    return out


class HostRelease(linkage.Release):
    """This host's libraries as the release: the image's part (copying them out of a container)
    is the one thing replaced, by reading the same files in place."""

    def __init__(self):
        super().__init__("host", "amd64", HOST_LIBS, HOST)

    def _library(self, soname):
        for directory in self.dirs:
            path = Path(directory, soname)
            if path.is_file():
                info = elf.read_elf(path)
                return linkage.Library(info.needed, elf.read_symbols(path).defined)
        return None


def library(tree: Path, *extra: str) -> Path:
    """lib/libgpiomini.so.2.2.1 (SONAME libgpiomini.so.2, and its link) in tree."""
    lib = compile_c("gcc", LIBRARY, tree / "lib" / "libgpiomini.so.2.2.1", "-shared", "-fPIC",
                    "-Wl,-soname,libgpiomini.so.2", *extra)
    (tree / "lib" / "libgpiomini.so.2").symlink_to(lib.name)
    return lib


def check(tree: Path, release=None) -> list[AbiProblem]:
    return linkage.check(tree, artifacts.describe(tree), depends.links(tree), release or HostRelease())


# --- elf.read_symbols -------------------------------------------------------------------------

@pytest.mark.parametrize("compiler", ["gcc", "arm-linux-gnueabihf-gcc", "aarch64-linux-gnu-gcc"])
def test_undefined_and_defined_symbols(tmp_path, compiler):
    lib = compile_c(compiler, LIBRARY, tmp_path / "libg.so.1", "-shared", "-fPIC",
                    "-Wl,-soname,libg.so.1")
    symbols = elf.read_symbols(lib)
    assert "rpl_malloc" in symbols.undefined and "puts" in symbols.undefined
    assert "optional_hook" not in symbols.undefined  # weak: may stay unresolved
    assert {"lib_api", "lib_alloc"} <= symbols.defined
    assert "helper" not in symbols.defined  # hidden: not for others
    assert not symbols.undefined & symbols.defined
    assert elf.read_elf(lib).soname == "libg.so.1"


def test_defined_symbols_match_nm(tmp_path):
    """A real library's exports, as binutils' nm lists them (names without versions)."""
    if shutil.which("nm") is None:
        pytest.skip("nm not found: apt-get install binutils")
    libc = next((Path(d, "libc.so.6") for d in HOST_LIBS if Path(d, "libc.so.6").is_file()), None)
    if libc is None:
        pytest.skip("no libc.so.6 on this host")
    out = subprocess.run(["nm", "-D", "--defined-only", str(libc)], check=True,
                         capture_output=True, text=True).stdout
    expected = {line.split()[-1].split("@")[0] for line in out.splitlines() if line.strip()}
    symbols = elf.read_symbols(libc)
    assert symbols.defined == expected
    assert {"malloc", "printf"} <= symbols.defined
    assert elf.read_elf(libc).soname == "libc.so.6"


def test_program_soname_is_none_and_static_has_no_symbols(tmp_path):
    prog = compile_c("gcc", "int main(void){return 0;}", tmp_path / "static", "-static")
    assert elf.read_symbols(prog).undefined == frozenset()
    assert elf.read_elf(prog).soname is None


def test_read_symbols_refuses_non_elf(tmp_path):
    text = tmp_path / "script"
    text.write_text("#!/bin/sh\n")
    with pytest.raises(elf.ElfError):
        elf.read_symbols(text)


# --- linkage.check ----------------------------------------------------------------------------

def test_rpl_malloc_is_named_with_its_file(tmp_path):
    library(tmp_path)
    problems = check(tmp_path)
    assert problems == [AbiProblem("lib/libgpiomini.so.2.2.1", "undefined symbol rpl_malloc "
                                   "(defined by neither the artifact nor libc.so.6 of Debian test)", "rpl_malloc")]


def test_a_symbol_the_artifact_defines_is_fine(tmp_path):
    library(tmp_path)
    compile_c("gcc", "#include <stdlib.h>\nvoid *rpl_malloc(size_t n) { return malloc(n ? n : 1); }\n",
              tmp_path / "lib" / "librpl.so.1", "-shared", "-fPIC", "-Wl,-soname,librpl.so.1")
    assert check(tmp_path) == []


def test_a_program_using_the_artifacts_library(tmp_path):
    """The program's lib_api comes from the shipped library, found by its SONAME's link;
    the library's own rpl_malloc is still reported, once, on the library."""
    library(tmp_path)
    compile_c("gcc", PROGRAM, tmp_path / "bin" / "tool", f"-L{tmp_path / 'lib'}",
              "-l:libgpiomini.so.2", "-Wl,--allow-shlib-undefined")
    assert "libgpiomini.so.2" in elf.read_elf(tmp_path / "bin" / "tool").needed
    assert [p.path for p in check(tmp_path)] == ["lib/libgpiomini.so.2.2.1"]


def test_a_program_linked_against_a_newer_library(tmp_path):
    """A program linked against a libm that had a function the release's libm lacks (a wrong
    sysroot, a newer library): the release's libm and libc are searched, and do not have it."""
    newer = compile_c("gcc", "double sinpi_new(double x) { return x; }\n",
                      tmp_path / "sysroot" / "libm.so.6", "-shared", "-fPIC", "-Wl,-soname,libm.so.6")
    tree = tmp_path / "tree"
    compile_c("gcc", "double sinpi_new(double);\nint main(int c, char **v) { return (int)sinpi_new(c); }\n",
              tree / "bin" / "tool", f"-L{newer.parent}", "-l:libm.so.6")
    (problem,) = check(tree)
    assert problem == AbiProblem("bin/tool", "undefined symbol sinpi_new (defined by neither the "
                                             "artifact nor libm.so.6, libc.so.6 of Debian test)", "sinpi_new")


def test_transitive_libraries_count(tmp_path):
    """libstdc++ needs libm: a library that needs libstdc++ and libc, not libm, finds sin there
    (as the loader does); without libstdc++, nothing it needs defines sin."""
    source = "double sin(double);\ndouble f(double x) { return sin(x); }\n"
    flags = ("-shared", "-fPIC", "-fno-builtin", "-Wl,-soname,libf.so.1")
    lib = compile_c("gcc", source, tmp_path / "with" / "lib" / "libf.so.1", *flags,
                    "-Wl,--no-as-needed", "-lstdc++")
    assert "libstdc++.so.6" in elf.read_elf(lib).needed
    assert "libm.so.6" not in elf.read_elf(lib).needed
    assert check(tmp_path / "with") == []
    compile_c("gcc", source, tmp_path / "without" / "lib" / "libf.so.1", *flags)
    (problem,) = check(tmp_path / "without")
    assert problem.message.startswith("undefined symbol sin ")


def test_plugin_without_soname_is_not_checked(tmp_path):
    compile_c("gcc", PLUGIN, tmp_path / "lib" / "plugins" / "plugin.so", "-shared", "-fPIC")
    assert check(tmp_path) == []


def test_missing_needed_library_is_left_to_depends(tmp_path):
    """A library the release lacks: its symbols are unknown, so nothing is reported."""
    stub = compile_c("gcc", "int elsewhere(void){return 1;}\n", tmp_path / "stub" / "libnowhere.so.7",
                     "-shared", "-fPIC", "-Wl,-soname,libnowhere.so.7")
    tree = tmp_path / "tree"
    compile_c("gcc", "int elsewhere(void); void *rpl_malloc(unsigned long);\n"
                     "int main(void){ rpl_malloc(1); return elsewhere(); }\n",
              tree / "bin" / "tool", f"-L{stub.parent}", "-l:libnowhere.so.7",
              "-Wl,--unresolved-symbols=ignore-all")
    assert check(tree) == []
    release = HostRelease()
    check(tree, release)
    assert release.known["libnowhere.so.7"] is None and release.known["libc.so.6"] is not None


def test_gate_fails_with_the_abi_exit_code(tmp_path):
    library(tmp_path)
    files = artifacts.describe(tmp_path)
    artifacts.gate(files, HOST, "pc")  # without the tree and release: each file alone, fine
    with pytest.raises(AbiMismatch) as caught:
        artifacts.gate(files, HOST, "pc", (tmp_path, depends.links(tmp_path), HostRelease()))
    assert caught.value.exit_code == AbiMismatch.exit_code == 10
    assert "lib/libgpiomini.so.2.2.1: undefined symbol rpl_malloc" in str(caught.value)
    assert "ac_cv_func_malloc_0_nonnull=no" in caught.value.hint  # what autoconf did, not the generic hint


def test_unreadable_symbol_table_is_a_problem(tmp_path):
    """A .dynsym whose size runs past the file (describe reads no symbols, so lists it as ELF)."""
    import struct
    lib = library(tmp_path)
    data = bytearray(lib.read_bytes())
    shoff, = struct.unpack_from("<Q", data, 40)
    shentsize, shnum = struct.unpack_from("<HH", data, 58)
    for i in range(shnum):
        at = shoff + i * shentsize
        if struct.unpack_from("<I", data, at + 4)[0] == 11:  # SHT_DYNSYM: make sh_size huge
            struct.pack_into("<Q", data, at + 32, len(data) * 4)
    lib.write_bytes(bytes(data))
    assert elf.read_elf(lib).soname == "libgpiomini.so.2"
    (problem,) = check(tmp_path)
    assert problem.path == "lib/libgpiomini.so.2.2.1"
    assert problem.message.startswith("unreadable dynamic symbols: truncated ELF")


def test_manifest_entry_stays_small(tmp_path):
    """No symbol lists in manifest.json: the check reads the tree."""
    library(tmp_path)
    (entry,) = [f for f in artifacts.describe(tmp_path) if "elf" in f]
    assert entry["elf"]["soname"] == "libgpiomini.so.2"
    assert "rpl_malloc" not in repr(entry)

"""Real ELF files for the elf and ABI-gate tests, built here with the host and cross compilers."""

import shutil
import subprocess

import pytest

# compiler -> the Debian package that provides it (named in the skip message)
PACKAGES = {
    "gcc": "gcc",
    "g++": "g++",
    "arm-linux-gnueabihf-gcc": "gcc-arm-linux-gnueabihf",
    "arm-linux-gnueabi-gcc": "gcc-arm-linux-gnueabi",
    "aarch64-linux-gnu-gcc": "gcc-aarch64-linux-gnu",
}

# getrandom() came with glibc 2.25, so the binary needs at least GLIBC_2.25
SOURCE = r"""
#include <stdio.h>
#include <sys/random.h>
int main(void) {
    unsigned char b[4];
    if (getrandom(b, sizeof b, 0) < 0) return 1;
    printf("%d\n", b[0]);
    return 0;
}
"""


# A C++ program that needs libstdc++ (GLIBCXX_, CXXABI_ versions): strings, streams, exceptions.
CXX_SOURCE = r"""
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>
int main(int argc, char **argv) {
    std::vector<std::string> args(argv, argv + argc);
    try {
        if (args.size() > 5) throw std::runtime_error("too many");
    } catch (const std::exception &e) { std::cerr << e.what() << '\n'; return 1; }
    std::cout << args.size() << '\n';
    return 0;
}
"""


@pytest.fixture(scope="session")
def build(tmp_path_factory):
    """build(name, compiler, *flags) -> path of the compiled SOURCE, or CXX_SOURCE for a C++
    compiler (cached per session)."""
    out = tmp_path_factory.mktemp("elf")
    src, cxx = out / "hello.c", out / "hello.cpp"
    src.write_text(SOURCE)
    cxx.write_text(CXX_SOURCE)
    built = {}

    def _build(name, compiler, *flags):
        if shutil.which(compiler) is None:
            pytest.skip(f"{compiler} not found: apt-get install {PACKAGES[compiler]}")
        if name not in built:
            source = cxx if compiler.endswith("++") else src
            subprocess.run([compiler, *flags, "-o", str(out / name), str(source)],
                           check=True, capture_output=True)
            built[name] = out / name
        return built[name]

    return _build

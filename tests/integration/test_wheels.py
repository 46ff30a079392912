"""Python projects into wheels for real boards (issue 19): built natively (cross: no qemu), tagged
as the board's pip takes them, installed by that pip in the board's userland with `xbuild run`,
imported and used there; the Pi Zero's extension module is ARMv6 code (the gate says so, and
armv6l is all its tag claims)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from tests.helpers import bridge_gateway, make_project, run_script, serve, xbuild

pytestmark = pytest.mark.integration

CHECK = 3808858755  # CRC-32C of b"123456789", the standard check value
USE = "import crcdemo; print(crcdemo.machine(), crcdemo.crc32c(b'123456789'))"


@pytest.mark.parametrize("target,tag,machine,arch", [
    ("rpi3", "cp313-cp313-manylinux_2_41_armv7l", "armv8", "v8-A"),   # a Pi 3's 32-bit OS
    ("rpi0", "cp313-cp313-linux_armv6l", "armv6", "v6"),              # no manylinux tag for ARMv6
    ("rpi4", "cp313-cp313-manylinux_2_41_aarch64", "aarch64", None),
])
def test_a_c_extension_wheel_installs_and_runs_on_the_board(builds, target, tag, machine, arch):
    result = builds.get("python-crc", target)
    (artifact,) = result["artifacts"]
    wheel = Path(artifact["path"])
    assert wheel.name == f"crcdemo-1.0-{tag}.whl"
    manifest = json.loads(Path(result["manifest"]).read_text())
    (ext,) = [f for f in manifest["files"] if f.get("elf")]
    assert ext["path"].startswith("crcdemo/_crc.cpython-313-") and ext["elf"]["kind"] == "shared-object"
    if arch:
        assert ext["elf"]["arm_arch"] == arch and ext["elf"]["float_abi"] == "hard"
    assert manifest["python"]["tags"] == tag and manifest["python"]["version"] == "3.13"
    assert {r["name"] for r in manifest["python"]["build_requirements"]} >= {"setuptools", "wheel"}
    with zipfile.ZipFile(wheel) as z:  # the tags inside agree with the name (pip reads both)
        tags = [ln for ln in z.read("crcdemo-1.0.dist-info/WHEEL").decode().splitlines() if ln.startswith("Tag:")]
    assert tags == [f"Tag: {tag}"]

    run = xbuild("run", "--target", target, wheel, "--", "python3", "-c", USE)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == [machine, str(CHECK)]


def test_a_cross_built_wheel_is_the_same_twice(tmp_path):
    """verify: two builds (another directory, umask and locale) give the wheel bit for bit."""
    project = make_project(tmp_path / "crc", {p.relative_to(EXAMPLE).as_posix(): p.read_text()
                                             for p in EXAMPLE.rglob("*") if p.is_file()})
    proc = xbuild("verify", "--target", "rpi3", project)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_a_pure_python_project_gives_an_any_wheel_and_says_so(tmp_path):
    project = make_project(tmp_path / "pure", {
        "pyproject.toml": '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n'
                          '[project]\nname = "puredemo"\nversion = "0.3"\n',
        "puredemo/__init__.py": "ANSWER = 42\n"})
    proc = xbuild("--target", "rpi3", project, "--out", tmp_path / "out", "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    (artifact,) = json.loads(proc.stdout)["artifacts"]
    assert Path(artifact["path"]).name == "puredemo-0.3-py3-none-any.whl"
    assert "no extension modules, a wheel for any board" in proc.stderr


def test_a_failed_extension_build_shows_the_compilers_error_and_the_package_hint(tmp_path):
    project = make_project(tmp_path / "needsyaml", {
        "setup.py": "from setuptools import setup, Extension\n"
                    "setup(name='needsyaml', version='1.0',\n"
                    "      ext_modules=[Extension('ny', ['ny.c'], libraries=['yaml'])])\n",
        "ny.c": "#include <Python.h>\n#include <yaml.h>\nPyMODINIT_FUNC PyInit_ny(void) { return NULL; }\n"})
    proc = xbuild("--target", "rpi3", project, "--out", tmp_path / "out")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr.split("full log")[0][-200:]
    assert "yaml.h: No such file or directory" in proc.stderr
    assert "libyaml-dev" in proc.stderr  # the hint names the -dev package


EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "python-crc"


# Real sdists from the package index, by name: msgpack (Cython-made C++), PyYAML against the
# board's libyaml (--package: a pypi: project has no xbuild.toml), for each kind of Pi.
SDISTS = {
    "msgpack": (("pypi:msgpack==1.1.0",),
                "import msgpack, msgpack._cmsgpack; print(msgpack.unpackb(msgpack.packb({'a': [1, 2]})))",
                "{'a': [1, 2]}"),
    "pyyaml": (("pypi:pyyaml==6.0.2", "--package", "libyaml-dev"),
               "import yaml; print(yaml.load('a: [1, 2]', Loader=yaml.CSafeLoader))", "{'a': [1, 2]}"),
}


@pytest.mark.parametrize("target", ["rpi0", "rpi3", "rpi4"])
@pytest.mark.parametrize("sdist", list(SDISTS))
def test_an_sdist_from_the_index_builds_installs_and_runs(tmp_path, target, sdist):
    args, use, expected = SDISTS[sdist]
    proc = xbuild("--target", target, *args, "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    (artifact,) = result["artifacts"]
    wheel = Path(artifact["path"])
    assert wheel.is_relative_to(tmp_path / "xbuild-out")  # under the caller's directory, not the cache
    manifest = json.loads(Path(result["manifest"]).read_text())
    assert manifest["origin"]["sha256"] and manifest["origin"]["filename"].endswith((".tar.gz", ".zip"))
    elves = [f["elf"] for f in manifest["files"] if f.get("elf")]
    assert elves and all(e["kind"] == "shared-object" for e in elves)
    if target == "rpi0":
        assert wheel.name.endswith("-linux_armv6l.whl") and {e["arm_arch"] for e in elves} == {"v6"}
    if sdist == "pyyaml":  # the board's libyaml: a Depends, and no manylinux promise
        assert any(d.startswith("libyaml-0-2") for d in manifest["depends"]) and "manylinux" not in wheel.name

    run = xbuild("run", "--target", target, wheel, "--", "python3", "-c", use)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip().splitlines()[-1] == expected


def test_published_wheels_make_an_index_the_boards_pip_installs_from(engine, tmp_path):
    """--publish keeps a package index per board and release in the store; served over HTTP (the
    store's directory), the board's own pip in its userland installs crcdemo from it by name."""
    from xbuild.board import targets
    from xbuild.containers import images

    store = tmp_path / "store"
    project = make_project(tmp_path / "crc", {p.relative_to(EXAMPLE).as_posix(): p.read_text()
                                             for p in EXAMPLE.rglob("*") if p.is_file()})
    proc = xbuild("--target", "rpi3", project, "--publish", (store / "wheels").as_uri(), "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout)["index"] == f"{(store / 'wheels').as_uri()}/rpi3-trixie/simple/"

    gateway = bridge_gateway()
    image = images.runtime(targets.get("rpi3"), lambda _: None, packages=("python3-pip",))
    with serve(store, gateway) as (url, log):
        script = (f"python3 -m pip install --index-url {url}/wheels/rpi3-trixie/simple/ "
                  f"--trusted-host {gateway} crcdemo && cd / && python3 -c \"{USE}\"")
        status, out = run_script(image.tag, script, {"QEMU_CPU": "max", "PIP_BREAK_SYSTEM_PACKAGES": "1",
                         "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    assert status == 0, out
    assert out.strip().splitlines()[-1].split() == ["armv8", str(CHECK)]
    assert any(".metadata " in line for line in log[0].splitlines())  # resolved through PEP 658


def test_a_meson_python_project_builds_with_the_cross_file(tmp_path):
    """meson-python: its Meson gets xbuild's cross file, and introspects the board's Python."""
    project = make_project(tmp_path / "mesondemo", {
        "pyproject.toml": '[build-system]\nrequires = ["meson-python>=0.15"]\nbuild-backend = "mesonpy"\n'
                          '[project]\nname = "mesondemo"\nversion = "0.1"\n',
        "meson.build": "project('mesondemo', 'c', version: '0.1')\n"
                       "py = import('python').find_installation(pure: false)\n"
                       "py.extension_module('mesondemo', 'mesondemo.c', install: true)\n",
        "mesondemo.c": "#include <Python.h>\n"
                       "static PyObject *answer(PyObject *s, PyObject *u) { return PyLong_FromLong(42); }\n"
                       "static PyMethodDef m[] = {{\"answer\", answer, METH_NOARGS, NULL}, {NULL, NULL, 0, NULL}};\n"
                       "static struct PyModuleDef d = {PyModuleDef_HEAD_INIT, \"mesondemo\", NULL, -1, m};\n"
                       "PyMODINIT_FUNC PyInit_mesondemo(void) { return PyModule_Create(&d); }\n"})
    proc = xbuild("--target", "rpi3", project, "--out", tmp_path / "out", "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    (artifact,) = json.loads(proc.stdout)["artifacts"]
    with zipfile.ZipFile(artifact["path"]) as z:
        assert "mesondemo.cpython-313-arm-linux-gnueabihf.so" in z.namelist()
    run = xbuild("run", "--target", "rpi3", artifact["path"], "--", "python3", "-c",
                 "import mesondemo; print(mesondemo.answer())")
    assert run.returncode == 0 and run.stdout.strip() == "42", run.stderr


def test_another_release_and_the_build_cache(tmp_path):
    """--os bullseye: CPython 3.9 and glibc 2.31's tag; the same build again is a cache hit that
    gives the same wheel."""
    project = make_project(tmp_path / "crc", {p.relative_to(EXAMPLE).as_posix(): p.read_text()
                                             for p in EXAMPLE.rglob("*") if p.is_file()})
    results = []
    for _ in range(2):
        proc = xbuild("--target", "rpi3", "--os", "bullseye", project, "--json")
        assert proc.returncode == 0, proc.stderr[-3000:]
        results.append(json.loads(proc.stdout))
    assert [r["cache"] for r in results] == ["miss", "hit"]
    (first,), (second,) = (r["artifacts"] for r in results)
    assert Path(first["path"]).name == "crcdemo-1.0-cp39-cp39-manylinux_2_31_armv7l.whl"
    assert first["sha256"] == second["sha256"] and Path(second["path"]).is_file()

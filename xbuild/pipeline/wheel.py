"""The steps of a Python project's build (recipes/python.toml, kind "wheel") that differ from a
C project's: around the same image, copy-in, recipe, collect, gate and depends steps (build.py),

    requirements (on the host) -> ... -> collect -> unpack -> gate -> depends -> package

The build requirements (setuptools, Cython, meson-python...) are fetched on the host by pip,
outside the sandbox, which stays without network (project/pypi.py); the build installs them from
/xbuild/python/wheels. In cross mode they run on the build machine: the wheel is built by the
build machine's python3 of the release's Debian suite, pointed at the board's sysconfig
(Debian's multiarch _sysconfigdata, from libpython3.X-dev:<arch>), with the cross compiler, as
Debian cross-builds its own extension modules; no qemu anywhere. In emulate and hybrid modes the
board's own python3 runs them, under qemu.

The wheel that comes out is untrusted: it is unpacked (bounded) for the gate, which reads its
extension modules as it reads any ELF file, and renamed and retagged (artifact/wheelfile.py) as
the board's pip accepts it (artifact/wheeltags.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

from packaging.utils import parse_wheel_filename

from xbuild.artifact import artifacts, wheelfile, wheeltags
from xbuild.board import releases
from xbuild.board.targets import host_arch
from xbuild.errors import ConfigError, NoArtifacts
from xbuild.host.paths import cache_dir
from xbuild.pipeline.context import BuildContext
from xbuild.project import pypi
from xbuild.request import Mode
from xbuild.toolchain import ROOT, multiarch

PAYLOAD = "python"  # /xbuild/python: the requirements' wheels, their list, the cross environment
# The libraries a manylinux wheel may take from the system (PEP 600: the manylinux policies'
# list); a wheel needing any other (libyaml, libssl...) is tagged linux_<machine> instead.
MANYLINUX_LIBS = frozenset({
    "libc.so.6", "libm.so.6", "libdl.so.2", "librt.so.1", "libpthread.so.0", "libutil.so.1",
    "libnsl.so.1", "libresolv.so.2", "libcrypt.so.1", "libgcc_s.so.1", "libstdc++.so.6",
    "ld-linux-armhf.so.3", "ld-linux-aarch64.so.1", "ld-linux-x86-64.so.2", "ld-linux.so.2",
    "ld-linux-riscv64-lp64d.so.1", "ld64.so.2", "ld64.so.1"})


def requirements(ctx: BuildContext) -> None:
    """The project's build requirements, fetched on the host for where they run, and put into
    the build's /xbuild/python with the environment that aims the build at the board."""
    spec = ctx.spec
    release = spec.target.selected
    suite = releases.all_releases().get(release.suite)
    if suite is None or suite.python != release.python:
        have = f"Debian {release.suite}'s Python {suite.python}" if suite else f"no {release.suite} release"
        raise ConfigError(f"{spec.target.name} on {release.description} runs Python {release.python}, "
                          f"and its packages here come from {have}: a wheel needs the release's own "
                          f"Python headers and sysconfig, which this machine's mirror does not have",
                          hint="build for a release whose Python is on the mirror (`xbuild targets` "
                               "lists them), or build in emulation on the board's own OS image")
    system = pypi.build_system(spec.project)
    if system.needs_rust:
        raise ConfigError(f"{spec.project.name} builds Rust code (its build requires "
                          f"{', '.join(system.requires)}), which xbuild's wheels cannot build yet",
                          hint="build it on the board, or use a release of it with wheels for the board")
    cross = spec.mode == Mode.CROSS
    platforms = (wheeltags.platforms(wheeltags.build_machine(host_arch()), suite.glibc) if cross
                 else wheeltags.runnable_platforms(spec.target))
    ctx.phase("requirements", f"{' '.join(system.requires)} ({'the build machine' if cross else spec.target.name}'s)")
    cache = cache_dir("python", "wheels")
    fetched = pypi.download(system.requires, cache, python=release.python, platforms=platforms, log=ctx.log.line)
    payload = ctx.work / PAYLOAD
    (payload / "wheels").mkdir(parents=True)
    for f in fetched:
        shutil.copyfile(cache / f.filename, payload / "wheels" / f.filename)
    # Pinned, all of them: the build installs exactly what was fetched, nothing it resolves itself.
    (payload / "requirements.txt").write_text("".join(f"{f.name}=={f.version}\n" for f in fetched))
    (payload / "env.sh").write_text(_environment(ctx, system.backend) if cross else "")
    ctx.payload[PAYLOAD] = payload
    ctx.stats["python"] = {"version": release.python, "backend": system.backend,
                           "build_requirements": [f.to_json() for f in fetched]}


def _environment(ctx: BuildContext, backend: str) -> str:
    """What the cross build's pip and backend see: the board's platform and sysconfig (its
    EXT_SUFFIX, include directories and compiler names), Meson's cross file for meson-python;
    CMake (scikit-build-core) reads CMAKE_TOOLCHAIN_FILE itself. setuptools links with sysconfig's
    LDSHARED, Debian's, which holds -Wl,-Bsymbolic-functions: lld through zig refuses it, and an
    extension module exports one symbol (PyInit_*), so the link keeps only what both take."""
    target = ctx.spec.target
    lines = [f"export _PYTHON_HOST_PLATFORM=linux-{wheeltags.machine_names(target)[0]}",
             f"export _PYTHON_SYSCONFIGDATA_NAME=_sysconfigdata__linux_{multiarch(target)}",
             f"export CMAKE_TOOLCHAIN_FILE={ROOT}/toolchain.cmake",
             'export LDSHARED="$CC -shared -Wl,-O1 -Wl,-z,relro"']
    if backend.split(".")[0] == "mesonpy":
        lines.append(f"export XBUILD_PYTHON_SETTINGS=--config-settings=setup-args=--cross-file={ROOT}/cross.ini")
    return "".join(line + "\n" for line in lines)


def unpack(ctx: BuildContext) -> None:
    """The one wheel the recipe made, set aside; its members become the tree the gate and
    depends read."""
    wheels = sorted(ctx.tree.glob("*.whl"))
    if len(wheels) != 1:
        raise NoArtifacts(f"the build made {len(wheels)} wheels, not one: "
                          f"{', '.join(w.name for w in wheels) or 'none'}",
                          hint="a Python project builds one wheel; check the build log for pip's errors")
    ctx.built_wheel = ctx.work / wheels[0].name
    wheels[0].rename(ctx.built_wheel)
    shutil.rmtree(ctx.tree)
    ctx.tree.mkdir()
    wheelfile.unpack(ctx.built_wheel, ctx.tree)
    ctx.files = artifacts.describe(ctx.tree)


def package(ctx: BuildContext) -> None:
    """The wheel, named and tagged for the board, with the manifest and SHA256SUMS."""
    spec, found = ctx.spec, ctx.found
    _, _, _, tags = parse_wheel_filename(ctx.built_wheel.name)
    needs = {soname for f in ctx.files if f.get("elf") for soname in f["elf"]["needed"]}
    shipped = {Path(f["path"]).name for f in ctx.files}
    if all(t.platform == "any" for t in tags):
        ctx.phase("wheel", f"{ctx.built_wheel.name}: no extension modules, a wheel for any board")
        # py3-none-any (py2.py3-none-any...): rewritten with its own tags, its modes made plain
        own = wheeltags.WheelTags(".".join(sorted({t.interpreter for t in tags})), "none", ("any",))
        wheel = wheelfile.retag(ctx.built_wheel, own, ctx.out)
        tagged = str(own)
    else:
        if not needs and not any(f.get("elf") for f in ctx.files):
            ctx.phase("wheel", f"{ctx.built_wheel.name}: warning: a wheel for one platform without an "
                               "extension module in it; an optional C extension was left out (a -dev "
                               "package missing: --package, or xbuild.toml's packages?), see build.log")
        abi3 = next((t.interpreter for t in tags if t.abi == "abi3"), None)
        manylinux = needs <= MANYLINUX_LIBS | shipped
        board_tags = wheeltags.for_board(spec.target, abi3=abi3, manylinux=manylinux)
        wheel = wheelfile.retag(ctx.built_wheel, board_tags, ctx.out)
        tagged = str(board_tags)
        if not manylinux:
            ctx.phase("wheel", f"{wheel.name}: linux_ tag, as it needs {', '.join(found.depends)} "
                               "from the board (a manylinux wheel may need only the C and C++ runtimes)")
    ctx.stats.setdefault("python", {})["tags"] = tagged
    manifest = ctx.manifest(ctx.files, image={"tag": ctx.image.tag, "id": ctx.image.id},
                            toolchain=spec.toolchain.summary(), depends=found.depends,
                            depends_unresolved=found.unresolved, python=ctx.stats["python"])
    ctx.log.close()
    ctx.mark("archive")
    ctx.produced = artifacts.listed(ctx.out, manifest, [wheel])
    ctx.image_id = ctx.image.id

"""`xbuild run`: install an artifact into a fresh target container as the board would (a .deb
with apt, a wheel with the release's pip, a tar.gz unpacked into the prefix and `ldconfig` run)
and run a program from it under qemu, as the board's CPU (QEMU_CPU), with the program's exit code
passed through. What fails on the board fails here too: nothing (LD_LIBRARY_PATH, say) helps the
program that the board lacks."""

from __future__ import annotations

import contextlib
import gzip
import os
import posixpath
import shlex
import shutil
import tarfile
import tempfile
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from xbuild.artifact import wheeltags
from xbuild.board.targets import Target, debian_userland_cpu
from xbuild.containers import binfmt, images
from xbuild.containers.sandbox import Box, Container, Limits
from xbuild.errors import BadArtifact, InstallFailed
from xbuild.host.archive import check, max_output, save_stream
from xbuild.toolchain import PREFIX


@contextlib.contextmanager
def _artifact_tar(path: Path) -> Iterator[BinaryIO]:
    """The artifact as an uncompressed tar in a temporary file, unpacked as a stream up to
    XBUILD_MAX_OUTPUT_MB (a gzip bomb stops there) and checked for unsafe entries before it goes
    anywhere."""
    if not path.is_file():
        raise BadArtifact(f"artifact {str(path)!r} does not exist",
                          hint="give the .tar.gz from the build's output directory")
    limit = max_output()
    with tempfile.TemporaryFile(prefix="xbuild-artifact-") as tmp:
        try:
            with _open(path) as src:
                save_stream(iter(lambda: src.read(1 << 20), b""), tmp, limit, f"{path} unpacked")
        except (OSError, EOFError, ValueError, KeyError, zlib.error) as exc:
            raise BadArtifact(f"{path}: not a readable artifact archive ({exc})") from None
        check(tmp, str(path), limit)
        tmp.seek(0)  # check() read it to the end; the engine must get it from the start
        yield tmp


def _open(path: Path):
    """The artifact's tar stream: a .tar.gz, a plain .tar, or a .deb's data (paths from /)."""
    if path.suffix == ".deb":
        from xbuild.artifact import deb
        return deb.open_data(path)
    return gzip.open(path) if path.suffix == ".gz" else path.open("rb")


def is_image_archive(path: Path) -> bool:
    """A `docker save` archive (manifest.json + repositories at its root), not a file tree."""
    if not path.is_file() or path.suffix != ".tar":
        return False
    try:
        with tarfile.open(path) as tar:
            names = set(tar.getnames())
    except (OSError, tarfile.TarError):
        return False
    return "manifest.json" in names and "repositories" in names


def run_image(target: Target, archive: Path, command: list[str], *, timeout: int, cpu: str | None,
              ports: dict, log=lambda line: None, out=print, err=print) -> int:
    """Load an image archive under a name of xbuild's (image_archive.py: never the names the
    archive gives) and run it as its Dockerfile says, under qemu as the board's CPU."""
    from xbuild.containers.image_archive import loaded
    if target.needs_qemu:
        binfmt.require(target.qemu_arch, f"running {target.name} images")
    env = dict(target.run_env)
    if cpu:
        env["QEMU_CPU"] = cpu
    limits = Limits(timeout=timeout, memory="2g", network=True)
    with loaded(archive, target) as image, \
            Container(image.id, command or None, name=f"xbuild-run-{uuid.uuid4().hex[:10]}", env=env,
                      limits=limits, user=None, ports=ports) as box:
        log(f"running {archive.name} with ports {ports or 'none'}")
        return box.run(out, on_err=err)


def run_artifact(target: Target, artifact: Path, command: list[str], *, timeout: int = 600,
                 cpu: str | None = None, ports: dict | None = None, log=lambda line: None,
                 out=print, err=print, packages: tuple[str, ...] = (), ready=lambda: None) -> int:
    """In the board's release's userland (target.release), with `packages` installed there;
    ready() is called once that image is there, as the program starts. The artifact is installed
    as on the board: a .deb with apt, a tar.gz unpacked into the prefix and `ldconfig` run."""
    release = target.selected
    stand_in = release.stand_in  # no userland of its own here: the nearest suite's
    install = _Install(artifact, stand_in, target)
    if install.deb and not stand_in:  # its Depends are what apt would pull in on the board
        packages = tuple(sorted({*packages, *install.depends}))
    if install.wheel:  # the board's own pip installs it, from the release's python3-pip
        packages = tuple(sorted({*packages, "python3-pip"}))
    if stand_in:
        err(f"note: {target.os_name} is not on the Debian mirror: running on Debian "
            f"{release.suite}'s {target.debian_arch} userland, a stand-in for it; the ABI gate "
            f"checked the artifact against {release.name}'s glibc {release.glibc}")
        if install.deb:
            err(f"note: the .deb's Depends name {release.description}'s packages "
                f"({', '.join(install.depends) or 'none'}); Debian {release.suite}'s stand-ins "
                f"({', '.join(packages) or 'none known: no manifest.json beside it'}) are "
                f"installed instead, and the .deb with `dpkg --force-depends -i`")
    with (_artifact_tar(artifact) if not install.wheel else _empty_tar()) as payload:
        if cpu is None and (userland := debian_userland_cpu(target)) and \
                not _is_static(payload, command[0]):
            cpu = userland
            err(f"note: {target.os_name}'s own ARMv6 libraries are not on the Debian mirror: this "
                f"dynamic program runs on Debian {release.suite} armhf (ARMv7) under "
                f"QEMU_CPU={cpu}, not as the {target.qemu_cpu}; the ABI gate is the proof that its "
                f"code is ARMv6 (a --static build runs as the {target.qemu_cpu})")
        payload.seek(0)
        return _run_in_runtime(target, install, payload, command, timeout=timeout, cpu=cpu,
                               ports=ports, log=log, out=out, err=err, packages=packages,
                               ready=ready)


@contextlib.contextmanager
def _empty_tar() -> Iterator[BinaryIO]:
    """A wheel goes in whole (_Install.put), with nothing unpacked into the prefix."""
    with tempfile.TemporaryFile(prefix="xbuild-artifact-") as tmp:
        tarfile.open(fileobj=tmp, mode="w").close()
        tmp.seek(0)
        yield tmp


class _Install:
    """How the artifact goes onto the board: what the container runs as root before the program."""

    DEB = "/tmp/xbuild-package.deb"
    WHEELS = "/tmp/xbuild-wheel"  # pip reads a wheel's tags from its file name: kept as it is

    def __init__(self, artifact: Path, stand_in: bool, target: Target):
        self.deb = artifact.suffix == ".deb"
        self.wheel = artifact.suffix == ".whl"
        if self.wheel and not artifact.is_file():
            raise BadArtifact(f"artifact {str(artifact)!r} does not exist",
                              hint="give the .whl from the build's output directory")
        self.depends: list[str] = []
        if self.deb:
            from xbuild.artifact import deb
            try:
                self.depends = deb.depends(artifact)
            except (OSError, ValueError, KeyError, EOFError, zlib.error) as exc:
                raise BadArtifact(f"{artifact}: not a readable .deb ({exc})") from None
        self.artifact = artifact
        self.inside = f"{self.WHEELS}/{artifact.name}" if self.wheel else self.DEB
        if self.wheel:  # as on a board: pip, the system's (PIP_BREAK_SYSTEM_PACKAGES: PEP 668)
            # pip takes the platform from uname, as the board's kernel reports it. A Pi Zero's
            # stand-in userland (Debian armhf, ARMv7) runs under an ARMv7 CPU model, which reports
            # armv7l: pip is told the board's own (armv6l), as a Pi Zero's pip would see it.
            platform = f"linux-{wheeltags.machine_names(target)[0]}"
            self.tool, self.script = "pip", (
                f"PIP_BREAK_SYSTEM_PACKAGES=1 _PYTHON_HOST_PLATFORM={platform} python3 -m pip install -q "
                f"--no-index --no-deps --disable-pip-version-check {shlex.quote(self.inside)}")
        elif not self.deb:  # as docs/outputs.md says: unpacked into the prefix, then `sudo ldconfig`
            self.tool, self.script = "ldconfig", "ldconfig"
        elif stand_in:  # the Depends name another distribution's packages: the stand-ins are in
            self.tool, self.script = "dpkg", f"dpkg --force-depends -i {self.DEB}"
        else:  # apt itself, as on the board (the Depends are in the image: no network needed)
            self.tool, self.script = "apt-get", ("apt-get install -y -q --no-install-recommends "
                                                 f"-o APT::Sandbox::User=root {self.DEB}")

    def put(self, box: Box, payload: BinaryIO) -> None:
        if not (self.deb or self.wheel):
            box.put(PREFIX, payload)
            return
        with tempfile.TemporaryFile(prefix="xbuild-package-") as tar_file, self.artifact.open("rb") as f:
            with tarfile.open(fileobj=tar_file, mode="w") as tar:
                folder = tarfile.TarInfo(posixpath.dirname(self.inside).lstrip("/"))
                folder.type, folder.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(folder)
                info = tarfile.TarInfo(self.inside.lstrip("/"))
                info.size, info.mode = os.fstat(f.fileno()).st_size, 0o644
                tar.addfile(info, f)
            tar_file.seek(0)
            box.put("/", tar_file)


# As root: install (its messages kept for a failure), then the program as uid 1000, as a user of
# the board runs it, under the board's CPU model (set for it alone: apt and dpkg are the
# userland's, which may need another model, and a model is read at each exec).
_SCRIPT = """
if ! { eval "$XBUILD_INSTALL"; } >/tmp/xbuild-install.log 2>&1; then
  cat /tmp/xbuild-install.log >&2
  echo "$XBUILD_MARK" >&2
  exit 1
fi
exec setpriv --reuid=1000 --regid=1000 --clear-groups -- env -u XBUILD_INSTALL -u XBUILD_MARK \
  -u XBUILD_CPU HOME=/ ${XBUILD_CPU:+"QEMU_CPU=$XBUILD_CPU"} "$@"
"""


def _is_static(payload: BinaryIO, program: str) -> bool:
    """Whether `program` (a path in the artifact relative to PREFIX, or a name on PATH) is an ELF
    executable with no program interpreter: it needs nothing from the userland. A program not in
    the artifact (sh, say) is the userland's own."""
    from xbuild.artifact.elf import ElfError, read_elf
    wanted = program.removeprefix(PREFIX).removeprefix("./").strip("/")
    with tarfile.open(fileobj=payload, mode="r:") as tar:
        # a .deb's tree is from / (usr/local/bin/x), a tar.gz's from the prefix (bin/x); a bare
        # name is found on PATH, in the prefix's bin/ or sbin/
        found = [f"{d}/{wanted}" for d in ("bin", "sbin")] if "/" not in wanted else [wanted]
        names = {*found, *(f"{PREFIX.strip('/')}/{n}" for n in found)}
        member = next((m for m in tar if m.isfile() and m.name.removeprefix("./") in names), None)
        if member is None or (f := tar.extractfile(member)) is None:
            return False
        with tempfile.NamedTemporaryFile(prefix="xbuild-program-") as tmp:
            shutil.copyfileobj(f, tmp)
            tmp.flush()
            try:
                info = read_elf(tmp.name)
            except ElfError:
                return False
    # A static-PIE executable is ET_DYN ("shared-object") without an interpreter.
    return info is not None and info.interpreter is None and \
        info.kind in ("executable", "shared-object")


def _run_in_runtime(target, install: _Install, payload, command, *, timeout, cpu, ports, log, out,
                    err, packages, ready=lambda: None) -> int:
    if target.needs_qemu:
        binfmt.require(target.qemu_arch, f"running {target.name} code")
    image = images.runtime(target, log, packages)
    mark = f"xbuild-install-failed-{uuid.uuid4().hex}"
    env = {"PATH": f"{PREFIX}/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin",
           "DEBIAN_FRONTEND": "noninteractive", "XBUILD_INSTALL": install.script,
           "XBUILD_MARK": mark, "XBUILD_CPU": cpu or target.run_env.get("QEMU_CPU", "")}
    failed = []

    def on_err(line: str) -> None:
        if line == mark:
            failed.append(line)
        else:
            err(line)

    limits = Limits(timeout=timeout, memory="2g", network=bool(ports))
    with Container(image.id, ["sh", "-c", _SCRIPT, "sh", *command],
                   name=f"xbuild-run-{uuid.uuid4().hex[:10]}", env=env, limits=limits, user="0:0",
                   cap_add=("SETUID", "SETGID"), workdir=PREFIX, ports=ports) as box:
        install.put(box, payload)
        ready()
        code = box.run(out, on_err=on_err)
    if failed:
        where = f"{target.os_name} {target.debian_arch}"
        raise InstallFailed(f"{install.tool} could not install {install.artifact.name} in a "
                            f"clean container of {where}: on the board it would fail the same way")
    return code

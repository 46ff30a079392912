"""`xbuild run`: unpack an artifact into a fresh target container and run a program from it under
qemu, as the board's CPU (QEMU_CPU), with the program's exit code passed through."""

from __future__ import annotations

import contextlib
import gzip
import shutil
import tarfile
import tempfile
import uuid
import zlib
from pathlib import Path
from typing import BinaryIO, Iterator

from xbuild import binfmt, images
from xbuild.archive import check, max_output, save_stream
from xbuild.errors import BadArtifact
from xbuild.sandbox import Container, Limits
from xbuild.targets import Target
from xbuild.toolchain import PREFIX
from xbuild.toolchain.zig import debian_userland_cpu


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
        from xbuild import deb
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
    from xbuild.image_archive import loaded
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
    ready() is called once that image is there, as the program starts."""
    root = PREFIX
    if artifact.suffix == ".deb":  # its tree is from / (usr/local/...), its Depends what it needs
        from xbuild import deb
        root = "/"
        try:
            packages = tuple(sorted({*packages, *deb.depends(artifact)}))
        except (OSError, ValueError, KeyError, EOFError, zlib.error) as exc:
            raise BadArtifact(f"{artifact}: not a readable .deb ({exc})") from None
    release = target.selected
    if release.suite != release.name:
        err(f"note: {target.os_name} is not on the Debian mirror: running "
            f"on Debian {release.suite}'s {target.debian_arch} userland, the nearest suite; the ABI "
            f"gate checked the artifact against {release.name}'s glibc {release.glibc}")
    with _artifact_tar(artifact) as payload:
        if cpu is None and (userland := debian_userland_cpu(target)) and \
                not _is_static(payload, command[0]):
            cpu = userland
            err(f"note: {target.os_name}'s own ARMv6 libraries are not on the Debian mirror: this "
                f"dynamic program runs on Debian {release.suite} armhf (ARMv7) under "
                f"QEMU_CPU={cpu}, not as the {target.qemu_cpu}; the ABI gate is the proof that its "
                f"code is ARMv6 (a --static build runs as the {target.qemu_cpu})")
        payload.seek(0)
        return _run_in_runtime(target, payload, command, timeout=timeout, cpu=cpu, ports=ports,
                               log=log, out=out, err=err, packages=packages, root=root,
                               ready=ready)


def _is_static(payload: BinaryIO, program: str) -> bool:
    """Whether `program` (a path in the artifact, relative to PREFIX) is an ELF executable with no
    program interpreter: it needs nothing from the userland. A program not in the artifact (sh,
    say) is the userland's own."""
    from xbuild.elf import ElfError, read_elf
    wanted = program.removeprefix(PREFIX).removeprefix("./").strip("/")
    with tarfile.open(fileobj=payload, mode="r:") as tar:
        # a .deb's tree is from / (usr/local/bin/x), a tar.gz's from the prefix (bin/x)
        names = {wanted, f"{PREFIX.strip('/')}/{wanted}"}
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


def _run_in_runtime(target, payload, command, *, timeout, cpu, ports, log, out, err, packages,
                    root: str = PREFIX, ready=lambda: None) -> int:
    if target.needs_qemu:
        binfmt.require(target.qemu_arch, f"running {target.name} code")
    image = images.runtime(target, log, packages)
    env = {"PATH": f"{PREFIX}/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin",
           "LD_LIBRARY_PATH": f"{PREFIX}/lib", **target.run_env}
    if cpu:
        env["QEMU_CPU"] = cpu
    limits = Limits(timeout=timeout, memory="2g", network=bool(ports))
    with Container(image.id, command, name=f"xbuild-run-{uuid.uuid4().hex[:10]}", env=env,
                   limits=limits, workdir=PREFIX, ports=ports) as box:
        box.put(root, payload)
        ready()
        return box.run(out, on_err=err)

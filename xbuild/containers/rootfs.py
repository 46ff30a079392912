"""Base images made from the Debian mirror: debootstrap a root filesystem and load it into the
engine as an image whose config we write ourselves, so foreign images carry the right platform
(os / architecture / variant). `docker import` would label every one of them amd64."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from xbuild import environment
from xbuild.errors import ImageBuildFailed


def mirror() -> str:
    return environment.text("XBUILD_DEBIAN_MIRROR")


# Fixed so the same debootstrap gives the same layer; it is the image's only timestamp.
EPOCH_ISO = "1980-01-01T00:00:00Z"
ENV_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def debootstrap(arch: str, suite: str, dest: Path, log) -> None:
    if shutil.which("debootstrap") is None:
        raise ImageBuildFailed("debootstrap is not installed", hint="apt-get install debootstrap")
    if os.geteuid() != 0:
        raise ImageBuildFailed("making a base image runs debootstrap, which needs root",
                               hint="run `sudo xbuild images build --target TARGET` once")
    cmd = ["debootstrap", "--variant=minbase", f"--arch={arch}", suite, str(dest), mirror()]
    log(f"debootstrap {arch} {suite} from {mirror()}")
    lines = []
    # `with`: its stdout closed however this ends (left open, it was a ResourceWarning, an error
    # under the tests' filterwarnings, in whichever test made a base image first)
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        assert proc.stdout is not None  # stdout=PIPE: Popen's type cannot say so
        for line in proc.stdout:
            lines.append(line.rstrip())
            log(line.rstrip())
    if proc.returncode != 0:
        raise ImageBuildFailed(f"debootstrap --arch={arch} {suite} failed",
                               detail="\n".join(lines[-20:]),
                               hint="check the mirror (XBUILD_DEBIAN_MIRROR) and that qemu binfmt "
                                    "handlers are registered for foreign architectures")


def _layer_tar(rootfs: Path, dest: Path) -> str:
    """Tar the root filesystem as a layer (GNU tar keeps owners, devices and hard links right)."""
    subprocess.run(["tar", "-C", str(rootfs), "--numeric-owner", "--sort=name", "--xattrs",
                    f"--mtime={EPOCH_ISO}", "--clamp-mtime", "--exclude=./proc/*", "--exclude=./sys/*",
                    "--exclude=./dev/*", "--exclude=./var/cache/apt/archives/*.deb",
                    "-cf", str(dest), "."], check=True)
    h = hashlib.sha256()
    with dest.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def image_archive(rootfs: Path, dest: Path, *, tag: str, platform: str, labels: dict) -> None:
    """Write a `docker load` archive: one layer, and an image config with the platform set."""
    os_, arch, *variant = platform.split("/")
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        layer = Path(tmp, "layer.tar")
        diff_id = _layer_tar(rootfs, layer)
        config = {
            "architecture": arch, "os": os_, **({"variant": variant[0]} if variant else {}),
            "created": EPOCH_ISO,
            "config": {"Env": [ENV_PATH, "LANG=C.UTF-8"], "Cmd": ["/bin/bash"], "Labels": labels},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created": EPOCH_ISO, "created_by": f"xbuild: debootstrap ({platform})"}],
        }
        config_bytes = json.dumps(config, sort_keys=True).encode()
        config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
        manifest = [{"Config": config_name, "RepoTags": [tag], "Layers": ["layer.tar"]}]
        with tarfile.open(dest, "w") as tar:
            for name, data in ((config_name, config_bytes),
                               ("manifest.json", json.dumps(manifest).encode())):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, fileobj=io.BytesIO(data))
            tar.add(layer, arcname="layer.tar")

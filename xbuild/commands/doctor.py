"""`xbuild doctor`: each thing a build needs, checked, with the command that fixes it."""

from __future__ import annotations

import shutil
from dataclasses import dataclass

from xbuild.board.targets import qemu_arches
from xbuild.containers import binfmt
from xbuild.errors import XBuildError

MIN_FREE_GB = 5


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    hint: str | None = None

    def to_json(self) -> dict:
        return {"name": self.name, "ok": self.ok, "detail": self.detail, "hint": self.hint}


def _engine() -> list[Check]:
    from xbuild.containers.engine import client
    try:
        info = client().version()
    except XBuildError as exc:
        return [Check("docker engine", False, exc.message, exc.hint)]
    checks = [Check("docker engine", True, f"{info.get('Version')} (API {info.get('ApiVersion')})")]
    root = client().info().get("DockerRootDir", "/var/lib/docker")
    checks.append(_disk("disk (docker root)", root))
    return checks


def _disk(name: str, path: str) -> Check:
    try:
        free = shutil.disk_usage(path).free / 1e9
    except OSError as exc:
        return Check(name, False, f"{path}: {exc.strerror}")
    return Check(name, free >= MIN_FREE_GB, f"{free:.1f} GB free at {path}",
                 None if free >= MIN_FREE_GB else "free space: `xbuild images prune`, `docker system prune`")


def checks() -> list[Check]:
    out = _engine()
    out.append(Check("binfmt_misc", binfmt.mounted(), "mounted" if binfmt.mounted() else "not mounted",
                     "xbuild binfmt install"))
    for arch in qemu_arches():
        h = binfmt.handler(arch)
        out.append(Check(f"qemu-{arch} handler", h.ok, h.problem() or f"flags {h.flags}",
                         "xbuild binfmt install (as root; apt-get install qemu-user-static first)"))
    for tool, pkg in (("debootstrap", "debootstrap"), ("qemu-arm-static", "qemu-user-static")):
        found = shutil.which(tool)
        out.append(Check(tool, bool(found), found or "not installed", f"apt-get install {pkg}"))
    out.append(_disk("disk (temp)", "/tmp"))
    return out

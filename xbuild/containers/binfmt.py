"""qemu-user-static through binfmt_misc: which handlers are registered, with which flags, and
registering the missing ones. The F (fix-binary) flag makes the kernel open the interpreter at
registration time, so containers run foreign binaries without any qemu inside them."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from xbuild import environment
from xbuild.errors import BinfmtMissing


def _dir() -> Path:
    """XBUILD_BINFMT_DIR: another binfmt_misc mount (tests point it at an empty directory)."""
    return Path(environment.text("XBUILD_BINFMT_DIR"))


DEBIAN_FORMATS = Path("/usr/share/binfmts")  # qemu-user-static's format files


@dataclass(frozen=True)
class Handler:
    arch: str
    registered: bool
    enabled: bool = False
    flags: str = ""
    interpreter: str = ""

    @property
    def ok(self) -> bool:
        return self.problem() is None  # one place says what a working handler is

    def problem(self) -> str | None:
        if not self.registered:
            return f"qemu-{self.arch} is not registered"
        if not self.enabled:
            return f"qemu-{self.arch} is registered but disabled"
        if "F" not in self.flags:
            return f"qemu-{self.arch} lacks the F flag (containers would need qemu inside)"
        return None

    def to_json(self) -> dict:
        return {"arch": self.arch, "registered": self.registered, "enabled": self.enabled,
                "flags": self.flags, "interpreter": self.interpreter, "ok": self.ok}


def mounted() -> bool:
    return (_dir() / "register").exists()


def handler(arch: str) -> Handler:
    entry = _dir() / f"qemu-{arch}"
    if not entry.is_file():
        return Handler(arch, False)
    fields = {}
    for line in entry.read_text().splitlines():
        key, _, value = line.partition(" ")
        fields[key] = value.strip()
    return Handler(arch, True, enabled=entry.read_text().startswith("enabled"),
                   flags=fields.get("flags:", ""), interpreter=fields.get("interpreter", ""))


def require(arch: str, why: str) -> None:
    if not mounted():
        raise BinfmtMissing(f"binfmt_misc is not mounted: {why} needs qemu-{arch}",
                            hint="`xbuild binfmt install` (as root) mounts it and registers the handlers")
    problem = handler(arch).problem()
    if problem:
        raise BinfmtMissing(f"{problem}: {why} needs it")


def _interpreter(arch: str) -> str | None:
    for candidate in (f"/usr/libexec/qemu-binfmt/{arch}-binfmt-P", f"/usr/bin/qemu-{arch}-static"):
        if os.path.exists(candidate):
            return candidate
    return shutil.which(f"qemu-{arch}-static")


def _format(arch: str) -> dict[str, str]:
    fields = {}
    for line in (DEBIAN_FORMATS / f"qemu-{arch}").read_text().splitlines():
        key, _, value = line.partition(" ")
        fields[key] = value.strip()
    return fields


def install(arches: list[str]) -> list[str]:
    """Register (or re-register with F) the handlers for arches; return what was done."""
    if os.geteuid() != 0:
        raise BinfmtMissing("registering binfmt handlers needs root",
                            hint="run `sudo xbuild binfmt install`")
    done = []
    if not mounted():
        subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(_dir())], check=True)
        done.append("mounted binfmt_misc")
    for arch in arches:
        current = handler(arch)
        if current.ok:
            continue
        interpreter = _interpreter(arch)
        if interpreter is None or not (DEBIAN_FORMATS / f"qemu-{arch}").is_file():
            raise BinfmtMissing(f"qemu-{arch}-static is not installed",
                                hint="apt-get install qemu-user-static")
        if current.registered:  # wrong flags: drop it and register again
            (_dir() / f"qemu-{arch}").write_text("-1")
        fmt = _format(arch)
        offset = fmt.get("offset", "0")
        line = f":qemu-{arch}:M:{offset}:{fmt['magic']}:{fmt['mask']}:{interpreter}:PF"
        (_dir() / "register").write_text(line)
        done.append(f"registered qemu-{arch} -> {interpreter} (flags PF)")
    return done

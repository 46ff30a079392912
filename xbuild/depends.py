"""The runtime dependencies of an artifact, as the board's OS release names them.

Every ELF's needed sonames that the artifact does not ship itself are looked up in the shlibs
files of the packages installed in the build's image (/var/lib/dpkg/info/*.shlibs: what
dpkg-shlibdeps falls back on), which are the release's own packages for the target architecture.
libc6's lower bound is the newest GLIBC_ version the files need, like dpkg-shlibdeps' symbols do.

The table of an image is read once, in a fresh container of that image (no project code has run
in it), and cached by image id: images are immutable."""

from __future__ import annotations

import json
import re
import uuid

from xbuild.elf import glibc_tuple
from xbuild.paths import cache_dir
from xbuild.sandbox import Container, Limits

# Lists the target architecture's shlibs files (multiarch ones are named <pkg>:<arch>.shlibs; on
# an image of that very architecture, the others are its own too).
_SCRIPT = r"""
native=$(dpkg --print-architecture)
for f in /var/lib/dpkg/info/*.shlibs; do
  case "$f" in
    *:"$XBUILD_DEB_ARCH".shlibs) ;;
    *:*.shlibs) continue ;;
    *) [ "$native" = "$XBUILD_DEB_ARCH" ] || continue ;;
  esac
  sed -n 's/^\([^ :][^ ]*\) \([^ ]*\) \(.*\)$/shlibs \1 \2 \3/p' "$f"
done
"""


def _sonames(name: str, version: str) -> tuple[str, ...]:
    """deb-shlibs(5): `libfoo 3` is libfoo.so.3; `libfoo-1.2 0`... and `libfoo 1.2` may be
    libfoo-1.2.so."""
    return (f"{name}.so.{version}", f"{name}-{version}.so")


def table(image_id: str, arch: str) -> dict[str, str]:
    """soname -> dependency ("libssl3 (>= 3.0.20)") for the `arch` packages in the image."""
    path = cache_dir("shlibs", f"{image_id.replace(':', '-')}-{arch}.json")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        pass
    found: dict[str, str] = {}

    def line(text: str) -> None:
        if text.startswith("shlibs "):
            _, name, version, dep = text.split(" ", 3)
            for soname in _sonames(name, version):
                found.setdefault(soname, dep.strip())

    with Container(image_id, ["sh", "-c", _SCRIPT], name=f"xbuild-shlibs-{uuid.uuid4().hex[:10]}",
                   env={"XBUILD_DEB_ARCH": arch}, limits=Limits(timeout=120, memory="256m"),
                   user=None) as box:
        if box.run(line) != 0:
            return found  # what was read, not cached: the next build asks again
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(json.dumps(found, sort_keys=True))
    tmp.replace(path)
    return found


def resolve(files: list[dict], shlibs: dict[str, str]) -> tuple[list[str], list[dict]]:
    """(Depends entries, sorted; [{file, soname}] no package provides) of the artifact's files
    (artifacts.describe's entries)."""
    shipped = {f["path"].rsplit("/", 1)[-1] for f in files}
    deps: dict[str, str] = {}
    missing = []
    glibc = max((f["elf"]["glibc"] for f in files if f.get("elf", {}).get("glibc")),
                key=glibc_tuple, default=None)
    for f in files:
        for soname in (f.get("elf") or {}).get("needed", ()):
            if soname in shipped:
                continue
            dep = shlibs.get(soname)
            if dep is None:
                missing.append({"file": f["path"], "soname": soname})
                continue
            package = dep.split(" ", 1)[0]
            if package == "libc6" and glibc:  # what the files need, not what the image has
                dep = f"libc6 (>= {glibc})"
            deps[package] = dep
    return [deps[p] for p in sorted(deps)], missing


def packages(depends: list[str]) -> list[str]:
    """The package names of Depends entries: what `apt install` takes."""
    return [re.split(r"[ (]", d, maxsplit=1)[0] for d in depends]

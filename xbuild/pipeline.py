"""run_build(spec): the one pipeline behind the CLI, the service and the nightly schedule.

    image -> sandboxed build -> collect -> ABI gate -> archive + SHA256SUMS + manifest

It knows nothing of queues or HTTP. Outputs appear all at once: everything is written into a
temporary directory beside the output directory and swapped in only when the build succeeded,
so a failed build never leaves a half-written output (nor destroys the previous one)."""

from __future__ import annotations

import json
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from xbuild import (
    BUILD_LOGIC_VERSION,
    __version__,
    artifacts,
    binfmt,
    buildscript,
    cache,
    compiler_cache,
    depends,
    hints,
    images,
    linkage,
    publish,
    sandbox,
    sources,
    toolchain,
)
from xbuild.archive import extract, max_output, save_stream, sha256_file, tar_tree
from xbuild.atomic import check_out, remove_made, swap_in
from xbuild.buildlog import BuildLog
from xbuild.errors import BuildFailed, OutOfMemory, XBuildError
from xbuild.progress import Progress
from xbuild.safefs import copy_replacing, remove_tree
from xbuild.sandbox import Box, Container, check_free_space, disk_limit_error, engine_data_root
from xbuild.schema import json_value
from xbuild.spec import OUT_DIRNAME, BuildSpec
from xbuild.store import Store, configured_url, open_store


@dataclass
class BuildResult:
    spec: BuildSpec
    artifacts: list[artifacts.Artifact]
    manifest: Path
    log: Path
    image: str
    source_hash: str
    duration: float
    extra: dict = field(default_factory=dict)

    @property
    def depends(self) -> list[str]:
        """The board's packages the artifact needs (manifest.json's depends: a hit has it too)."""
        try:
            return list(json_value(self.manifest.read_text()).get("depends", []))
        except (OSError, ValueError):
            return []

    def to_json(self) -> dict:
        return {"status": "ok", "target": self.spec.target.name, "depends": self.depends,
                "os": self.spec.target.selected.name, "mode": self.spec.mode,
                "recipe": self.spec.recipe.name, "artifacts": [a.to_json() for a in self.artifacts],
                "manifest": str(self.manifest), "log": str(self.log), "image": self.image,
                "source_hash": self.source_hash, "duration": round(self.duration, 3), **self.extra}


def _control_files(spec: BuildSpec) -> bytes:
    """/xbuild: shims, toolchain files, the build script, the artifact globs."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        files = spec.toolchain.files()
        files["build.sh"] = buildscript.render(spec.steps, spec.recipe.collect_new_elf,
                                               spec.variation.src_dir, spec.variation.umask,
                                               spec.recipe.name,
                                               spec.toolchain.finish(spec.keep_debug))
        files["artifacts.txt"] = "".join(p + "\n" for p in spec.config.artifacts)
        files["ccache.conf"] = compiler_cache.CONFIG_TEXT  # never /ccache's (compiler_cache.py)
        for rel, text in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            path.chmod(0o755 if rel.startswith("bin/") or rel.endswith(".sh") else 0o644)
        for d in ("stage", "stage/install"):
            (root / d).mkdir(parents=True, exist_ok=True)
        return tar_tree(root, mtime=spec.source_date_epoch, uid=1000, gid=1000, prefix="xbuild/")


def prepare(box: Box, spec: BuildSpec, exclude) -> None:
    """Put the project and /xbuild (shims, toolchain files, build script) into a build container:
    the same for a build and for `xbuild shell`."""
    with sources.payload(spec.project, exclude, spec.source_date_epoch, spec.variation.src_dir,
                         then=_control_files(spec)) as payload:
        box.put("/", payload)


def environment(spec: BuildSpec) -> dict[str, str]:
    env = spec.toolchain.environment(spec.jobs)
    env["SOURCE_DATE_EPOCH"] = str(spec.source_date_epoch)
    env.update(dict(spec.variation.env))
    env.update(dict(spec.config.env))
    # The caller's environment (and its credentials) stays out, except names the project asks for.
    env.update(spec.passed_env())
    return env


def _toolchain_versions(stage: Path) -> dict:
    meta = stage / "meta" / "toolchain.txt"
    if not meta.is_file():
        return {}
    pairs = (line.split(": ", 1) for line in meta.read_text().splitlines() if ": " in line)
    return {k: v for k, v in pairs if v.strip()}


def run_build(spec: BuildSpec, progress: Progress | None = None, *, use_cache: bool = True,
              record: bool = True, publish_to: str | None = None,
              create_bucket: bool = False, labels: dict | None = None,
              push_to: str | None = None, keep_failed: bool = False,
              compiler_cache: bool | Path | compiler_cache.CompilerCache = True,
              cache_scope: str = "") -> BuildResult:
    """Answer from the cache when the same inputs were built before; otherwise build, and record
    the build in the configured store (the cache). Optionally publish to another store.
    compiler_cache: True, this user's (unless XBUILD_COMPILER_CACHE=off); False, none; a
    directory, that one; a CompilerCache (compiler_cache.for_build: the command line's, a farm
    worker's), that one. Not in the cache key: hits never change the output."""
    progress = progress or Progress(quiet=True)
    started = time.monotonic()
    progress.timings.clear()  # this build's (`verify` builds twice with one Progress)
    for note in spec.notes:
        progress.phase("source", note)
    progress.mark("hash")
    exclude = sources.excluder(spec.project, spec.out, OUT_DIRNAME)
    source_hash = sources.tree_hash(spec.project, exclude)
    image_def = images.builder_def(spec.toolchain, spec.config.packages, spec.config.tools)
    key = cache.key(spec, source_hash, image_def.tag)
    build_id, base = cache.build_id(spec, key), cache.store_base(spec, cache_scope)
    store = open_store(configured_url(), create=True) if use_cache or record else None
    # The flags say which of the two uses of the one store there are: a store or None each.
    answer_from, record_in = (store if use_cache else None), (store if record else None)

    ccache = _compiler_cache(spec, compiler_cache)
    result = _from_cache(spec, answer_from, base, build_id, key, progress) if answer_from else None
    if result is None:
        result = _build(spec, progress, labels or {}, source_hash=source_hash, exclude=exclude,
                        image_def=image_def, keep_failed=keep_failed, ccache=ccache)
        if record_in is not None:
            progress.phase("store", f"recording build {build_id} in {record_in.url}")
            publish.publish(record_in, base, spec.out, _record(spec, build_id, key, result))
    result.extra.update({"build_id": build_id, "cache_key": key})
    result.extra.setdefault("compiler_cache", {"enabled": ccache is not None, "hits": 0, "misses": 0,
                                               "namespace": ccache.namespace if ccache else None})
    if publish_to:
        progress.phase("publish", publish_to)
        target_store = open_store(publish_to, create=create_bucket)
        done = publish.publish(target_store, "", spec.out, _record(spec, build_id, key, result),
                               progress=lambda msg: progress.phase("publish", msg),
                               trust_record=result.extra.get("cache") == "hit")
        result.extra["published"] = done.url
    if push_to:
        from xbuild import dockerimage
        progress.phase("push", f"{push_to}:{spec.target.name}")
        result.extra["pushed"] = dockerimage.push(result.image, result.artifacts[0].path, push_to,
                                                  spec.target, lambda msg: progress.phase("push", msg))
    result.duration = time.monotonic() - started
    progress.done()
    result.extra["timings"] = {name: round(t, 3) for name, t in progress.timings.items()}
    return result


def _compiler_cache(spec: BuildSpec, use) -> compiler_cache.CompilerCache | None:
    if isinstance(use, compiler_cache.CompilerCache):
        return use
    return compiler_cache.for_build(spec, use)


def _record(spec: BuildSpec, build_id: str, key: str, result: BuildResult) -> dict:
    return {"schema": 1, "build_id": build_id, "project": spec.name, "target": spec.target.name,
            "mode": spec.mode, "recipe": spec.recipe.name, "cache_key": key,
            "source_tree_sha256": result.source_hash, "image": result.image}


def _from_cache(spec: BuildSpec, store: Store, base: str, build_id: str, key: str,
                progress: Progress) -> BuildResult | None:
    record = publish.read_record(store, base, build_id)
    if record is None or record.get("cache_key") != key:
        return None
    try:
        publish.fetch(store, base, record, spec.out)
    except publish.CorruptObject as exc:
        progress.phase("cache", f"corrupted cache entry, rebuilding: {exc.message}")
        return None
    progress.phase("cache", f"hit: build {build_id} from {store.url}")
    names = {f["name"]: f for f in record["files"]}
    archives = [artifacts.Artifact(spec.out / n, f["sha256"], f["size"]) for n, f in sorted(names.items())
                if n.endswith((".tar.gz", ".image.tar", ".deb"))]
    return BuildResult(spec, archives, spec.out / "manifest.json", spec.out / "build.log",
                       record.get("image", ""), record["source_tree_sha256"], 0.0, {"cache": "hit"})


@dataclass(frozen=True)
class BuildContext:
    """One build, as each step sees it: what is built, from which tree, where, and who hears."""
    spec: BuildSpec
    source_hash: str
    exclude: Callable[[str], bool]  # what of the project tree stays out (sources.excluder)
    image_def: images.ImageDef
    progress: Progress
    labels: dict          # on every container and image the build makes (the service's job id)
    work: Path            # private, beside the output directory; its out/ is swapped in on success
    log: BuildLog
    keep_failed: bool = False  # --keep: a failed build's tree is copied out for inspection
    ccache: compiler_cache.CompilerCache | None = None  # mounted into the build container
    stats: dict = field(default_factory=dict)  # what the result reports besides the files

    @property
    def out(self) -> Path:
        return self.work / "out"

    def manifest(self, files: list, **extra) -> dict:
        spec = self.spec
        return {"name": spec.name, "target": spec.target.summary(), "mode": spec.mode,
                "recipe": spec.recipe.name, "source_tree_sha256": self.source_hash,
                "options": spec.options(), "files": files,
                "xbuild": {"version": __version__, "build_logic": BUILD_LOGIC_VERSION}, **extra}


def _build(spec: BuildSpec, progress: Progress, labels: dict, **inputs) -> BuildResult:
    """Build in a private work directory; swap its out/ in as the output only on success.
    inputs: BuildContext's source_hash, exclude, image_def and keep_failed."""
    spec.out.parent.mkdir(parents=True, exist_ok=True)
    if inputs.get("keep_failed"):  # refused now, not after the build failed (it would hide why)
        check_out(kept_tree(spec.out), spec.project)
    check_free_space([p for p in (engine_data_root(), spec.out.parent) if p is not None])
    work = Path(tempfile.mkdtemp(prefix=f".{spec.out.name}.tmp-", dir=spec.out.parent))
    failed_log = spec.out.parent / f"{spec.out.name}.failed.log"
    try:
        (work / "out").mkdir()
        # Secrets the project passes in are masked in every line logged (the store keeps the log).
        with BuildLog(work / "out" / "build.log", progress, secrets=spec.passed_env().values()) as log:
            ctx = BuildContext(spec=spec, progress=progress, labels=labels, work=work, log=log,
                               **inputs)
            step = _dockerfile_image if spec.recipe.kind == "image" else _compile
            produced, image_id = step(ctx)
        swap_in(work / "out", spec.out)
        failed_log.unlink(missing_ok=True)
        remove_made(kept_tree(spec.out))  # an earlier failure's --keep tree is stale now
        return BuildResult(
            spec, [artifacts.Artifact(spec.out / a.path.name, a.sha256, a.size) for a in produced],
            spec.out / "manifest.json", spec.out / "build.log", image_id, ctx.source_hash, 0.0,
            {"cache": "miss", **ctx.stats})
    except BaseException:
        if (work / "out" / "build.log").exists():  # this failure's log, not an older one's
            # replaces whatever is there (a link the project shipped included), never writes through it
            copy_replacing(work / "out" / "build.log", failed_log)
        raise
    finally:
        remove_tree(work)  # holds the build's output, of any depth
        sandbox.settle()  # the build container, removed while the artifact was checked and packed


OUTPUT_DEPTH = 200  # directories a build output may nest (Python's recursion limit is 1000)


def _compile(ctx: BuildContext) -> tuple[list[artifacts.Artifact], str]:
    """The recipe's steps in a sandboxed builder, then the ABI gate and the archive."""
    spec, progress, log = ctx.spec, ctx.progress, ctx.log
    if spec.toolchain.needs_binfmt:
        binfmt.require(spec.target.qemu_arch, f"an emulated {spec.target.name} build ({spec.mode})")
    progress.phase("image", f"{spec.target.name} ({spec.target.debian_arch}, {spec.mode})")
    image = images.ensure(ctx.image_def, log.line)

    # The toolchain that compiles (zig's image is named after the packages image it extends).
    progress.phase("build", f"{spec.recipe.name} recipe with {spec.toolchain.summary()['description']} "
                            f"in {image.tag}")
    name = f"xbuild-{spec.target.name}-{uuid.uuid4().hex[:10]}"
    progress.mark("start")
    cc = ctx.ccache
    if cc is not None:
        cc.prepare()
        before = cc.counters()
    with Container(image.id, ["bash", f"{toolchain.ROOT}/build.sh"], name=name,
                   env={**environment(spec), **(cc.environment() if cc else {})},
                   limits=spec.limits, labels=ctx.labels, kill_inside=True, remove_later=True,
                   mounts=cc.mounts() if cc else None) as box:
        progress.container(name)
        progress.mark("copy-in")
        prepare(box, spec, ctx.exclude)
        log.begin_build()
        progress.mark("build")
        code = box.run(log.line)
        if cc is not None:  # this build's share of the namespace's counters (ccache's own files)
            cc.scrub()  # what the build left that is not ccache's, before anything reads the tree
            (hits, misses), (hits0, misses0) = cc.counters(), before
            hits, misses = hits - hits0, misses - misses0
            ctx.stats["compiler_cache"] = {"enabled": True, "hits": hits, "misses": misses,
                                           "namespace": cc.namespace}
            if code == 0:  # a failed build's log ends with its own last line
                log.line(f"[xbuild] compiler cache {cc.namespace}: {hits} hits, {misses} misses")
        if code != 0:
            error = _build_failed(log, code, box.oom_killed, spec.limits,
                                  spec.out.parent / f"{spec.out.name}.failed.log")
            if ctx.keep_failed:
                error.hint = _keep_tree(ctx, box)
            # The package that ships a missing header, library or command, when the log names one.
            error.hint = hints.for_build(error.hint, log.tail(), spec, progress)
            raise error
        progress.mark("copy-out")
        with (ctx.work / "stage.tar").open("wb") as f:  # streamed to disk, capped, never in memory
            save_stream(box.get(buildscript.STAGE), f, max_output(), "the build output")
    stage, tree = ctx.work / "stage", ctx.work / "tree"
    # The artifact's tree is laid out, listed and packed by code that recurses: its depth is capped.
    extract(ctx.work / "stage.tar", stage, "build output", strip="stage", depth=OUTPUT_DEPTH)
    (ctx.work / "stage.tar").unlink()  # its disk space is needed for the archive

    artifacts.assemble(stage, tree, spec.name, spec.config.dests)
    files = artifacts.describe(tree)
    progress.phase("check", f"ABI gate on {sum('elf' in f for f in files)} ELF file(s)")
    links = depends.links(tree)  # one walk for both: the gate's and depends' own library names
    artifacts.gate(files, spec.target.abi, spec.target.name,
                   (tree, links, linkage.Release.of(image.id, spec.target)))
    progress.mark("depends")
    release = spec.target.selected
    found = depends.resolve(files, depends.table(image.id, spec.target.debian_arch),
                            links, dict(release.sonames) if release.stand_in else None)
    for m in found.unresolved:
        progress.phase("depends", f"warning: {m['file']} needs {m['soname']}, which neither the "
                                  f"artifact nor a package of {spec.target.os_name} provides")
    for m in found.stand_ins:
        progress.phase("depends", f"warning: {m['file']} needs {m['soname']}, which is not in "
                                  f"{release.description}'s package table (releases/{release.name}"
                                  f".toml): Depends names Debian {release.suite}'s {m['package']}, "
                                  "a stand-in; check the name on the board (`dpkg -S` the soname)")
    # A stand-in release's Depends also as its suite names them: what `xbuild run` installs.
    stand_in = {"depends_stand_in": found.stand_in_depends} if release.stand_in else {}
    manifest = ctx.manifest(files, image={"tag": image.tag, "id": image.id},
                            toolchain={**spec.toolchain.summary(), **_toolchain_versions(stage)},
                            depends=found.depends, depends_unresolved=found.unresolved, **stand_in)
    log.close()  # complete before it is listed beside the artifacts
    progress.mark("archive")
    also = (_deb(ctx, tree, found.depends),) if spec.deb else ()
    produced = artifacts.write(tree, ctx.out, spec.name, spec.target.name, manifest,
                               spec.source_date_epoch, also)
    return produced, image.id


def _deb(ctx: BuildContext, tree: Path, needs: list[str]) -> Path:
    """The artifact as a package the board installs with apt, its Depends the runtime ones."""
    from xbuild import deb
    spec = ctx.spec
    return deb.write(tree, ctx.out, name=deb.package_name(spec.name), version=spec.version,
                     arch=spec.target.debian_arch, depends=needs, prefix=toolchain.PREFIX,
                     description=f"{spec.name} for {spec.target.name} ({spec.target.os_name}), "
                                 "built by xbuild", mtime=spec.source_date_epoch)


def _dockerfile_image(ctx: BuildContext) -> tuple[list[artifacts.Artifact], str]:
    """A Dockerfile project: an image for the board's platform, saved as a `docker load` archive."""
    from xbuild import dockerimage
    spec, progress = ctx.spec, ctx.progress
    if spec.target.needs_qemu:
        binfmt.require(spec.target.qemu_arch, f"RUN steps of a {spec.target.name} image")
    progress.phase("build", f"Dockerfile for {spec.target.platform}")
    built = dockerimage.build(spec.project, spec.name, spec.target, ctx.exclude,
                              spec.source_date_epoch, ctx.log.line, ctx.labels, spec.limits, progress)
    archive = ctx.out / f"{spec.name}-{spec.target.name}.image.tar"
    name = dockerimage.image_name(spec.name, spec.target)
    progress.phase("save", f"{name} -> {archive.name}")
    try:
        dockerimage.save(built["tag"], archive, name)
    finally:
        dockerimage.remove(built["tag"])  # the build's own tag: no other build may see it
    built["tag"] = name
    size, digest = archive.stat().st_size, sha256_file(archive)
    files = [{"path": archive.name, "size": size, "sha256": digest}]
    manifest = ctx.manifest(files, image=built, artifacts=[{"name": archive.name, "sha256": digest,
                                                            "size": size}])
    (ctx.out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    sums = [f"{digest}  {archive.name}",
            f"{sha256_file(ctx.out / 'manifest.json')}  manifest.json"]
    (ctx.out / "SHA256SUMS").write_text("\n".join(sums) + "\n")
    return [artifacts.Artifact(archive, digest, size)], built["id"]


def kept_tree(out: Path) -> Path:
    """Where --keep puts a failed build's tree: beside the output directory, like the failed log."""
    return out.parent / f"{out.name}.failed"


# What a failed configure leaves behind to say why, by build system.
_FAILURE_LOGS = ("config.log", "CMakeFiles/CMakeError.log", "CMakeFiles/CMakeConfigureLog.yaml",
                 "meson-logs/meson-log.txt")


def _keep_tree(ctx: BuildContext, box: Box) -> str:
    """Copy the failed build's tree out of its container (capped like any output), replacing only
    an earlier kept tree; return the hint that says where it is and which logs to read."""
    from xbuild.atomic import replacing
    tar = ctx.work / "failed.tar"
    with tar.open("wb") as f:
        save_stream(box.get(ctx.spec.variation.src_dir), f, max_output(), "the failed build's tree")
    dest = kept_tree(ctx.spec.out)
    with replacing(dest, "failed", ctx.spec.project) as tmp:
        extract(tar, tmp, "the failed build's tree", strip=Path(ctx.spec.variation.src_dir).name)
    logs = sorted(str(p) for name in _FAILURE_LOGS for p in dest.glob(f"**/{name}"))[:5]
    return (f"build tree kept in {dest}" + (f"; read {', '.join(logs)}" if logs else "")
            + f"; full log: {ctx.spec.out.parent / f'{ctx.spec.out.name}.failed.log'}")


def _build_failed(log: BuildLog, code: int, oom: bool, limits, keep: Path) -> XBuildError:
    """The failing step, why it ended when the kernel or the limits ended it, and the log's tail
    (its lines are masked already). _build's clean-up keeps the full log as `keep`."""
    step = repr(log.step.split(": ", 1)[-1])
    detail = "\n".join(log.tail())
    if oom:
        return OutOfMemory(f"{step} was killed: memory limit {limits.memory}", detail=detail)
    if code == 153:  # SIGXFSZ: a file reached RLIMIT_FSIZE, which is the disk limit
        error = disk_limit_error(limits.disk_mb, "a single file reached it")
        error.detail = detail
        return error
    # Not the memory limit (the engine says when it is): a kill from outside the build.
    why = (f" (killed by SIGKILL from outside the build, not by its memory limit of {limits.memory}: "
           "another process, or the machine itself out of memory)") if code == 137 else ""
    return BuildFailed(f"{step} failed (exit code {code}){why}", detail=detail,
                       hint=f"full log: {keep}; --keep keeps the build tree to inspect")

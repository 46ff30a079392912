"""run_build(spec): the one pipeline behind the CLI, the service and the nightly schedule, as a
list of steps over one context (build_context.BuildContext), in the manner of mkosi's build_image:

    inputs -> cache answer, or: image -> copy-in -> recipe -> collect -> ABI gate -> depends
                                -> package -> record      (a Dockerfile project: its own list)
    -> the deliveries the caller chose (delivery.py: publish to a store, push an image)

It knows nothing of queues or HTTP, nor of who watches (observer.py). Outputs appear all at once:
everything is written into a temporary directory beside the output directory and swapped in only
when the build succeeded, so a failed build never leaves a half-written output (nor destroys the
previous one)."""

from __future__ import annotations

import contextlib
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from xbuild import toolchain
from xbuild.artifact import artifacts, depends, linkage
from xbuild.containers import binfmt, images, sandbox
from xbuild.containers.sandbox import Box, Container, check_free_space, disk_limit_error, engine_data_root
from xbuild.errors import BuildFailed, OutOfMemory, XBuildError
from xbuild.host.archive import extract, max_output, save_stream, sha256_file, tar_tree, write_tar
from xbuild.host.atomic import check_out, remove_made, swap_in
from xbuild.host.safefs import copy_replacing, remove_tree
from xbuild.pipeline import attestation, buildscript, cache, compiler_cache, gobuild, hints, rust, wheel
from xbuild.pipeline.buildlog import BuildLog
from xbuild.pipeline.context import DEFAULT_CACHE, BuildContext, BuildResult, CacheUse
from xbuild.pipeline.observer import NullObserver, Observer
from xbuild.pipeline.spec import OUT_DIRNAME, BuildSpec
from xbuild.project import sources
from xbuild.store import configured_url, open_store, publish

Step = Callable[[BuildContext], None]  # a step of the build; a delivery is one too (delivery.py)


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


def prepare(box: Box, spec: BuildSpec, exclude, made: dict[str, Path], scratch: Path) -> None:
    """Put the project, /xbuild (shims, toolchain files, build script) and what the host steps
    made (`made`: /xbuild/<name>/, read-only, root's) into a build container: the same for a build
    and for `xbuild shell`. scratch: a private directory for the tars on their way in."""
    with sources.payload(spec.project, exclude, spec.source_date_epoch, spec.variation.src_dir,
                         then=_control_files(spec)) as payload:
        box.put("/", payload)
    for name, folder in made.items():
        with (scratch / f"{name}.tar").open("w+b") as tar:
            write_tar(folder, tar, mtime=spec.source_date_epoch, prefix=name)
            tar.seek(0)
            box.put(toolchain.ROOT, tar)


@contextlib.contextmanager
def host_made(spec: BuildSpec, observer: Observer) -> Iterator[tuple[dict[str, Path], Path]]:
    """For `xbuild shell`: the kind's host steps (a wheel's build requirements, Go's modules,
    Rust's crates) run as a build runs them, in a private directory gone when the shell ends;
    yields what they made for the container, and that directory."""
    ctx = BuildContext(spec, observer, DEFAULT_CACHE, {}, False, False)
    ctx.work = Path(tempfile.mkdtemp(prefix="xbuild-shell-"))
    try:
        with BuildLog(ctx.work / "build.log", observer, secrets=spec.passed_env().values()) as ctx.log:
            for step in host_steps(spec.recipe.kind):
                step(ctx)
        yield ctx.payload, ctx.work
    finally:
        remove_tree(ctx.work)


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


def run_build(spec: BuildSpec, observer: Observer | None = None, *, cache: CacheUse = DEFAULT_CACHE,
              deliver: Iterable[Step] = (), labels: dict | None = None, keep_failed: bool = False,
              compiler_cache: bool | Path | compiler_cache.CompilerCache = True) -> BuildResult:
    """Answer from the cache when the same inputs were built before (as `cache` says); otherwise
    build, and record the build. Then the deliveries, in order (delivery.Publish, delivery.Push).
    compiler_cache: True, this user's (unless XBUILD_COMPILER_CACHE=off); False, none; a
    directory, that one; a CompilerCache (compiler_cache.for_build: the command line's, a farm
    worker's), that one. Not in the cache key: hits never change the output."""
    ctx = BuildContext(spec, observer or NullObserver(), cache, labels or {}, keep_failed, compiler_cache)
    inputs(ctx)
    answer_from_cache(ctx)
    if ctx.result is None:
        with workspace(ctx):
            for step in STEPS[spec.recipe.kind]:
                step(ctx)
        record(ctx)
    name_result(ctx)
    for step in deliver:
        step(ctx)
    return ctx.finish()


def inputs(ctx: BuildContext) -> None:
    """What the build is a function of (the source tree, the builder image: the cache key), and
    the store that answers and records it."""
    spec = ctx.spec
    for note in spec.notes:
        ctx.phase("source", note)
    ctx.mark("hash")
    ctx.exclude = sources.excluder(spec.project, spec.out, OUT_DIRNAME)
    ctx.source_hash = sources.tree_hash(spec.project, ctx.exclude)
    ctx.image_def = builder_def(spec)
    ctx.key = cache.key(spec, ctx.source_hash, ctx.image_def.tag)
    ctx.build_id, ctx.base = cache.build_id(spec, ctx.key), cache.store_base(spec, ctx.cache.scope)
    wanted = ctx.cache.answer or ctx.cache.record
    ctx.store = open_store(configured_url(), create=True) if wanted else None
    use = ctx.ccache_use
    ctx.ccache = use if isinstance(use, compiler_cache.CompilerCache) else compiler_cache.for_build(spec, use)


def answer_from_cache(ctx: BuildContext) -> None:
    """An earlier build of the same inputs, fetched into the output directory, is the result."""
    store, spec = ctx.answer_from, ctx.spec
    if store is None:
        return
    found = publish.read_record(store, ctx.base, ctx.build_id)
    if found is None or found.get("cache_key") != ctx.key:
        return
    try:
        publish.fetch(store, ctx.base, found, spec.out)
    except publish.CorruptObject as exc:
        ctx.phase("cache", f"corrupted cache entry, rebuilding: {exc.message}")
        return
    ctx.phase("cache", f"hit: build {ctx.build_id} from {store.url}")
    names = {f["name"]: f for f in found["files"]}
    archives = [artifacts.Artifact(spec.out / n, f["sha256"], f["size"]) for n, f in sorted(names.items())
                if n.endswith((".tar.gz", ".image.tar", ".deb", ".whl"))]
    ctx.result = BuildResult(spec, archives, spec.out / "manifest.json", spec.out / "build.log",
                             found.get("image", ""), found["source_tree_sha256"], 0.0, {"cache": "hit"})


@contextlib.contextmanager
def workspace(ctx: BuildContext) -> Iterator[None]:
    """The steps run in a private work directory with build.log open; its out/ is swapped in as
    the output only when they all succeeded (then ctx.result is set)."""
    spec = ctx.spec
    spec.out.parent.mkdir(parents=True, exist_ok=True)
    if ctx.keep_failed:  # refused now, not after the build failed (it would hide why)
        check_out(kept_tree(spec.out), spec.project)
    check_free_space([p for p in (engine_data_root(), spec.out.parent) if p is not None])
    ctx.work = work = Path(tempfile.mkdtemp(prefix=f".{spec.out.name}.tmp-", dir=spec.out.parent))
    failed_log = spec.out.parent / f"{spec.out.name}.failed.log"
    try:
        ctx.out.mkdir()
        # Secrets the project passes in are masked in every line logged (the store keeps the log).
        with BuildLog(ctx.out / "build.log", ctx.observer, secrets=spec.passed_env().values()) as ctx.log, \
                contextlib.ExitStack() as ctx.held:
            yield
        swap_in(ctx.out, spec.out)
        failed_log.unlink(missing_ok=True)
        remove_made(kept_tree(spec.out))  # an earlier failure's --keep tree is stale now
        ctx.result = BuildResult(
            spec, [artifacts.Artifact(spec.out / a.path.name, a.sha256, a.size) for a in ctx.produced],
            spec.out / "manifest.json", spec.out / "build.log", ctx.image_id, ctx.source_hash, 0.0,
            {"cache": "miss", **ctx.stats})
    except BaseException:
        if (ctx.out / "build.log").exists():  # this failure's log, not an older one's
            # replaces whatever is there (a link the project shipped included), never writes through it
            copy_replacing(ctx.out / "build.log", failed_log)
        raise
    finally:
        remove_tree(work)  # holds the build's output, of any depth
        sandbox.settle()  # the build container, removed while the artifact was checked and packed


def record(ctx: BuildContext) -> None:
    """The build made here, recorded in the store to answer the next build of its inputs."""
    if (store := ctx.record_in) is not None:
        ctx.phase("store", f"recording build {ctx.build_id} in {store.url}")
        publish.publish(store, ctx.base, ctx.spec.out, ctx.record())


def name_result(ctx: BuildContext) -> None:
    """The result names its build and cache key, built or answered, and says whether a compiler
    cache was used (with nothing counted where no recipe ran: a hit, a Dockerfile)."""
    assert ctx.result is not None
    cc = ctx.ccache
    ctx.result.extra.update({"build_id": ctx.build_id, "cache_key": ctx.key})
    ctx.result.extra.setdefault("compiler_cache", {"enabled": cc is not None, "hits": 0, "misses": 0,
                                                   "namespace": cc.namespace if cc else None})


OUTPUT_DEPTH = 200  # directories a build output may nest (Python's recursion limit is 1000)


def ensure_image(ctx: BuildContext) -> None:
    """The builder image (built, or pulled from a shared store), and qemu where it runs emulated."""
    spec = ctx.spec
    if spec.toolchain.needs_binfmt:
        binfmt.require(spec.target.qemu_arch, f"an emulated {spec.target.name} build ({spec.mode})")
    ctx.phase("image", f"{spec.target.name} ({spec.target.debian_arch}, {spec.mode})")
    ctx.image = images.ensure(ctx.image_def, ctx.log.line)


def copy_in(ctx: BuildContext) -> None:
    """A sandboxed build container (held until collect), with the project and /xbuild put in."""
    spec = ctx.spec
    # The toolchain that compiles (zig's image is named after the packages image it extends).
    ctx.phase("build", f"{spec.recipe.name} recipe with {spec.toolchain.summary()['description']} "
                       f"in {ctx.image.tag}")
    name = f"xbuild-{spec.target.name}-{uuid.uuid4().hex[:10]}"
    ctx.mark("start")
    cc = ctx.ccache
    if cc is not None:
        cc.prepare()
        ctx.ccache_before = cc.counters()
    ctx.box = ctx.held.enter_context(Container(
        ctx.image.id, ["bash", f"{toolchain.ROOT}/build.sh"], name=name,
        env={**environment(spec), **(cc.environment() if cc else {})}, limits=spec.limits,
        labels=ctx.labels, kill_inside=True, remove_later=True, mounts=cc.mounts() if cc else None))
    ctx.observer.container(name)
    ctx.mark("copy-in")
    prepare(ctx.box, spec, ctx.exclude, ctx.payload, ctx.work)


def run_recipe(ctx: BuildContext) -> None:
    """The recipe's steps in the container; a failure says which step failed and why."""
    spec, log, cc = ctx.spec, ctx.log, ctx.ccache
    log.begin_build()
    ctx.mark("build")
    code = ctx.box.run(log.line)
    if cc is not None:  # this build's share of the namespace's counters (ccache's own files)
        cc.scrub()  # what the build left that is not ccache's, before anything reads the tree
        (hits, misses), (hits0, misses0) = cc.counters(), ctx.ccache_before
        hits, misses = hits - hits0, misses - misses0
        ctx.stats["compiler_cache"] = {"enabled": True, "hits": hits, "misses": misses,
                                       "namespace": cc.namespace}
        if code == 0:  # a failed build's log ends with its own last line
            log.line(f"[xbuild] compiler cache {cc.namespace}: {hits} hits, {misses} misses")
    if code != 0:
        error = _build_failed(log, code, ctx.box.oom_killed, spec.limits,
                              spec.out.parent / f"{spec.out.name}.failed.log")
        if ctx.keep_failed:
            error.hint = _keep_tree(ctx, ctx.box)
        # The package that ships a missing header, library or command, when the log names one.
        error.hint = hints.for_build(error.hint, log.tail(), spec, ctx.observer)
        raise error


def collect(ctx: BuildContext) -> None:
    """The build's stage out of the container (streamed to disk, capped, never in memory), which
    is then let go, and laid out as the artifact's tree."""
    ctx.mark("copy-out")
    with (ctx.work / "stage.tar").open("wb") as f:
        save_stream(ctx.box.get(buildscript.STAGE), f, max_output(), "the build output")
    ctx.held.close()  # the container: removed while the artifact is checked and packed
    # The artifact's tree is laid out, listed and packed by code that recurses: its depth is capped.
    extract(ctx.work / "stage.tar", ctx.stage, "build output", strip="stage", depth=OUTPUT_DEPTH)
    (ctx.work / "stage.tar").unlink()  # its disk space is needed for the archive
    artifacts.assemble(ctx.stage, ctx.tree, ctx.spec.name, ctx.spec.config.dests)
    ctx.files = artifacts.describe(ctx.tree)


def gate(ctx: BuildContext) -> None:
    """The ABI gate: every ELF file runs on the board's release."""
    spec = ctx.spec
    ctx.phase("check", f"ABI gate on {sum('elf' in f for f in ctx.files)} ELF file(s)")
    ctx.links = depends.links(ctx.tree)  # one walk for both: the gate's and depends' own library names
    artifacts.gate(ctx.files, spec.target.abi, spec.target.name,
                   (ctx.tree, ctx.links, linkage.Release.of(ctx.image.id, spec.target)))


def find_depends(ctx: BuildContext) -> None:
    """The board's packages the artifact needs at run time; warnings for what none provides."""
    spec = ctx.spec
    ctx.mark("depends")
    release = spec.target.selected
    ctx.found = found = depends.resolve(ctx.files, depends.table(ctx.image.id, spec.target.debian_arch),
                                        ctx.links, dict(release.sonames) if release.stand_in else None)
    for m in found.unresolved:
        ctx.phase("depends", f"warning: {m['file']} needs {m['soname']}, which neither the "
                             f"artifact nor a package of {spec.target.os_name} provides")
    for m in found.stand_ins:
        ctx.phase("depends", f"warning: {m['file']} needs {m['soname']}, which is not in "
                             f"{release.description}'s package table (releases/{release.name}"
                             f".toml): Depends names Debian {release.suite}'s {m['package']}, "
                             "a stand-in; check the name on the board (`dpkg -S` the soname)")


def package(ctx: BuildContext) -> None:
    """The archive (and the .deb when asked), the manifest and SHA256SUMS, build.log beside them."""
    spec, found, release = ctx.spec, ctx.found, ctx.spec.target.selected
    # A stand-in release's Depends also as its suite names them: what `xbuild run` installs.
    stand_in = {"depends_stand_in": found.stand_in_depends} if release.stand_in else {}
    manifest = ctx.manifest(ctx.files, image={"tag": ctx.image.tag, "id": ctx.image.id},
                            toolchain={**spec.toolchain.summary(), **_toolchain_versions(ctx.stage)},
                            depends=found.depends, depends_unresolved=found.unresolved, **stand_in)
    ctx.log.close()  # complete before it is listed beside the artifacts
    ctx.mark("archive")
    also = (_deb(ctx, ctx.tree, found.depends),) if spec.deb else ()
    ctx.produced = artifacts.write(ctx.tree, ctx.out, spec.name, spec.target.name, manifest,
                                   spec.source_date_epoch, also)
    ctx.image_id = ctx.image.id


def _deb(ctx: BuildContext, tree: Path, needs: list[str]) -> Path:
    """The artifact as a package the board installs with apt, its Depends the runtime ones."""
    from xbuild.artifact import deb
    spec = ctx.spec
    return deb.write(tree, ctx.out, name=deb.package_name(spec.name), version=spec.version,
                     arch=spec.target.debian_arch, depends=needs, prefix=toolchain.PREFIX,
                     description=f"{spec.name} for {spec.target.name} ({spec.target.os_name}), "
                                 "built by xbuild", mtime=spec.source_date_epoch)


def build_dockerfile(ctx: BuildContext) -> None:
    """A Dockerfile project: its image, built for the board's platform (RUN steps under qemu)."""
    from xbuild.containers import dockerimage
    spec = ctx.spec
    if spec.target.needs_qemu:
        binfmt.require(spec.target.qemu_arch, f"RUN steps of a {spec.target.name} image")
    ctx.phase("build", f"Dockerfile for {spec.target.platform}")
    ctx.built = dockerimage.build(spec.project, spec.name, spec.target, ctx.exclude,
                                  spec.source_date_epoch, ctx.log.line, ctx.labels, spec.limits,
                                  ctx.observer)
    ctx.image_id = ctx.built["id"]


def save_image(ctx: BuildContext) -> None:
    """The image saved as a `docker load` archive under its own name; the build's tag let go."""
    from xbuild.containers import dockerimage
    spec = ctx.spec
    archive = ctx.out / f"{spec.name}-{spec.target.name}.image.tar"
    name = dockerimage.image_name(spec.name, spec.target)
    ctx.phase("save", f"{name} -> {archive.name}")
    try:
        dockerimage.save(ctx.built["tag"], archive, name)
    finally:
        dockerimage.remove(ctx.built["tag"])  # the build's own tag: no other build may see it
    ctx.built["tag"] = name
    ctx.produced = [artifacts.Artifact(archive, sha256_file(archive), archive.stat().st_size)]


def package_image(ctx: BuildContext) -> None:
    """The image archive's manifest and SHA256SUMS."""
    (archive,) = ctx.produced
    files = [{"path": archive.path.name, "size": archive.size, "sha256": archive.sha256}]
    artifacts.listed(ctx.out, ctx.manifest(files, image=ctx.built), [archive.path])


# What a build does between its inputs and its record, in order, by the recipe's kind: a
# toolchain's, a Dockerfile's, a Python wheel's.
COMPILE_STEPS: tuple[Step, ...] = (ensure_image, copy_in, run_recipe, collect, gate, find_depends, package,
                                   attestation.attest)
DOCKERFILE_STEPS: tuple[Step, ...] = (build_dockerfile, save_image, package_image, attestation.attest)
WHEEL_STEPS: tuple[Step, ...] = (wheel.requirements, ensure_image, copy_in, run_recipe, collect, wheel.unpack,
                                 gate, find_depends, wheel.package, attestation.attest)
GO_STEPS: tuple[Step, ...] = (gobuild.modules, *COMPILE_STEPS)
CARGO_STEPS: tuple[Step, ...] = (rust.crates, *COMPILE_STEPS)
STEPS = {"steps": COMPILE_STEPS, "image": DOCKERFILE_STEPS, "wheel": WHEEL_STEPS, "go": GO_STEPS,
         "cargo": CARGO_STEPS}
# The builder image by the recipe's kind, where it is not the toolchain's plus the packages: a
# language's toolchain is a layer of its own (rust.py: under the packages; gobuild.py: over them).
BUILDERS: dict[str, Callable[[BuildSpec], images.ImageDef]] = {"cargo": rust.builder_def,
                                                               "go": gobuild.builder_def}


def host_steps(kind: str) -> tuple[Step, ...]:
    """A kind's steps before its image: what they make on the host (fetched with the host's
    network) is what the offline sandbox gets. `xbuild shell` runs them too."""
    steps = STEPS[kind]
    return steps[:steps.index(ensure_image)] if ensure_image in steps else ()


def builder_def(spec: BuildSpec) -> images.ImageDef:
    """The build's image (also `xbuild shell`'s)."""
    if (own := BUILDERS.get(spec.recipe.kind)) is not None:
        return own(spec)
    return images.builder_def(spec.toolchain, spec.packages, spec.tools)


def kept_tree(out: Path) -> Path:
    """Where --keep puts a failed build's tree: beside the output directory, like the failed log."""
    return out.parent / f"{out.name}.failed"


# What a failed configure leaves behind to say why, by build system.
_FAILURE_LOGS = ("config.log", "CMakeFiles/CMakeError.log", "CMakeFiles/CMakeConfigureLog.yaml",
                 "meson-logs/meson-log.txt")


def _keep_tree(ctx: BuildContext, box: Box) -> str:
    """Copy the failed build's tree out of its container (capped like any output), replacing only
    an earlier kept tree; return the hint that says where it is and which logs to read."""
    from xbuild.host.atomic import replacing
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

"""run_build(spec): the one pipeline behind the CLI, the service and the nightly schedule.

    image -> sandboxed build -> collect -> ABI gate -> archive + SHA256SUMS + manifest

It knows nothing of queues or HTTP. Outputs appear all at once: everything is written into a
temporary directory beside the output directory and swapped in only when the build succeeded,
so a failed build never leaves a half-written output (nor destroys the previous one)."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from xbuild import (BUILD_LOGIC_VERSION, __version__, artifacts, binfmt, buildscript, cache, images,
                    publish, sources, toolchain)
from xbuild.archive import extract, max_output, save_stream, sha256_file, tar_tree
from xbuild.atomic import swap_in
from xbuild.store import configured_url, open_store
from xbuild.buildlog import BuildLog
from xbuild.errors import BuildFailed, OutOfMemory, XBuildError
from xbuild.progress import Progress
from xbuild.sandbox import Container, check_free_space, disk_limit_error, engine_data_root
from xbuild.spec import OUT_DIRNAME, BuildSpec


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

    def to_json(self) -> dict:
        return {"status": "ok", "target": self.spec.target.name,
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
                                               spec.recipe.name)
        files["artifacts.txt"] = "".join(p + "\n" for p in spec.config.artifacts)
        for rel, text in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            path.chmod(0o755 if rel.startswith("bin/") or rel.endswith(".sh") else 0o644)
        for d in ("stage", "stage/install"):
            (root / d).mkdir(parents=True, exist_ok=True)
        return tar_tree(root, mtime=spec.source_date_epoch, uid=1000, gid=1000, prefix="xbuild/")


def _environment(spec: BuildSpec) -> dict[str, str]:
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
              push_to: str | None = None) -> BuildResult:
    """Answer from the cache when the same inputs were built before; otherwise build, and record
    the build in the configured store (the cache). Optionally publish to another store."""
    progress = progress or Progress(quiet=True)
    started = time.monotonic()
    exclude = sources.excluder(spec.project, spec.out, OUT_DIRNAME)
    source_hash = sources.tree_hash(spec.project, exclude)
    image_def = images.builder_def(spec.target, spec.mode, spec.config.packages, spec.toolchain)
    key = cache.key(spec, source_hash, image_def.tag)
    build_id, base = cache.build_id(spec, key), cache.store_base(spec)
    store = open_store(configured_url(), create=True) if use_cache or record else None

    result = _from_cache(spec, store, base, build_id, key, progress) if use_cache else None
    if result is None:
        result = _build(spec, image_def, exclude, source_hash, progress, labels or {})
        if record:
            progress.phase("store", f"recording build {build_id} in {store.url}")
            publish.publish(store, base, spec.out, _record(spec, build_id, key, result))
    result.extra.update({"build_id": build_id, "cache_key": key})
    if publish_to:
        progress.phase("publish", publish_to)
        target_store = open_store(publish_to, create=create_bucket)
        done = publish.publish(target_store, "", spec.out, _record(spec, build_id, key, result),
                               progress=lambda msg: progress.phase("publish", msg))
        result.extra["published"] = done.url
    if push_to:
        from xbuild import dockerimage
        progress.phase("push", f"{push_to}:{spec.target.name}")
        result.extra["pushed"] = dockerimage.push(result.image, result.artifacts[0].path, push_to,
                                                  spec.target, lambda msg: progress.phase("push", msg))
    result.duration = time.monotonic() - started
    progress.done()
    return result


def _record(spec: BuildSpec, build_id: str, key: str, result: "BuildResult") -> dict:
    return {"schema": 1, "build_id": build_id, "project": spec.name, "target": spec.target.name,
            "mode": spec.mode, "recipe": spec.recipe.name, "cache_key": key,
            "source_tree_sha256": result.source_hash, "image": result.image}


def _from_cache(spec, store, base, build_id, key, progress) -> "BuildResult | None":
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
                if n.endswith((".tar.gz", ".image.tar"))]
    return BuildResult(spec, archives, spec.out / "manifest.json", spec.out / "build.log",
                       record.get("image", ""), record["source_tree_sha256"], 0.0, {"cache": "hit"})


def _build(spec: BuildSpec, image_def, exclude, source_hash: str, progress: Progress,
           labels: dict) -> BuildResult:
    spec.out.parent.mkdir(parents=True, exist_ok=True)
    check_free_space([p for p in (engine_data_root(), spec.out.parent) if p is not None])
    work = Path(tempfile.mkdtemp(prefix=f".{spec.out.name}.tmp-", dir=spec.out.parent))
    failed_log = spec.out.parent / f"{spec.out.name}.failed.log"
    try:
        log_path = work / "out" / "build.log"
        log_path.parent.mkdir()
        # Secrets the project passes in are masked in every line logged (the store keeps the log).
        with BuildLog(log_path, progress, secrets=spec.passed_env().values()) as log:
            if spec.recipe.kind == "image":
                produced, image_id = _dockerfile_image(spec, exclude, source_hash, work, log,
                                                       progress, labels)
            else:
                produced, image_id = _compile(spec, image_def, exclude, source_hash, work, log,
                                              progress, labels)
        swap_in(work / "out", spec.out)
        failed_log.unlink(missing_ok=True)
        return BuildResult(
            spec, [artifacts.Artifact(spec.out / a.path.name, a.sha256, a.size) for a in produced],
            spec.out / "manifest.json", spec.out / "build.log", image_id, source_hash, 0.0,
            {"cache": "miss"})
    except BaseException:
        if (work / "out" / "build.log").exists():  # this failure's log, not an older one's
            shutil.copy(work / "out" / "build.log", failed_log)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _manifest(spec: BuildSpec, source_hash: str, files: list, **extra) -> dict:
    return {"name": spec.name, "target": spec.target.summary(), "mode": spec.mode,
            "recipe": spec.recipe.name, "source_tree_sha256": source_hash, "options": spec.options(),
            "files": files, "xbuild": {"version": __version__, "build_logic": BUILD_LOGIC_VERSION},
            **extra}


def _compile(spec, image_def, exclude, source_hash, work, log, progress, labels):
    """The recipe's steps in a sandboxed builder, then the ABI gate and the archive."""
    if spec.mode == "emulate" and spec.target.needs_qemu:
        binfmt.require(spec.target.qemu_arch, f"an emulated {spec.target.name} build")
    progress.phase("image", f"{spec.target.name} ({spec.target.debian_arch}, {spec.mode})")
    image = images.ensure(image_def, log.line)

    progress.phase("build", f"{spec.recipe.name} recipe in {image.tag}")
    name = f"xbuild-{spec.target.name}-{uuid.uuid4().hex[:10]}"
    with Container(image.id, ["bash", f"{toolchain.ROOT}/build.sh"], name=name,
                   env=_environment(spec), limits=spec.limits, labels=labels,
                   kill_inside=True) as box:
        progress.container(name)
        with sources.payload(spec.project, exclude, spec.source_date_epoch,
                             spec.variation.src_dir) as payload:
            box.put("/", payload)
        box.put("/", _control_files(spec))
        code = box.run(log.line)
        if code != 0:
            raise _build_failed(log, code, box.oom_killed, spec.limits,
                                spec.out.parent / f"{spec.out.name}.failed.log")
        with (work / "stage.tar").open("wb") as f:  # streamed to disk, capped, never in memory
            save_stream(box.get(buildscript.STAGE), f, max_output(), "the build output")
    extract(work / "stage.tar", work / "stage", "build output", strip="stage")
    (work / "stage.tar").unlink()  # its disk space is needed for the archive

    tree = work / "tree"
    artifacts.assemble(work / "stage", tree)
    files = artifacts.describe(tree)
    progress.phase("check", f"ABI gate on {sum('elf' in f for f in files)} ELF file(s)")
    artifacts.gate(files, spec.target.abi, spec.target.name)
    manifest = _manifest(spec, source_hash, files, image={"tag": image.tag, "id": image.id},
                         toolchain={**spec.toolchain.summary(), **_toolchain_versions(work / "stage")})
    log.close()  # complete before it is listed beside the artifacts
    produced = artifacts.write(tree, work / "out", spec.name, spec.target.name, manifest,
                               spec.source_date_epoch)
    return produced, image.id


def _dockerfile_image(spec, exclude, source_hash, work, log, progress, labels):
    """A Dockerfile project: an image for the board's platform, saved as a `docker load` archive."""
    from xbuild import dockerimage
    if spec.target.needs_qemu:
        binfmt.require(spec.target.qemu_arch, f"RUN steps of a {spec.target.name} image")
    progress.phase("build", f"Dockerfile for {spec.target.platform}")
    built = dockerimage.build(spec.project, spec.name, spec.target, exclude, spec.source_date_epoch,
                              log.line, labels, spec.limits, progress)
    archive = work / "out" / f"{spec.name}-{spec.target.name}.image.tar"
    name = dockerimage.image_name(spec.name, spec.target)
    progress.phase("save", f"{name} -> {archive.name}")
    try:
        dockerimage.save(built["tag"], archive, name)
    finally:
        dockerimage.remove(built["tag"])  # the build's own tag: no other build may see it
    built["tag"] = name
    files = [{"path": archive.name, "size": archive.stat().st_size, "sha256": sha256_file(archive)}]
    manifest = _manifest(spec, source_hash, files, image=built,
                         artifacts=[{"name": archive.name, "sha256": files[0]["sha256"],
                                     "size": files[0]["size"]}])
    (work / "out" / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    sums = [f"{files[0]['sha256']}  {archive.name}",
            f"{sha256_file(work / 'out' / 'manifest.json')}  manifest.json"]
    (work / "out" / "SHA256SUMS").write_text("\n".join(sums) + "\n")
    return [artifacts.Artifact(archive, files[0]["sha256"], files[0]["size"])], built["id"]


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
    why = " (killed by SIGKILL)" if code == 137 else ""
    return BuildFailed(f"{step} failed (exit code {code}){why}", detail=detail,
                       hint=f"full log: {keep}")

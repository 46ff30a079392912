"""run_build(spec): the one pipeline behind the CLI, the service and the nightly schedule.

    image -> sandboxed build -> collect -> ABI gate -> archive + SHA256SUMS + manifest

It knows nothing of queues or HTTP. Outputs appear all at once: everything is written into a
temporary directory beside the output directory and swapped in only when the build succeeded,
so a failed build never leaves a half-written output (nor destroys the previous one)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from xbuild import BUILD_LOGIC_VERSION, __version__, artifacts, binfmt, buildscript, images, toolchain
from xbuild.archive import extract, tar_tree
from xbuild.errors import BuildFailed
from xbuild.progress import Progress
from xbuild.sandbox import Container
from xbuild.spec import OUT_DIRNAME, BuildSpec

LOG_TAIL = 40


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
        return {"status": "ok", "target": self.spec.target.name, "mode": self.spec.mode,
                "recipe": self.spec.recipe.name, "artifacts": [a.to_json() for a in self.artifacts],
                "manifest": str(self.manifest), "log": str(self.log), "image": self.image,
                "source_hash": self.source_hash, "duration": round(self.duration, 3), **self.extra}


def source_payload(spec: BuildSpec) -> tuple[bytes, str]:
    """The project as a tar for the container (owned by the build user, mtimes fixed) and the
    hash of its content. xbuild's own output directory and VCS metadata stay out."""
    out_rel = os.path.relpath(spec.out, spec.project)

    def exclude(rel: str) -> bool:
        top = rel.split("/", 1)[0]
        return top in (OUT_DIRNAME, ".git", ".hg", ".svn") or rel == out_rel or rel.startswith(out_rel + "/")

    data = tar_tree(spec.project, mtime=spec.source_date_epoch, uid=1000, gid=1000,
                    prefix="xbuild/src/", exclude=exclude, clamp=False)
    return data, hashlib.sha256(data).hexdigest()


def _control_files(spec: BuildSpec) -> bytes:
    """/xbuild: shims, toolchain files, the build script, the artifact globs."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        files = toolchain.files(spec.target, spec.mode)
        files["build.sh"] = buildscript.render(spec.steps, spec.recipe.collect_new_elf)
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
    env = toolchain.environment(spec.target, spec.mode, spec.jobs)
    env["SOURCE_DATE_EPOCH"] = str(spec.source_date_epoch)
    env.update(dict(spec.config.env))
    # The caller's environment (and its credentials) stays out, except names the project asks for.
    env.update({k: os.environ[k] for k in spec.config.pass_env if k in os.environ})
    return env


def _toolchain_versions(stage: Path) -> dict:
    meta = stage / "meta" / "toolchain.txt"
    if not meta.is_file():
        return {}
    pairs = (line.split(": ", 1) for line in meta.read_text().splitlines() if ": " in line)
    return {k: v for k, v in pairs if v.strip()}


def run_build(spec: BuildSpec, progress: Progress | None = None) -> BuildResult:
    progress = progress or Progress(quiet=True)
    started = time.monotonic()
    spec.out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{spec.out.name}.tmp-", dir=spec.out.parent))
    failed_log = spec.out.parent / f"{spec.out.name}.failed.log"
    try:
        log_path = work / "out" / "build.log"
        log_path.parent.mkdir()
        with log_path.open("w") as log:
            def on_line(line: str) -> None:
                log.write(line + "\n")
                progress.line(line)

            if spec.mode == "emulate" and spec.target.needs_qemu:
                binfmt.require(spec.target.qemu_arch, f"an emulated {spec.target.name} build")
            progress.phase("image", f"{spec.target.name} ({spec.target.debian_arch}, {spec.mode})")
            image = images.builder(spec.target, spec.mode, on_line)
            image = images.with_packages(image, spec.target, spec.mode, spec.config.packages, on_line)

            payload, source_hash = source_payload(spec)
            progress.phase("build", f"{spec.recipe.name} recipe in {image.tag}")
            name = f"xbuild-{spec.target.name}-{uuid.uuid4().hex[:10]}"
            with Container(image.id, ["bash", f"{toolchain.ROOT}/build.sh"], name=name,
                           env=_environment(spec), limits=spec.limits) as box:
                box.put("/", payload)
                box.put("/", _control_files(spec))
                code = box.run(on_line)
                if code != 0:
                    log.flush()
                    raise _build_failed(log_path, failed_log, code)
                extract(box.get(buildscript.STAGE), work / "stage", "build output", strip="stage")

        tree = work / "tree"
        artifacts.assemble(work / "stage", tree)
        files = artifacts.describe(tree)
        progress.phase("check", f"ABI gate on {sum('elf' in f for f in files)} ELF file(s)")
        artifacts.gate(files, spec.target.abi, spec.target.name)
        manifest = {
            "name": spec.name, "target": spec.target.summary(), "mode": spec.mode,
            "recipe": spec.recipe.name, "image": {"tag": image.tag, "id": image.id},
            "toolchain": _toolchain_versions(work / "stage"), "source_tree_sha256": source_hash,
            "options": spec.options(), "files": files,
            "xbuild": {"version": __version__, "build_logic": BUILD_LOGIC_VERSION},
        }
        produced = artifacts.write(tree, work / "out", spec.name, spec.target.name, manifest,
                                   spec.source_date_epoch)
        _swap_in(work / "out", spec.out)
        failed_log.unlink(missing_ok=True)
        progress.done()
        return BuildResult(
            spec, [artifacts.Artifact(spec.out / a.path.name, a.sha256, a.size) for a in produced],
            spec.out / "manifest.json", spec.out / "build.log", image.id, source_hash,
            time.monotonic() - started)
    except BaseException:
        if (work / "out" / "build.log").exists() and not failed_log.exists():
            shutil.copy(work / "out" / "build.log", failed_log)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _build_failed(log_path: Path, keep: Path, code: int) -> BuildFailed:
    shutil.copy(log_path, keep)
    lines = [ln for ln in log_path.read_text(errors="replace").splitlines()
             if not ln.startswith("::xbuild ")]
    step = next((ln.removeprefix("::xbuild ") for ln in reversed(log_path.read_text().splitlines())
                 if ln.startswith("::xbuild step")), "the build")
    return BuildFailed(f"{step.split(': ', 1)[-1]!r} failed (exit code {code})",
                       detail="\n".join(lines[-LOG_TAIL:]),
                       hint=f"full log: {keep}")


def _swap_in(new: Path, dest: Path) -> None:
    """Replace dest with new using renames, so readers see the old or the new output, never a mix."""
    old = None
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old-{uuid.uuid4().hex[:8]}")
        dest.rename(old)
    new.rename(dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)

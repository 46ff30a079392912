"""The one context a build's steps share (pipeline.py), in the manner of mkosi's Context: what is
built and how the cache is used, who hears (an observer.Observer), how long each phase took, and
what the steps have made so far. And what a build returns (BuildResult)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from xbuild import BUILD_LOGIC_VERSION, __version__
from xbuild.artifact import artifacts, depends
from xbuild.containers import images
from xbuild.containers.sandbox import Box
from xbuild.errors import BuildCancelled
from xbuild.pipeline import compiler_cache
from xbuild.pipeline.buildlog import BuildLog
from xbuild.pipeline.observer import Observer
from xbuild.pipeline.spec import BuildSpec
from xbuild.schema import json_value
from xbuild.store import Store


@dataclass(frozen=True)
class CacheUse:
    """How a build uses the store's build cache (XBUILD_STORE). Hits never change the output."""
    answer: bool = True  # an earlier build of the same inputs answers this one (--no-cache: no)
    record: bool = True  # a build made here is recorded, to answer later ones
    scope: str = ""      # whose builds answer and are recorded: a service tenant's own (cache.store_base)


DEFAULT_CACHE = CacheUse()
NO_CACHE = CacheUse(answer=False, record=False)  # verify, tests: every build made afresh, kept nowhere


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


@dataclass
class BuildContext:
    """One build, as each step sees it. The fields below the first group are each set by one step
    (named beside it) and read by later ones: a step that runs out of order fails at once."""
    spec: BuildSpec
    observer: Observer
    cache: CacheUse
    labels: dict          # on every container and image the build makes (the service's job id)
    keep_failed: bool     # --keep: a failed build's tree is copied out for inspection
    ccache_use: bool | Path | compiler_cache.CompilerCache  # run_build's compiler_cache
    started: float = field(default_factory=time.monotonic)
    started_at: float = field(default_factory=time.time)  # the wall clock's, for the provenance
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase: --json, bench/, the job
    stats: dict = field(default_factory=dict)  # what the result reports besides the files
    result: BuildResult | None = None  # by the cache's answer, or by the workspace on success
    # What a step made on the host for the build container, put in as /xbuild/<name>/ by copy_in,
    # read-only (root's): a wheel's build requirements (wheel.requirements)
    payload: dict[str, Path] = field(default_factory=dict)
    sections: dict = field(default_factory=dict)  # a kind's own parts of the manifest (go, cargo)
    _phase: str = ""
    _phase_start: float = 0.0

    # inputs: what the build is a function of, and where it is answered from and recorded
    exclude: Callable[[str], bool] = field(init=False)  # what of the tree stays out (sources.excluder)
    source_hash: str = field(init=False)
    image_def: images.ImageDef = field(init=False)
    key: str = field(init=False)
    build_id: str = field(init=False)
    base: str = field(init=False)     # the build's place in the store (cache.store_base)
    store: Store | None = field(init=False)  # opened when the cache is answered from or recorded in
    ccache: compiler_cache.CompilerCache | None = field(init=False)  # mounted into the container
    # workspace: private, beside the output directory; its out/ is swapped in on success
    work: Path = field(init=False)
    log: BuildLog = field(init=False)
    held: contextlib.ExitStack = field(init=False)  # the build container, until collected
    # the steps
    image: images.Image = field(init=False)  # ensure_image
    box: Box = field(init=False)  # copy_in
    ccache_before: tuple[int, int] = field(init=False)  # copy_in: the namespace's counters
    files: list[dict] = field(init=False)  # collect: artifacts.describe of the tree
    links: dict[str, str] = field(init=False)  # gate: the tree's library names (depends.links)
    found: depends.Resolved = field(init=False)  # find_depends
    built: dict = field(init=False)  # build_dockerfile: the image's tag, id, bases, platform
    built_wheel: Path = field(init=False)  # wheel.unpack: the wheel as the recipe made it
    produced: list[artifacts.Artifact] = field(init=False)  # package, save_image
    image_id: str = field(init=False)  # package, build_dockerfile: what result.image names

    @property
    def out(self) -> Path:
        return self.work / "out"

    @property
    def stage(self) -> Path:
        """The build's /xbuild/stage, unpacked."""
        return self.work / "stage"

    @property
    def tree(self) -> Path:
        """The artifact's tree, laid out from the stage."""
        return self.work / "tree"

    @property
    def answer_from(self) -> Store | None:
        return self.store if self.cache.answer else None

    @property
    def record_in(self) -> Store | None:
        return self.store if self.cache.record else None

    def phase(self, name: str, detail: str = "") -> None:
        """Phase `name` begins (the one before ends here), said to the observer."""
        self._clock(name)
        self.observer.phase(name, detail)

    def mark(self, name: str) -> None:
        """Phase `name` begins, unannounced. It starts only while nobody wants the build stopped:
        a cancel that came during the previous one (the copy into a container that has not
        started, which no kill can stop) ends the build here, before its steps run."""
        self._clock(name)
        self.observer.mark(name)
        if name and self.observer.stop_requested():
            raise BuildCancelled("the build was cancelled")

    def _clock(self, name: str) -> None:
        now = time.monotonic()
        if self._phase:  # the same phase again (a second recipe step): its times add up
            self.timings[self._phase] = self.timings.get(self._phase, 0.0) + now - self._phase_start
        self._phase, self._phase_start = name, now

    def finish(self) -> BuildResult:
        """The result, with its duration and the phases' timings; the observer hears it is done."""
        assert self.result is not None, "finish() after a step that made or found the result"
        result = self.result
        result.duration = time.monotonic() - self.started
        self._clock("")
        self.observer.done()
        result.extra["timings"] = {name: round(t, 3) for name, t in self.timings.items()}
        return result

    def manifest(self, files: list, **extra) -> dict:
        spec = self.spec
        return {"name": spec.name, "target": spec.target.summary(), "mode": spec.mode,
                "recipe": spec.recipe.name, "source_tree_sha256": self.source_hash,
                "options": spec.options(), "files": files, **({"origin": spec.origin} if spec.origin else {}),
                "xbuild": {"version": __version__, "build_logic": BUILD_LOGIC_VERSION},
                **self.sections, **extra}

    def record(self) -> dict:
        """The build's record in a store (publish.py): what answers a later build of its inputs."""
        assert self.result is not None
        spec = self.spec
        return {"schema": 1, "build_id": self.build_id, "project": spec.name, "target": spec.target.name,
                "mode": spec.mode, "recipe": spec.recipe.name, "cache_key": self.key,
                "source_tree_sha256": self.result.source_hash, "image": self.result.image}

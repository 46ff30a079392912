"""Where a finished build goes besides its output directory: the last steps of run_build, chosen
by the caller (`xbuild build --publish/--push`), run in order on a result built or answered
from the cache alike:

    run_build(spec, observer, deliver=[Publish(url, create_bucket), Push(repo)])"""

from __future__ import annotations

import functools
import tempfile
from dataclasses import dataclass
from pathlib import Path

from xbuild.host.archive import write_tar_gz
from xbuild.pipeline.context import BuildContext
from xbuild.pipeline.spec import OUT_DIRNAME
from xbuild.project import sources
from xbuild.store import open_store, publish, wheelindex


@dataclass(frozen=True)
class Publish:
    """The artifacts, manifest and log, with the build's record, into another store (s3://,
    file://): result.extra["published"] says where. A wheel also joins the store's package
    index for its board and release (wheelindex: <url>/rpi3-trixie/simple/, result.extra["index"]),
    which pip on the board reads with --extra-index-url."""
    url: str
    create_bucket: bool = False

    def __call__(self, ctx: BuildContext) -> None:
        assert ctx.result is not None
        ctx.phase("publish", self.url)
        store = open_store(self.url, create=self.create_bucket)
        # The source beside the build: anyone can rebuild it from the store (verify --against).
        with tempfile.TemporaryDirectory(prefix="xbuild-source-") as tmp:
            archive = Path(tmp) / "source.tar.gz"
            spec = ctx.spec
            write_tar_gz(spec.project, archive, mtime=0, clamp=False,
                         exclude=sources.excluder(spec.project, spec.out, OUT_DIRNAME))
            source = publish.put_source(store, "", archive)
        done = publish.publish(store, "", ctx.spec.out, {**ctx.record(), "source": source},
                               progress=functools.partial(ctx.phase, "publish"),
                               trust_record=ctx.result.extra.get("cache") == "hit")  # see publish()
        ctx.result.extra["published"] = done.url
        wheels = [a.path for a in ctx.result.artifacts if a.path.suffix == ".whl"]
        if wheels:
            target = ctx.spec.target
            base = wheelindex.board_base(target.name, target.selected.name)
            for wheel in wheels:
                wheelindex.add(store, base, wheel)
            ctx.result.extra["index"] = index = f"{store.url.rstrip('/')}/{base}/simple/"
            ctx.phase("publish", f"package index for {target.name} on {target.os_name}: {index}")


@dataclass(frozen=True)
class Push:
    """A Dockerfile project's image, pushed as repo:<target>: result.extra["pushed"] names its
    digest."""
    repo: str

    def __call__(self, ctx: BuildContext) -> None:
        from xbuild.containers import dockerimage
        assert ctx.result is not None
        target = ctx.spec.target
        ctx.phase("push", f"{self.repo}:{target.name}")
        ctx.result.extra["pushed"] = dockerimage.push(ctx.result.image, ctx.result.artifacts[0].path,
                                                      self.repo, target, functools.partial(ctx.phase, "push"))

"""`xbuild [build] --target T PROJECT`."""

from __future__ import annotations

import click

from xbuild.commands import emit_json, json_option, option, request_options
from xbuild.errors import ConfigError, XBuildError


@click.command()
@request_options("target")
@click.argument("project", type=click.Path(), default=".", required=False)
@request_options("os", "static", "mode", "packages")
@option("-o", "--out", type=click.Path(), env="XBUILD_OUT_DIR",
        help="Output directory, replaced whole: a new or empty one, or one xbuild made (any other "
             "is refused) [default: PROJECT/xbuild-out/TARGET].")
@request_options("jobs", "timeout", "memory")
@option("--publish", metavar="URL", env="XBUILD_PUBLISH",
        help="Also publish the build to this store: s3://bucket/project or file:///dir.")
@option("--create-bucket", is_flag=True, env="XBUILD_CREATE_BUCKET",
        help="Create the --publish bucket when it does not exist.")
@option("--push", metavar="REPO", env="XBUILD_PUSH",
        help="Dockerfile projects: also push the image as REPO:TARGET (the engine's `docker login`).")
@request_options("no_cache")
@option("--compiler-cache/--no-compiler-cache", default=True, env="XBUILD_COMPILER_CACHE",
        help="Compile through ccache, kept per board, OS release, toolchain and project under "
             "~/.cache/xbuild/compiler-cache (`xbuild cache stats|clear`); outputs are identical "
             "either way. Not the build cache of --no-cache.")
@option("--share-compiler-cache", "share_compiler_cache", is_flag=True,
        env="XBUILD_COMPILER_CACHE_SHARE",
        help="Use the one compiler cache all projects that ask for it share (per board, OS release "
             "and toolchain) instead of this project's own. Any project sharing it can change what "
             "the others' builds produce: share only between projects you trust alike.")
@request_options("deb", "keep_debug")
@option("--keep", is_flag=True, env="XBUILD_KEEP",
        help="When the build fails, copy its tree (config.log, CMakeError.log, ...) out beside the "
             "output directory as TARGET.failed/ and say where.")
@option("-v", "--verbose", is_flag=True, env="XBUILD_VERBOSE", help="Stream the full build log to stderr.")
@json_option
def build(project, out, publish, create_bucket, push, compiler_cache, share_compiler_cache, keep, verbose,
          as_json, request):
    """Build PROJECT (default: the current directory) for a board."""
    from xbuild.pipeline import spec as specs

    try:
        # Resolve first: a user's mistake is reported before the engine libraries even load.
        spec = specs.resolve(project, request, out=out)
        if push:
            _check_push(spec, push)
        from xbuild.host.atomic import check_out
        from xbuild.store import check_url, configured_url
        check_out(spec.out, spec.project)  # before the build, not after it: see atomic.py
        for url in filter(None, (publish, configured_url())):
            check_url(url)
        import functools

        from xbuild.pipeline import compiler_cache as ccache
        from xbuild.pipeline.build import Step, run_build
        from xbuild.pipeline.context import CacheUse
        from xbuild.pipeline.delivery import Publish, Push
        from xbuild.pipeline.progress import Progress
        progress = Progress(verbose=verbose)
        cc = ccache.for_build(spec, ccache.enabled(compiler_cache), share=share_compiler_cache)
        deliver: list[Step] = [*([Publish(publish, create_bucket)] if publish else []),
                               *([Push(push)] if push else [])]
        # A CI runner's cache comes from (and goes back to) a shared s3:// XBUILD_STORE.
        with ccache.through_store(cc, functools.partial(progress.phase, "compiler cache")):
            result = run_build(spec, progress, cache=CacheUse(answer=not request.no_cache), deliver=deliver,
                               keep_failed=keep, compiler_cache=cc or False)
    except XBuildError as exc:
        if as_json:
            emit_json({"status": "error", "target": request.target, "os": request.os, "mode": request.mode,
                       **exc.to_json()})
        raise
    if as_json:
        emit_json(result.to_json())
        return
    how = "from the cache" if result.extra.get("cache") == "hit" else "built"
    click.echo(f"{how}: {spec.name} for {spec.target.name} on {spec.target.os_name} "
               f"({spec.mode}, {spec.toolchain.name}{', static' if spec.static else ''}, "
               f"{spec.recipe.name}) "
               f"in {result.duration:.1f}s, build {result.extra['build_id']}")
    for what in ("published", "index", "pushed"):
        if what in result.extra:
            click.echo(f"  {what}: {result.extra[what]}")
    for a in result.artifacts:
        click.echo(f"  {a.path}  {a.size} bytes  sha256:{a.sha256[:16]}")
    click.echo(f"  manifest: {result.manifest}\n  log: {result.log}")
    if (cc := result.extra.get("compiler_cache", {})).get("enabled") and how == "built":
        click.echo(f"  compiler cache: {cc['hits']} hits, {cc['misses']} misses ({cc['namespace']})")
    if result.depends:
        from xbuild.artifact.depends import packages
        click.echo(f"  on the board: sudo apt install {' '.join(packages(result.depends))}")


def _check_push(spec, repo: str) -> None:
    from xbuild.containers.dockerimage import check_repository
    if spec.recipe.kind != "image":
        raise ConfigError(f"--push needs a Dockerfile project; {spec.project} builds with "
                          f"the {spec.recipe.name} recipe", hint="publish archives with --publish")
    check_repository(repo)

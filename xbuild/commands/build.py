"""`xbuild [build] --target T PROJECT`."""

from __future__ import annotations

import click

from xbuild import MODES
from xbuild.commands import emit_json, json_option, option
from xbuild.config import MAX_TIMEOUT
from xbuild.errors import ConfigError, XBuildError


@click.command()
@option("-t", "--target", required=True, env="XBUILD_TARGET", help="Board to build for (`xbuild targets`).")
@click.argument("project", type=click.Path(), default=".", required=False)
@option("--os", "os_release", metavar="RELEASE", env="XBUILD_OS",
        help="The board's OS release, e.g. bullseye [default: xbuild.toml's os, else the board's "
             "default; `xbuild targets` lists them].")
@option("--static/--no-static", default=None, env="XBUILD_STATIC",
        help="Fully static executables (zig + musl), needing nothing from the board's userland; "
             "ARM boards [default: xbuild.toml's static, else off].")
@option("--mode", type=click.Choice(MODES), default="cross", show_default=True,
        env="XBUILD_MODE", help="cross: Debian cross toolchain at native speed; emulate: the whole "
                                "build in a target-arch root under qemu; hybrid: that root, with the "
                                "x86-64 cross compiler and linker in it (builds that run target code).")
@option("-o", "--out", type=click.Path(), env="XBUILD_OUT_DIR",
        help="Output directory, replaced whole: a new or empty one, or one xbuild made (any other "
             "is refused) [default: PROJECT/xbuild-out/TARGET].")
@option("-j", "--jobs", type=click.IntRange(1), env="XBUILD_JOBS", help="Parallel jobs [default: CPUs].")
@option("--timeout", type=click.IntRange(1, MAX_TIMEOUT), env="XBUILD_TIMEOUT",
        help="Kill the build after this many seconds [default: 3600, or xbuild.toml's].")
@option("--memory", default="4g", show_default=True, env="XBUILD_MEMORY", help="Memory limit of the build container.")
@option("--publish", metavar="URL", env="XBUILD_PUBLISH",
        help="Also publish the build to this store: s3://bucket/project or file:///dir.")
@option("--create-bucket", is_flag=True, env="XBUILD_CREATE_BUCKET",
        help="Create the --publish bucket when it does not exist.")
@option("--push", metavar="REPO", env="XBUILD_PUSH",
        help="Dockerfile projects: also push the image as REPO:TARGET (the engine's `docker login`).")
@option("--no-cache", is_flag=True, env="XBUILD_NO_CACHE",
        help="Build even when the store (XBUILD_STORE) has this build already (the build cache; "
             "the compiler cache is --no-compiler-cache).")
@option("--compiler-cache/--no-compiler-cache", default=True, env="XBUILD_COMPILER_CACHE",
        help="Compile through ccache, kept per board, OS release, toolchain and project under "
             "~/.cache/xbuild/compiler-cache (`xbuild cache stats|clear`); outputs are identical "
             "either way. Not the build cache of --no-cache.")
@option("--share-compiler-cache", "share_compiler_cache", is_flag=True,
        env="XBUILD_COMPILER_CACHE_SHARE",
        help="Use the one compiler cache all projects that ask for it share (per board, OS release "
             "and toolchain) instead of this project's own. Any project sharing it can change what "
             "the others' builds produce: share only between projects you trust alike.")
@option("--deb/--no-deb", default=None, env="XBUILD_DEB",
        help="Also write NAME_VERSION_ARCH.deb, installable on the board with apt [default: "
             "xbuild.toml's deb].")
@option("--keep-debug", is_flag=True, env="XBUILD_KEEP_DEBUG",
        help="Leave in the debug information of the runtime zig links into every program (Pi "
             "Zero/1, L4T, --static). Without it only a project built with -g keeps debug "
             "information, as with gcc.")
@option("--keep", is_flag=True, env="XBUILD_KEEP",
        help="When the build fails, copy its tree (config.log, CMakeError.log, ...) out beside the "
             "output directory as TARGET.failed/ and say where.")
@option("-v", "--verbose", is_flag=True, env="XBUILD_VERBOSE", help="Stream the full build log to stderr.")
@json_option
def build(target, project, os_release, static, mode, out, jobs, timeout, memory, publish, create_bucket,
          push, no_cache, compiler_cache, share_compiler_cache, deb, keep_debug, keep, verbose,
          as_json):
    """Build PROJECT (default: the current directory) for a board."""
    from xbuild import spec as specs

    try:
        # Resolve first: a user's mistake is reported before the engine libraries even load.
        spec = specs.resolve(project, target, mode=mode, out=out, jobs=jobs, timeout=timeout,
                             memory=memory, os_release=os_release, static=static, deb=deb,
                             keep_debug=keep_debug)
        if push:
            _check_push(spec, push)
        from xbuild.atomic import check_out
        from xbuild.store import check_url, configured_url
        check_out(spec.out, spec.project)  # before the build, not after it: see atomic.py
        for url in filter(None, (publish, configured_url())):
            check_url(url)
        import functools

        from xbuild import compiler_cache as ccache
        from xbuild.build_context import CacheUse
        from xbuild.delivery import Publish, Push
        from xbuild.pipeline import Step, run_build
        from xbuild.progress import Progress
        progress = Progress(verbose=verbose)
        cc = ccache.for_build(spec, ccache.enabled(compiler_cache), share=share_compiler_cache)
        deliver: list[Step] = [*([Publish(publish, create_bucket)] if publish else []),
                               *([Push(push)] if push else [])]
        # A CI runner's cache comes from (and goes back to) a shared s3:// XBUILD_STORE.
        with ccache.through_store(cc, functools.partial(progress.phase, "compiler cache")):
            result = run_build(spec, progress, cache=CacheUse(answer=not no_cache), deliver=deliver,
                               keep_failed=keep, compiler_cache=cc or False)
    except XBuildError as exc:
        if as_json:
            emit_json({"status": "error", "target": target, "os": os_release, "mode": mode,
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
    for what in ("published", "pushed"):
        if what in result.extra:
            click.echo(f"  {what}: {result.extra[what]}")
    for a in result.artifacts:
        click.echo(f"  {a.path}  {a.size} bytes  sha256:{a.sha256[:16]}")
    click.echo(f"  manifest: {result.manifest}\n  log: {result.log}")
    if (cc := result.extra.get("compiler_cache", {})).get("enabled") and how == "built":
        click.echo(f"  compiler cache: {cc['hits']} hits, {cc['misses']} misses ({cc['namespace']})")
    if result.depends:
        from xbuild.depends import packages
        click.echo(f"  on the board: sudo apt install {' '.join(packages(result.depends))}")


def _check_push(spec, repo: str) -> None:
    from xbuild.dockerimage import check_repository
    if spec.recipe.kind != "image":
        raise ConfigError(f"--push needs a Dockerfile project; {spec.project} builds with "
                          f"the {spec.recipe.name} recipe", hint="publish archives with --publish")
    check_repository(repo)

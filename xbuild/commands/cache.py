"""`xbuild cache stats|clear`: the compiler cache (ccache), per board, OS release, toolchain and
project. Not the build cache (the store's finished builds, skipped with `--no-cache`)."""

from __future__ import annotations

import click

from xbuild.commands import emit_json, json_option, option


@click.group()
def cache():
    """The compiler cache (ccache) under ~/.cache/xbuild/compiler-cache: one per board, OS release,
    toolchain and project (or `shared`). Not the build cache of finished builds (`--no-cache`)."""


def _selected(target: str | None, os_release: str | None) -> list[str]:
    """The namespaces a board and a release select, both checked against the known ones before
    they touch the disk (`--os ../../..` must not name a directory to empty)."""
    from xbuild.board import releases, targets
    from xbuild.errors import UnknownRelease
    from xbuild.pipeline import compiler_cache
    board = targets.get(target) if target else None  # an alias names its board's cache
    if os_release and board is not None:
        os_release = board.with_os(os_release).selected.name  # UnknownRelease: not the board's
    elif os_release and os_release not in releases.all_releases():
        raise UnknownRelease(f"unknown OS release {os_release!r}: the releases are "
                             f"{', '.join(releases.all_releases())}")
    return compiler_cache.namespaces(board.name if board else "*", os_release or "*")


_target = option("-t", "--target", env="XBUILD_TARGET", help="Only this board's caches.")
_os = option("--os", "os_release", metavar="RELEASE", env="XBUILD_OS", help="Only this OS release's caches.")


@cache.command()
@_target
@_os
@json_option
def stats(target, os_release, as_json):
    """Size, files, hits and misses of each compiler cache."""
    from xbuild.pipeline import compiler_cache
    caches = [(ns, *compiler_cache.usage(compiler_cache.root() / ns),
               *compiler_cache.counters(compiler_cache.root() / ns))
              for ns in _selected(target, os_release)]
    rows = [{"namespace": ns, "bytes": size, "files": files, "hits": hits, "misses": misses}
            for ns, size, files, hits, misses in caches]
    limit = compiler_cache.size_limit()[0]
    if as_json:
        emit_json({"directory": str(compiler_cache.root()), "max_size": limit,
                   "enabled": compiler_cache.enabled(), "caches": rows})
        return
    click.echo(f"compiler cache: {compiler_cache.root()} (at most {limit} each, "
               f"{compiler_cache.SIZE}; {'on' if compiler_cache.enabled() else 'off'})")
    if not rows:
        click.echo("  empty")
    for ns, size, files, hits, misses in caches:
        calls = hits + misses
        rate = f"{100 * hits / calls:.0f}%" if calls else "-"
        click.echo(f"  {ns:48} {size / 1e6:9.1f} MB {files:7} files  "
                   f"{hits} hits, {misses} misses ({rate})")


@cache.command()
@_target
@_os
@json_option
def clear(target, os_release, as_json):
    """Empty the compiler caches: all (and an older xbuild's ~/.cache/xbuild/ccache), or a
    board's and/or an OS release's."""
    from xbuild.pipeline import compiler_cache
    cleared = _selected(target, os_release)
    for ns in cleared:
        compiler_cache.clear(compiler_cache.root() / ns)
    if not target and not os_release:  # an older xbuild's caches, shared by all projects: unused
        compiler_cache.clear(compiler_cache.legacy_root())
    if as_json:
        emit_json({"cleared": cleared})
    else:
        click.echo(f"cleared {len(cleared)} compiler cache(s)" + "".join(f"\n  {ns}" for ns in cleared))


COMMANDS = [cache]

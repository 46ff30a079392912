"""The machine and its parts: `targets`, `doctor`, `binfmt status|install`,
`images ls|build|push|pull|prune`."""

from __future__ import annotations

import sys

import click

from xbuild.commands import emit_json, json_option, option
from xbuild.errors import ExitCode
from xbuild.request import Mode


@click.command()
@json_option
def targets(as_json):
    """The boards, one line each."""
    from xbuild.board.releases import all_releases
    from xbuild.board.targets import all_targets
    boards, known = list(all_targets().values()), all_releases()
    if as_json:
        emit_json({"targets": [t.summary() | {"description": t.description, "os_releases": [
            known[r].floors() | {"default": r == t.default_os} for r in t.os]} for t in boards]})
        return
    for t in boards:
        cpu = t.qemu_cpu or "-"
        click.echo(f"{t.name:12} {t.debian_arch:8} {t.platform:15} {cpu:11} {t.description}")
        oses = ", ".join(f"{r} (glibc {known[r].glibc}{', default' if r == t.default_os else ''})"
                         for r in t.os)
        click.echo(f"{'':12} {t.distro}: {oses}")
        if t.notes:
            click.echo(f"{'':12} {t.notes}")


@click.command()
@json_option
def doctor(as_json):
    """Check the engine, binfmt handlers (and their F flag), qemu, debootstrap and disk."""
    from xbuild.commands.doctor import checks
    results = checks()
    bad = [c for c in results if not c.ok]
    if as_json:
        emit_json({"ok": not bad, "checks": [c.to_json() for c in results]})
    else:
        for c in results:
            mark = click.style("ok  ", fg="green") if c.ok else click.style("FAIL", fg="red")
            click.echo(f"{mark} {c.name:24} {c.detail}")
            if not c.ok and c.hint:
                click.echo(f"     {'':24} fix: {c.hint}")
    sys.exit(ExitCode.NOT_ALL_OK if bad else ExitCode.OK)


@click.group()
def binfmt():
    """The qemu-user-static handlers in binfmt_misc."""


@binfmt.command("status")
@json_option
def binfmt_status(as_json):
    """Show each handler the targets need, with its flags."""
    from xbuild.board.targets import qemu_arches
    from xbuild.containers import binfmt as bf
    handlers = [bf.handler(a) for a in qemu_arches()]
    if as_json:
        emit_json({"mounted": bf.mounted(), "handlers": [h.to_json() for h in handlers]})
    else:
        click.echo(f"binfmt_misc: {'mounted' if bf.mounted() else 'NOT mounted'}")
        for h in handlers:
            state = "ok" if h.ok else h.problem()
            click.echo(f"  qemu-{h.arch:10} flags={h.flags or '-':4} {state}  {h.interpreter}")
    sys.exit(ExitCode.OK if bf.mounted() and all(h.ok for h in handlers) else ExitCode.NOT_ALL_OK)


@binfmt.command("install")
def binfmt_install():
    """Register the missing handlers with the F flag (root)."""
    from xbuild.board.targets import qemu_arches
    from xbuild.containers import binfmt as bf
    done = bf.install(qemu_arches())
    click.echo("\n".join(done) if done else "all handlers already registered with F")


@click.group()
def images():
    """The per-target builder images."""


@images.command("ls")
@json_option
def images_ls(as_json):
    """List xbuild's images."""
    from xbuild.containers.images import listing
    imgs = listing()
    if as_json:
        emit_json({"images": imgs})
        return
    for i in imgs:
        click.echo(f"{(i['tags'] or ['<none>'])[0]:60} {i['kind']:8} {i['platform']:16} "
                   f"{i['size'] / 1e6:8.0f} MB")


# The images commands make or move the builders of one mode, or of all of them.
_MODES = [*(m.value for m in Mode), "all"]


@images.command("build")
@option("-t", "--target", "target_names", required=True, multiple=True, env="XBUILD_TARGET",
        help="Board(s) whose images to build (repeat the option for several).")
@option("--mode", type=click.Choice(_MODES), default=Mode.CROSS.value, show_default=True,
        env="XBUILD_MODE", help="Which builder to make.")
@option("--os", "os_release", metavar="RELEASE", env="XBUILD_OS",
        help="The boards' OS release [default: each board's default].")
@option("-v", "--verbose", is_flag=True, env="XBUILD_VERBOSE", help="Stream apt's output.")
def images_build(target_names, mode, os_release, verbose):
    """Build (or confirm) the builder and runtime images for targets."""
    from xbuild.board import targets as tg
    from xbuild.containers import images as im
    from xbuild.pipeline.progress import Progress
    from xbuild.toolchain import pick
    progress = Progress(verbose=verbose)
    for name in target_names:
        target = tg.get(name).with_os(os_release)
        for m in (tuple(Mode) if mode == "all" else [Mode(mode)]):
            progress.phase("image", f"{target.name} builder ({m})")
            img = im.builder(pick(target, m), progress.line)
            click.echo(f"{target.name} {m}: {img.tag} ({'built' if img.built else 'up to date'})")
        rt = im.runtime(target, progress.line)
        click.echo(f"{target.name} runtime: {rt.tag} ({'built' if rt.built else 'up to date'})")
    progress.done()


def _board_images(target_names, mode: str, os_release) -> list[tuple[str, tuple[str, ...]]]:
    """The images a board's builds need (builders for the modes, runtime), each with its parents'
    tags; parents first (a pull then sends each layer once)."""
    from xbuild.board import targets as tg
    from xbuild.containers import images as im
    from xbuild.toolchain import pick
    found: dict[str, tuple[str, ...]] = {}
    for name in target_names:
        target = tg.get(name).with_os(os_release)
        tops = [im.builder_def(pick(target, m)) for m in (tuple(Mode) if mode == "all" else [Mode(mode)])]
        for top in [*tops, im.runtime_def(target)]:
            chain = (*reversed(im.parents(top)), top.tag)  # base first
            for i, tag in enumerate(chain):
                found.setdefault(tag, tuple(reversed(chain[:i])))
    return list(found.items())


_STORE = option("--store", "store_url", env="XBUILD_STORE",
                help="The store: s3://bucket/prefix or a directory [default: the local store].")
_TARGETS = option("-t", "--target", "target_names", required=True, multiple=True, env="XBUILD_TARGET",
                  help="Board(s) whose images to move (repeat the option for several).")
_MODE = option("--mode", type=click.Choice(_MODES), default=Mode.CROSS.value,
               show_default=True, env="XBUILD_MODE", help="Which builder (the runtime image always).")
_OS = option("--os", "os_release", metavar="RELEASE", env="XBUILD_OS",
             help="The boards' OS release [default: each board's default].")


def _move(verb: str, target_names, mode, os_release, store_url, as_json) -> None:
    from xbuild.containers import image_store
    from xbuild.pipeline.progress import Progress
    from xbuild.store import configured_url, open_store
    store = open_store(store_url or configured_url(), create=verb == "push")
    progress = Progress(quiet=as_json)
    done = []
    for tag, parents in _board_images(target_names, mode, os_release):
        progress.phase(verb, tag)
        if verb == "push":
            figures = image_store.push(store, tag, parents, progress.line)
        else:
            figures = image_store.pull(store, tag, progress.line)
        done.append(figures)
        if not as_json:
            moved = figures.get("uploaded_bytes", figures.get("downloaded_bytes"))
            extra = f" ({moved / 1e6:.0f} MB in {figures['seconds']:.1f} s)" if moved is not None else ""
            click.echo(f"{tag}: {figures['action']}{extra}")
    progress.done()
    if as_json:
        emit_json({"store": store.url, "images": done})


@images.command("push")
@_TARGETS
@_MODE
@_OS
@_STORE
@json_option
def images_push(target_names, mode, os_release, store_url, as_json):
    """Upload a board's images (with their parents) to the store; layers it has are skipped."""
    _move("push", target_names, mode, os_release, store_url, as_json)


@images.command("pull")
@_TARGETS
@_MODE
@_OS
@_STORE
@json_option
def images_pull(target_names, mode, os_release, store_url, as_json):
    """Load a board's images from the store, each layer checked before the engine sees it."""
    _move("pull", target_names, mode, os_release, store_url, as_json)


@images.command("prune")
def images_prune():
    """Remove xbuild's images (those in use by a container are kept)."""
    from xbuild.containers.images import prune
    removed = prune()
    click.echo("\n".join(f"removed {t}" for t in removed) or "nothing to remove")


COMMANDS = [targets, doctor, binfmt, images]

"""`xbuild shell --target T PROJECT`: a shell in the build container, to debug a port by hand."""

from __future__ import annotations

import sys

import click

from xbuild.commands import request_options


@click.command()
@request_options("target")
@click.argument("project", type=click.Path(), default=".", required=False)
@request_options("os", "mode", "packages", os={"help": "The board's OS release [default: xbuild.toml's os, else the "
                                           "board's default]."},
                 mode={"help": "Which build container: the cross builder, the emulated board, or the "
                               "emulated board with the cross compiler (hybrid)."})
@request_options("timeout", "memory", timeout={"default": 3600, "show_default": True,
                                               "help": "End the shell after this many seconds."},
                 memory={"help": "Memory limit of the container."})
def shell(project, request):
    """An interactive shell in PROJECT's build container, as a build sees it: the project copied
    to /xbuild/src, the toolchain shims first on PATH, CC, CMake toolchain file and Meson cross file
    ($XBUILD_CMAKE_TOOLCHAIN, $XBUILD_MESON_CROSS), the declared packages, no network. The build's
    steps are in /xbuild/build.sh; what the build fetches on the host (crates, Go modules, a
    wheel's build requirements) is in /xbuild too. Changes stay in the container: the project is
    never written."""
    import os
    import uuid

    from xbuild.containers import binfmt, images
    from xbuild.containers.sandbox import Container
    from xbuild.pipeline import build
    from xbuild.pipeline import spec as specs
    from xbuild.pipeline.progress import Progress
    from xbuild.project import sources

    spec = specs.resolve(project, request)
    if spec.recipe.kind == "image":
        raise click.UsageError("a Dockerfile project has no build container to enter: "
                               "`docker run` its image instead")
    if spec.toolchain.needs_binfmt:
        binfmt.require(spec.target.qemu_arch, f"an emulated {spec.target.name} shell")
    progress = Progress()
    # What the build's host steps make (crates, Go modules, a wheel's build requirements) first,
    # as a build does: a refused fetch costs no image.
    with build.host_made(spec, progress) as (made, scratch):
        progress.phase("image", f"{spec.target.name} ({spec.target.debian_arch}, {spec.mode})")
        image = images.ensure(build.builder_def(spec), progress.line)
        progress.done()
        exclude = sources.excluder(spec.project, spec.out, specs.OUT_DIRNAME)
        name = f"xbuild-shell-{spec.target.name}-{uuid.uuid4().hex[:10]}"
        # Interactive bash on a terminal; fed by a pipe, plain bash reads its commands quietly.
        command = ["bash", "-i"] if os.isatty(0) else ["bash"]
        with Container(image.id, command, name=name, env=build.environment(spec), limits=spec.limits,
                       workdir=spec.variation.src_dir, kill_inside=True, interactive=True) as box:
            build.prepare(box, spec, exclude, made, scratch)
            extra = "".join(f", /xbuild/{m}" for m in made)
            click.echo(f"xbuild shell: {spec.name} for {spec.target.name} on {spec.target.os_name} "
                       f"({spec.mode}) in {image.tag}\n  /xbuild/src is a copy of {spec.project}: changes "
                       f"stay here; `bash /xbuild/build.sh` runs the build's steps (with /xbuild/src{extra}); "
                       "exit to leave", err=True)
            code = box.attach_terminal()
    sys.exit(code)

"""Helpers the tests and the benchmarks (bench/) share: a plain module, not a pytest file, so that
a bench imports it as it is (tests/conftest.py holds the fixtures). A helper moved or renamed here
breaks a test at once, not only a bench that nobody ran."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def xbuild(*args, env: dict | None = None, cwd=None, timeout: int = 1800,
           input: str | None = None) -> subprocess.CompletedProcess:
    """The real CLI, as a user runs it (`input`: its stdin, e.g. `xbuild shell`'s commands)."""
    full_env = {k: v for k, v in os.environ.items() if k != "XBUILD_DEBUG"}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "xbuild", *map(str, args)], capture_output=True,
                          text=True, env=full_env, cwd=cwd, timeout=timeout, input=input)


def tgz(files: dict[str, str | bytes], evil: str | None = None) -> bytes:
    """A project upload (.tar.gz) made from a dict of files; `evil` adds one member of that name."""
    import io
    import tarfile
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in {**files, **({evil: "x"} if evil else {})}.items():
            data = data.encode() if isinstance(data, str) else data
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def make_project(root: Path, files: dict[str, str]) -> Path:
    """A project generated from a dict of files (a value starting with #! becomes executable)."""
    root.mkdir(parents=True, exist_ok=True)
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if text.startswith("#!"):
            path.chmod(0o755)
    return root


def containers_with_env(mark: str) -> list:
    """A test's own containers, found by a variable (NAME=VALUE) only its build passes in
    (`pass_env`): the engine is shared with other builds and tests, whose containers are not
    the test's to count or remove."""
    from docker.errors import NotFound

    from xbuild.containers.engine import client
    from xbuild.containers.sandbox import BUILD_LABEL
    found = []
    for summary in client().api.containers(all=True, filters={"label": BUILD_LABEL}):
        try:  # other builds share the engine: theirs may go while we look
            found.append(client().containers.get(summary["Id"]))
        except NotFound:
            continue
    return [c for c in found if mark in (c.attrs["Config"].get("Env") or [])]


def hello_files(n: int) -> dict[str, str]:
    """examples/hello-make as a dict of files, its hello.c told apart by n: a distinct source (so
    never a cache hit of another variant) for uploads (tgz) and generated projects (make_project)."""
    files = {p.name: p.read_text() for p in (EXAMPLES / "hello-make").iterdir() if p.is_file()}
    files["hello.c"] += f"\n/* variant {n} */\n"
    return files


def parse_cli(args: list[str]):
    """Resolve a command line through xbuild's own click tree, as `xbuild` would, without running
    it: unknown subcommands, options and choices raise click's UsageError here. Returns the
    click command that would run."""
    import click

    from xbuild.cli import cli
    ctx = cli.make_context("xbuild", list(args), resilient_parsing=False)
    command: click.Command = cli
    while isinstance(command, click.Group):
        rest = [*ctx.protected_args, *ctx.args]
        name, sub, rest = command.resolve_command(ctx, rest)
        assert name is not None and sub is not None
        command = sub
        ctx = command.make_context(name, rest, parent=ctx)
    return command


@contextmanager
def serve(root: Path, host: str = "127.0.0.1") -> Iterator[tuple[str, list[str]]]:
    """root over HTTP on a free port of `host`: its URL, and a list that gets the server's log
    (its requests) when it stops."""
    server = subprocess.Popen([sys.executable, "-u", "-m", "http.server", "--bind", host, "--directory",
                               str(root), "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        port = re.search(r"port (\d+)", server.stdout.readline())
        assert port, "http.server did not say its port"
        log: list[str] = []
        yield f"http://{host}:{port.group(1)}", log
    finally:
        server.terminate()
        log.append(server.communicate(timeout=10)[1])


def bridge_gateway() -> str:
    """The host's address on the engine's default bridge, where a test serves what a container
    fetches: the bridge's Gateway, or the first address of its subnet when the engine leaves the
    Gateway out (docker.io 26 here does)."""
    import ipaddress

    from xbuild.containers.engine import client
    config = client().networks.get("bridge").attrs["IPAM"]["Config"][0]
    return config.get("Gateway") or str(next(ipaddress.ip_network(config["Subnet"]).hosts()))


def run_script(image: str, script: str, environment: dict[str, str], **options) -> tuple[int, str]:
    """`sh -c script` in a fresh container of `image` (gone afterwards): its exit status and output."""
    from xbuild.containers.engine import client
    container = client().containers.run(image, ["sh", "-c", script], detach=True, init=True,
                                        environment=environment, **options)
    try:
        return container.wait(timeout=600)["StatusCode"], container.logs().decode(errors="replace")
    finally:
        container.remove(force=True)

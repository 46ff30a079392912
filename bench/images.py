#!/usr/bin/env python3
"""Image pull vs bootstrap for the rpi3 cross builder, side by side in one run:

    .venv/bin/python bench/images.py [--dry-run]

  bootstrap  the builder made from nothing, as on a fresh machine today: debootstrap of the base,
             then apt (Debian's cross toolchain and build tools)
  push       that image to S3 (a SeaweedFS of the bench's own): layers gzip'd, sizes printed
  pull       after removing it: the same image from S3, every layer checked, `docker load`
  first build  `xbuild --target rpi3 examples/hello-make` with the builder only in the store:
             seconds from the command's start to the compiler starting (issue 11's goal: <= 30 s)

The machine's own images stay: the bench salts the image definitions (images.BUILD_LOGIC_VERSION),
so every tag it makes is new and its own, and removes them at the end. One caveat, printed: the
debootstrap'd base is reproducible, so its layer may equal one the engine already holds; the pull
then streams and checks it, but the engine does not unpack it again."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.s3server import SeaweedFS  # noqa: E402

# The real CLI, with the bench's salt in the image definitions.
SALTED_CLI = ("import sys, xbuild.containers.images as i; i.BUILD_LOGIC_VERSION = sys.argv.pop(1); "
              "from xbuild.cli import main; main()")
BEFORE_COMPILING = ("hash", "cache", "image", "start", "copy-in")


def log(line: str) -> None:
    print(f"    {line}", flush=True)


def first_build(salt: str, env: dict, out: Path) -> dict:
    """The CLI's --json timings: what happened before the compiler started, and the wall time."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", SALTED_CLI, salt, "--target", "rpi3",
                           str(ROOT / "examples" / "hello-make"), "--out", str(out), "--json"],
                          capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"build failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    timings = json.loads(proc.stdout)["timings"]
    after = sum(v for k, v in timings.items() if k not in BEFORE_COMPILING and k != "build") \
        + timings.get("build", 0.0)
    return {"wall": wall, "to_compiler": wall - after, "timings": timings,
            "image": json.loads(proc.stdout)["image"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dry-run", action="store_true",
                    help="salt the definitions, start the S3 server and make the store, print what would "
                         "be bootstrapped, and stop: no image made (the smoke test's size: a bootstrap "
                         "takes minutes)")
    args = ap.parse_args()
    from xbuild.board import targets as tg
    from xbuild.containers import image_store, images
    from xbuild.containers.engine import client
    from xbuild.request import Mode
    from xbuild.store import open_store
    from xbuild.toolchain import pick

    salt = f"bench-images-{uuid.uuid4().hex[:8]}"
    images.BUILD_LOGIC_VERSION = salt  # type: ignore[attr-defined]
    target = tg.get("rpi3")
    builder = images.builder_def(pick(target, Mode.CROSS))
    tags = [builder.tag, *images.parents(builder)]
    with tempfile.TemporaryDirectory(prefix="xbuild-bench-images-") as tmp:
        s3 = SeaweedFS(Path(tmp) / "s3")
        s3.start()
        try:
            url = "s3://bench-images/ci"
            os.environ.update(s3.env(url))
            store = open_store(url, create=True)
            print(f"rpi3 cross builder {builder.tag} (salt {salt})", flush=True)
            if args.dry_run:
                print(f"dry run: would bootstrap, push and pull {len(tags)} image(s) to {url}: "
                      + ", ".join(tags))
                return

            t0 = time.perf_counter()
            images.ensure(builder, lambda line: None)
            bootstrap = time.perf_counter() - t0
            print(f"bootstrap  {bootstrap:7.1f} s", flush=True)

            pushed = [image_store.push(store, tag, images.parents(d), log)
                      for tag, d in _chain(builder)]
            size = pushed[-1]["size"]
            stored = sum(p["uploaded_bytes"] for p in pushed)
            push_s = sum(p["seconds"] for p in pushed)
            print(f"push       {push_s:7.1f} s  {size / 1e6:.0f} MB of layers -> {stored / 1e6:.0f} MB "
                  f"stored ({stored / size:.0%})", flush=True)

            shared = _shared_layers(tags)
            _remove(tags)
            pulled = image_store.pull(store, builder.tag, log)
            print(f"pull       {pulled['seconds']:7.1f} s  {pulled['downloaded_bytes'] / 1e6:.0f} MB "
                  f"downloaded", flush=True)
            if shared:
                print(f"           ({shared} layer(s) the engine already held, from the machine's "
                      f"own images: streamed and checked, not unpacked again)")

            _remove(tags)
            env = {**os.environ, "XBUILD_STORE": url}
            build = first_build(salt, env, Path(tmp) / "out")
            assert build["image"] == pulled["id"], "the first build did not pull its builder"
            print(f"first build: compiler started after {build['to_compiler']:.1f} s "
                  f"(whole build {build['wall']:.1f} s; image phase {build['timings'].get('image', 0):.1f} s)",
                  flush=True)
            print(f"\npull vs bootstrap: {pulled['seconds']:.1f} s vs {bootstrap:.1f} s = "
                  f"{pulled['seconds'] / bootstrap:.2f}x ({bootstrap / pulled['seconds']:.1f}x faster)")
        finally:
            _remove(tags)
            client().close()
            s3.stop()


def _chain(defn):
    """(tag, definition) from the base up."""
    out = []
    while defn is not None:
        out.append((defn.tag, defn))
        defn = defn.parent
    return list(reversed(out))


def _shared_layers(tags: list[str]) -> int:
    """Layers of the bench's images that other images on this machine also have."""
    from xbuild.containers.engine import client
    ours = set(client().images.get(tags[0]).attrs["RootFS"]["Layers"])
    others = set()
    for img in client().api.images():
        if not set(img.get("RepoTags") or []) & set(tags):
            others |= set(client().api.inspect_image(img["Id"])["RootFS"].get("Layers", []))
    return len(ours & others)


def _remove(tags: list[str]) -> None:
    from docker.errors import ImageNotFound

    from xbuild.containers.engine import client
    for tag in tags:
        with contextlib.suppress(ImageNotFound):
            client().images.remove(tag, force=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Cache hit vs cold build, side by side in one run, for the same sources.

    .venv/bin/python bench/cache_hit.py [--target rpi3] [--repeat 5] [--extra-mb 200] [--project DIR]

Cold: `xbuild --no-cache` (container, compile, archive, record in the store). Hit: the same
command without --no-cache (hash the tree, read the record, fetch and verify the archive). The
tree is then grown with --extra-mb of extra source files, to show that an unchanged tree of any
size answers just as fast (per-file digests are remembered by size, mtime and inode).

Hit + publish: the same hit with `--publish s3://...` to a real SeaweedFS (the test extra's
`weed`), the build already published there: boto3's start, the record and `latest` read back,
nothing written (issue 11's goal: under 0.5 s for the whole process)."""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import fresh_tree, label, origin, project_arg, timed  # noqa: E402


def xbuild(tree: Path, target: str, *extra: str) -> float:
    return timed([sys.executable, "-m", "xbuild", "--target", target, str(tree), *extra])


def _seaweedfs(tmp: str):
    """A real S3 server of the bench's own (tests/s3server.py), its client environment set."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.s3server import SeaweedFS
    server = SeaweedFS(Path(tmp, "s3"))
    server.start()
    os.environ.update({k: v for k, v in server.env("").items() if k != "XBUILD_STORE"})
    return server


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="rpi3")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--extra-mb", type=int, default=200)
    project_arg(ap)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["XBUILD_STORE"] = Path(tmp, "store").as_uri()  # a store of the bench's own
        orig = origin(args.project)
        tree = fresh_tree(orig, Path(tmp, "src"))
        xbuild(tree, args.target)  # warm: images, and a first record
        cold = [xbuild(tree, args.target, "--no-cache") for _ in range(args.repeat)]
        hit = [xbuild(tree, args.target) for _ in range(args.repeat)]
        server = _seaweedfs(tmp)
        try:
            publish = ("--publish", "s3://bench-publish/app", "--create-bucket")
            xbuild(tree, args.target, *publish)  # the first publish uploads
            published = [xbuild(tree, args.target, *publish) for _ in range(args.repeat)]
        finally:
            server.stop()
        extra = tree / "vendor-blobs"
        extra.mkdir()
        for n in range(args.extra_mb):  # 1 MiB files of incompressible data
            (extra / f"blob{n:04}.bin").write_bytes(os.urandom(1 << 20))
        first_big = xbuild(tree, args.target)  # new content: a miss, and the digests are learned
        big_hit = [xbuild(tree, args.target) for _ in range(args.repeat)]

    med = statistics.median
    print(f"{label(orig)} for {args.target}, medians of {args.repeat} (whole CLI process):")
    print(f"  cold build (--no-cache)         {med(cold):7.3f} s")
    print(f"  cache hit                       {med(hit):7.3f} s")
    print(f"  cold / hit                      {med(cold) / med(hit):7.1f}x")
    print(f"  cache hit + --publish s3://     {med(published):7.3f} s   (published before; goal: < 0.5 s)")
    print(f"  +{args.extra_mb} MiB tree, first build  {first_big:7.3f} s")
    print(f"  +{args.extra_mb} MiB tree, cache hit    {med(big_hit):7.3f} s   (goal: well under 1 s)")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""What the service adds over the CLI, and how many small builds per minute a farm does.

    .venv/bin/python bench/service.py [--builds 12] [--workers 1,2,3]

1. Overhead, side by side on the same project (examples/hello-make for rpi3): `xbuild build`
   vs `xbuild submit --wait` to a local `xbuild serve` on a real Redis with one worker; cold
   (--no-cache) and cached.
2. Throughput: --builds distinct small builds submitted at once, with 1, 2, 3 workers.
Real processes throughout (tests/services.py starts them)."""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import requests  # noqa: E402

from bench.common import timed  # noqa: E402
from tests.services import Redis, Server, xbuild_proc  # noqa: E402

TOKEN = "bench-token"


def _submit(server, project: Path, *extra) -> float:
    return timed([sys.executable, "-m", "xbuild", "submit", "--server", server.url, "--target", "rpi3",
                  str(project), *extra], env={**os.environ, "XBUILD_TOKEN": TOKEN})


def _cli(project: Path, *extra) -> float:
    return timed([sys.executable, "-m", "xbuild", "--target", "rpi3", str(project), *extra])


def throughput(env, tmp: Path, server, n_builds: int, n_workers: int) -> float:
    from tests.helpers import hello_files, tgz
    workers = [xbuild_proc(["worker", "--name", f"b{i}-{n_workers}@bench"], env, tmp / f"w{n_workers}-{i}.log")
               for i in range(n_workers)]
    time.sleep(4)  # workers up
    try:
        start = time.perf_counter()
        ids = []
        for n in range(n_builds):
            files = hello_files(n_workers * 1000 + n)
            r = requests.post(f"{server.url}/v1/builds", headers={"Authorization": f"Bearer {TOKEN}"},
                              files={"source": ("s.tar.gz", tgz(files))}, data={"target": "rpi3", "project": "tp"})
            ids.append(r.json()["id"])
        pending = set(ids)
        while pending:
            for i in list(pending):
                state = requests.get(f"{server.url}/v1/builds/{i}",
                                     headers={"Authorization": f"Bearer {TOKEN}"}).json()["state"]
                if state in ("succeeded", "failed", "timed_out", "cancelled"):
                    assert state == "succeeded", i
                    pending.discard(i)
            time.sleep(0.3)
        return n_builds / ((time.perf_counter() - start) / 60)
    finally:
        for w in workers:
            w.kill()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--builds", type=int, default=12)
    ap.add_argument("--workers", default="1,2,3")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        redis = Redis(tmp / "redis")
        env = {**os.environ, "XBUILD_STATE_DIR": str(tmp / "state"), "XBUILD_STORE": (tmp / "store").as_uri(),
               "XBUILD_API_TOKENS": TOKEN, "XBUILD_BROKER_URL": redis.url}
        os.environ.update({"XBUILD_STORE": env["XBUILD_STORE"]})
        server = Server(env, tmp)
        project = shutil.copytree(ROOT / "examples" / "hello-make", tmp / "hello-make")
        try:
            worker = xbuild_proc(["worker", "--name", "overhead@bench"], env, tmp / "w.log")
            time.sleep(4)
            _cli(project)  # warm images
            rows = {"cli cold": [], "submit cold": [], "cli cached": [], "submit cached": []}
            for _ in range(args.repeat):
                rows["cli cold"].append(_cli(project, "--no-cache"))
                rows["submit cold"].append(_submit(server, project, "--no-cache"))
                rows["cli cached"].append(_cli(project))
                rows["submit cached"].append(_submit(server, project))
            worker.kill()
            med = {k: statistics.median(v) for k, v in rows.items()}
            print(f"hello-make for rpi3, medians of {args.repeat}:")
            for k, v in med.items():
                print(f"  {k:14} {v:6.2f} s")
            print(f"  service overhead, cold:   +{med['submit cold'] - med['cli cold']:.2f} s "
                  f"({med['submit cold'] / med['cli cold']:.2f}x)")
            print(f"  service overhead, cached: +{med['submit cached'] - med['cli cached']:.2f} s "
                  f"({med['submit cached'] / med['cli cached']:.2f}x)")
            print(f"throughput, {args.builds} distinct small builds submitted at once:")
            base = None
            for n in map(int, args.workers.split(",")):
                bpm = throughput(env, tmp, server, args.builds, n)
                base = base or bpm
                print(f"  {n} worker(s): {bpm:6.1f} builds/min ({bpm / base:.2f}x of 1 worker)")
        finally:
            server.stop()
            redis.kill()


if __name__ == "__main__":
    main()

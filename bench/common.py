"""What the benchmarks share: one real project's source (Debian's lz4, fetched once with apt-get
source into bench/.cache), or a local project instead (--project: the smoke tests' small size,
tests/integration/test_bench.py), and a timer."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

CACHE = Path(__file__).resolve().parent / ".cache"
PACKAGE, VERSION = "lz4", "1.9.4"
APT = ["-o", f"Dir::Etc::SourceList={CACHE}/sources.list", "-o", "Dir::Etc::SourceParts=/dev/null",
       "-o", f"Dir::State::Lists={CACHE}/lists"]


def source(package: str = PACKAGE, version: str = VERSION, debian: str = "1") -> Path:
    """The upstream source from the Debian mirror (apt-get source, a deb-src list of our own)."""
    orig = CACHE / f"{package}_{version}.orig.tar.gz"
    if not orig.exists():
        (CACHE / "lists" / "partial").mkdir(parents=True, exist_ok=True)
        (CACHE / "sources.list").write_text("deb-src http://deb.debian.org/debian bookworm main\n")
        subprocess.run(["apt-get", *APT, "update", "-q"], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["apt-get", *APT, "source", "--download-only", f"{package}={version}-{debian}"],
                       check=True, cwd=CACHE, stdout=subprocess.DEVNULL)
    return orig


def project_arg(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--project", type=Path, help=f"a local project directory instead of {PACKAGE} "
                    "from the Debian mirror (the smoke tests pass a small example: seconds, not minutes)")


def origin(project: Path | None) -> Path:
    """What fresh_tree copies: the local project when one is given, else lz4's upstream tarball."""
    return project.resolve() if project else source()


def label(orig: Path) -> str:
    """The project's name in the printed figures."""
    return orig.name if orig.is_dir() else f"{PACKAGE} {VERSION}"


def fresh_tree(orig: Path, into: Path) -> Path:
    """A clean copy of the source to build: a local project copied, a tarball unpacked."""
    if orig.is_dir():
        return Path(shutil.copytree(orig, into / orig.name, symlinks=True))
    with tarfile.open(orig) as tar:
        tar.extractall(into, filter="tar")
    return next(into.iterdir())


def timed(cmd: list[str], **kw) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
    return time.perf_counter() - start


def interleaved(orig: Path, repeat: int, runs: dict) -> dict[str, float]:
    """Each run (name -> build(tree) -> seconds) on a fresh copy of the source, round after round,
    interleaved so that drift on the shared machine hits them all; prints each time and returns
    the medians."""
    import statistics
    import tempfile
    times: dict[str, list[float]] = {name: [] for name in runs}
    width = max(map(len, runs))
    for n in range(repeat):
        for name, build in runs.items():
            with tempfile.TemporaryDirectory() as tmp:
                t = build(fresh_tree(orig, Path(tmp)))
            times[name].append(t)
            print(f"round {n + 1}: {name:{width}} {t:7.2f} s", flush=True)
    return {name: statistics.median(ts) for name, ts in times.items()}

"""`xbuild verify`: build twice from clean, changing what a reproducible build must not depend on
(time, timezone, locale, build path, umask), and compare every file bit for bit."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

from xbuild.pipeline.build import run_build
from xbuild.pipeline.context import NO_CACHE
from xbuild.pipeline.observer import Observer
from xbuild.pipeline.spec import BuildSpec, Variation

DIFFOSCOPE_MAX = 50 << 20  # bytes of report diffoscope may write
SECOND = Variation(src_dir="/xbuild/verify/elsewhere/src", umask="077",
                   env=(("TZ", "Pacific/Kiritimati"), ("LC_ALL", "C"), ("LANG", "C")))


def _files(out: Path) -> dict[str, str]:
    manifest = json.loads((out / "manifest.json").read_text())
    files = {f"{f['path']}": f["sha256"] for f in manifest["files"]}
    files.update({f"(archive) {a['name']}": a["sha256"] for a in manifest["artifacts"]})
    return files


def verify(spec: BuildSpec, progress: Observer) -> dict:
    with tempfile.TemporaryDirectory(prefix="xbuild-verify-") as tmp:
        outs = []
        for n, variation in enumerate((Variation(), SECOND), 1):
            progress.phase("verify", f"build {n}/2 from clean ({variation.src_dir}, umask {variation.umask})")
            out = Path(tmp, f"build{n}")
            # The second build compiles everything afresh: a warm compiler cache in both would
            # compare cached objects with cached objects, proving nothing about the compiler.
            run_build(dataclasses.replace(spec, out=out, variation=variation), progress, cache=NO_CACHE,
                      compiler_cache=n == 1)
            outs.append(out)
        first, second = (_files(o) for o in outs)
        differ = sorted(k for k in first.keys() | second.keys() if first.get(k) != second.get(k))
        report = {"status": "reproducible" if not differ else "differs", "target": spec.target.name,
                  "files": len(first), "differences": differ}
        if differ and shutil.which("diffoscope"):
            archive = next(a for a in outs[0].glob("*.tar.gz"))
            report["diffoscope"] = _diffoscope(archive, outs[1] / archive.name)
        return report


def _diffoscope(a: Path, b: Path) -> str:
    """The end of diffoscope's text report. What it compares came out of build containers, so its
    time and its report are bounded: a report goes to a file, not into memory."""
    with tempfile.TemporaryFile() as out:
        try:
            subprocess.run(["diffoscope", "--text", "-", "--max-report-size", str(DIFFOSCOPE_MAX),
                            str(a), str(b)], stdout=out, stderr=subprocess.DEVNULL, timeout=600)
        except subprocess.TimeoutExpired:
            return "(diffoscope took over 10 minutes and was stopped)"
        out.seek(max(0, out.tell() - 20000))
        return out.read().decode(errors="replace")

"""Ship targets/, releases/, recipes/, toolchains/ and autoconf/ inside the wheel, as xbuild/data/, while the
top-level folders stay the one source of truth (everything else about the package is in pyproject.toml).

The copy is made into the build directory only, never into the source tree: a source checkout
and an editable install read the top-level folders directly (xbuild/datafiles.py)."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
DATA = ("targets", "releases", "recipes", "toolchains", "autoconf")


class BuildWithData(build_py):
    def _copies(self) -> list[tuple[Path, Path]]:
        """(source, destination in the build directory) of every data file; none when editable:
        an editable install reads ROOT itself."""
        if getattr(self, "editable_mode", False):
            return []
        return [(src, Path(self.build_lib, "xbuild", "data", kind, src.name))
                for kind in DATA for src in sorted((ROOT / kind).glob("*.toml"))]

    def run(self):
        super().run()
        if copies := self._copies():
            # A file removed from the source goes from the build directory too.
            shutil.rmtree(Path(self.build_lib, "xbuild", "data"), ignore_errors=True)
        for src, dest in copies:
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest)

    def get_outputs(self, include_bytecode=True):
        return super().get_outputs(include_bytecode) + [str(dest) for _, dest in self._copies()]


setup(cmdclass={"build_py": BuildWithData})

"""Ship targets/ and recipes/ inside the wheel, as xbuild/data/, while the top-level folders stay
the one source of truth (everything else about the package is in pyproject.toml).

The copy is made into the build directory only, never into the source tree: a source checkout
and an editable install read the top-level folders directly (xbuild/datafiles.py)."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
DATA = ("targets", "recipes")


class BuildWithData(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):  # editable: the package reads ROOT itself
            return
        for kind in DATA:
            dest = Path(self.build_lib, "xbuild", "data", kind)
            shutil.rmtree(dest, ignore_errors=True)  # a file removed from the source goes too
            dest.mkdir(parents=True)
            for src in sorted((ROOT / kind).glob("*.toml")):
                shutil.copy2(src, dest / src.name)

    def get_outputs(self, include_bytecode=True):
        outputs = super().get_outputs(include_bytecode)
        if not getattr(self, "editable_mode", False):
            outputs += [str(Path(self.build_lib, "xbuild", "data", kind, src.name))
                        for kind in DATA for src in sorted((ROOT / kind).glob("*.toml"))]
        return outputs


setup(cmdclass={"build_py": BuildWithData})

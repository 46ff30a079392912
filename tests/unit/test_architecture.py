"""ARCHITECTURE.md stays true: it names every sub-package of xbuild, and every module it names
exists (a move that forgets the map fails here)."""

from __future__ import annotations

import re

from tests.helpers import ROOT

MAP = (ROOT / "ARCHITECTURE.md").read_text()
PACKAGE = ROOT / "xbuild"


def test_every_sub_package_is_on_the_map():
    packages = sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py"))
    missing = [p for p in packages if not re.search(rf"^\s+{p}/[\s,]", MAP, re.M)]
    assert packages and not missing, f"ARCHITECTURE.md's package map lacks {missing}"


def test_every_module_it_names_exists():
    named = set(re.findall(r"`((?:[a-z_]+/)+[a-z_]+\.py)`", MAP))
    assert named, "ARCHITECTURE.md names no module"
    gone = sorted(n for n in named if not (PACKAGE / n).is_file() and not (ROOT / n).is_file())
    assert not gone, f"ARCHITECTURE.md names modules that do not exist: {gone}"


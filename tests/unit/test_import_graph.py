"""No import cycles in the xbuild package (issue 18, item 6).

Every import counts, wherever it sits: an import inside a function keeps `--help` fast, and it
still runs sooner or later, so it must not hide a cycle. The graph is read from the source with
`ast`, nothing is imported."""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import pytest

import xbuild

PACKAGE = Path(xbuild.__file__).resolve().parent


def modules(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package at `root`."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def graph(root: Path) -> dict[str, dict[str, int]]:
    """module -> {module it imports: the line of the first such import}. Importing a.b.c also
    runs the packages a.b (and a) first, so an import of a submodule is an edge to each package
    around it too, except those around the importer itself (already being imported): a package's
    __init__ may import its own submodules, unless they import names from that __init__."""
    known = modules(root)
    edges: dict[str, dict[str, int]] = {name: {} for name in known}
    for name, path in known.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            named: list[str] = []
            if isinstance(node, ast.Import):
                named = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                # `from a import b`: b is the submodule a.b when there is one, else a name in a.
                named = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
            for target in named:
                while target and target not in known:  # `import a.b` where b is a name: a
                    target = target.rpartition(".")[0]
                if not target:
                    continue  # not xbuild's
                around = set(_ancestors(name))
                for reached in [p for p in _ancestors(target) if p not in around] + [target]:
                    if reached in known and reached != name:
                        edges[name].setdefault(reached, node.lineno)
    return edges


def cycles(edges: dict[str, dict[str, int]]) -> list[list[str]]:
    """One cycle (a path back to its first module) for each strongly connected group (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return [_path_back(min(group), group, edges) for group in groups]


def _path_back(start: str, group: set[str], edges: dict[str, dict[str, int]]) -> list[str]:
    """The shortest path from `start` back to itself inside its group (breadth first)."""
    came: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(edges[v]):
                if w == start:
                    chain = [v]
                    while chain[-1] != start:
                        chain.append(came[chain[-1]])
                    return [*reversed(chain), start]
                if w in group and w not in came:
                    came[w] = v
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"{start} has no path back inside its group")


def describe(cycle: list[str], edges: dict[str, dict[str, int]], root: Path) -> str:
    known = modules(root)
    return " -> ".join([cycle[0]] + [
        f"{b} (line {edges[a][b]} of {known[a].relative_to(root.parent)})" for a, b in itertools.pairwise(cycle)])


def test_xbuild_has_no_import_cycle():
    edges = graph(PACKAGE)
    found = [describe(c, edges, PACKAGE) for c in cycles(edges)]
    assert not found, "import cycles (move what both sides need into a lower module):\n" + "\n".join(found)


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / "pkg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path / "pkg"


@pytest.mark.parametrize("files", [
    # an import inside a function still closes the cycle
    {"__init__.py": "", "a.py": "from pkg import b\n", "b.py": "def f():\n    from pkg.a import x\n"},
    # relative imports, through a third module
    {"__init__.py": "", "a.py": "from . import b\n", "b.py": "from .c import y\n", "c.py": "import pkg.a\n"},
    # importing a submodule runs its package's __init__ first, which imports the importer
    {"__init__.py": "", "a.py": "from pkg.sub.low import z\n", "sub/__init__.py": "from pkg.a import w\n",
     "sub/low.py": ""},
])
def test_a_cycle_is_found_and_named(tmp_path, files):
    root = _package(tmp_path, files)
    edges = graph(root)
    found = cycles(edges)
    assert len(found) == 1 and found[0][0] == found[0][-1] and "pkg.a" in found[0]
    assert "pkg.a -> " in describe(found[0], edges, root) or " -> pkg.a (line" in describe(found[0], edges, root)


def test_a_package_importing_its_own_submodules_is_no_cycle(tmp_path):
    """pkg/sub/__init__.py re-exporting pkg.sub.low, which imports nothing of sub: Python handles it."""
    root = _package(tmp_path, {"__init__.py": "", "sub/__init__.py": "from pkg.sub.low import z\n",
                               "sub/low.py": "from pkg import other\n", "other.py": ""})
    assert cycles(graph(root)) == []


def test_a_submodule_taking_names_from_its_package_that_imports_it_is_a_cycle(tmp_path):
    root = _package(tmp_path, {"__init__.py": "", "sub/__init__.py": "def f():\n    from pkg.sub.low import z\n",
                               "sub/low.py": "from pkg.sub import base\n"})
    assert cycles(graph(root)) == [["pkg.sub", "pkg.sub.low", "pkg.sub"]]


# The sub-packages from the top down (ARCHITECTURE.md draws the same): a module imports from its
# own layer or one below, never from one above. xbuild's top-level modules are the core at the
# bottom, except the command line's entry points.
LAYERS = [
    {"cli", "__main__", "commands", "service"},
    {"pipeline"},
    {"artifact"},
    {"toolchain"},
    {"containers"},
    {"project"},
    {"store"},
    {"board"},
    {"attest"},
    {"host"},
    {"xbuild", "request", "errors", "environment", "schema", "datafiles"},
]


def layer(module: str) -> int:
    part = module.split(".")[1] if "." in module else module
    found = [i for i, names in enumerate(LAYERS) if part in names]
    assert found, f"{module} is in no layer: add its package to LAYERS and to ARCHITECTURE.md"
    return found[0]


def test_no_arrow_points_back_up():
    edges = graph(PACKAGE)
    known = modules(PACKAGE)
    up = [f"{a} (line {line} of {known[a].relative_to(PACKAGE.parent)}) -> {b}"
          for a, targets in edges.items() for b, line in targets.items() if layer(b) < layer(a)]
    assert not up, "imports from a layer above (move what both need down):\n" + "\n".join(up)

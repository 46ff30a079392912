"""Exit codes: each its own number, all named in xbuild/errors.py, and the README's table lists
exactly those."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from pathlib import Path

import click

import xbuild
from xbuild import errors
from xbuild.errors import ExitCode, XBuildError

ROOT = Path(__file__).resolve().parents[2]
# The names that share a code on purpose; errors.py says why.
DELIBERATE_ALIASES = {"NOT_ALL_OK": "INTERNAL"}


def _all_error_classes() -> list[type[XBuildError]]:
    """Every XBuildError subclass, wherever it is defined (every module of xbuild imported)."""
    for info in pkgutil.walk_packages(xbuild.__path__, "xbuild."):
        if not info.name.endswith("__main__"):  # it runs the CLI
            importlib.import_module(info.name)
    found, todo = [], [XBuildError]
    while todo:
        for sub in todo.pop().__subclasses__():
            found.append(sub)
            todo.append(sub)
    return found


def _named_codes() -> dict[int, list[str]]:
    """Every exit code xbuild names, with its names: error classes that set their own, and
    ExitCode's members (aliases included)."""
    codes: dict[int, list[str]] = {}
    for cls in _all_error_classes():
        if "exit_code" in vars(cls):  # not inherited: a finer case of its parent's failure
            codes.setdefault(int(cls.exit_code), []).append(cls.__name__)
    for name, member in ExitCode.__members__.items():
        codes.setdefault(int(member), []).append(name)
    return codes


def test_every_code_has_one_name_but_the_deliberate_aliases():
    shared = {code: names for code, names in _named_codes().items() if len(names) > 1}
    assert shared == {ExitCode.INTERNAL: ["INTERNAL", "NOT_ALL_OK"]}
    aliases = {n: m.name for n, m in ExitCode.__members__.items() if n != m.name}
    assert aliases == DELIBERATE_ALIASES


def test_error_classes_set_codes_only_in_errors_py():
    for cls in _all_error_classes():
        if "exit_code" in vars(cls):
            assert cls.__module__ == "xbuild.errors", cls


def test_the_codes_that_come_from_elsewhere_agree():
    assert XBuildError.exit_code == ExitCode.INTERNAL
    assert click.UsageError("x").exit_code == ExitCode.USAGE  # click exits with its own
    assert errors.killed_by(15) == ExitCode.TERMINATED == 143


def _readme_table() -> dict[int, str]:
    """The exit-code table: the section headed "Exit codes", wherever the docs keep it, two
    (code, meaning) pairs a row; a cell may give several codes ("143 / 129")."""
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    sections = [(p, text.split("\n")) for p in docs if p.exists()
                for text in re.split(r"\n(?=#+ )", p.read_text()) if re.match(r"#+ Exit codes *\n", text)]
    assert len(sections) == 1, [str(p) for p, _ in sections]
    table: dict[int, str] = {}
    rows = [line for line in sections[0][1] if line.startswith("|")][2:]  # no header, no ---
    assert rows
    for row in rows:
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        for code_cell, meaning in zip(cells[::2], cells[1::2], strict=True):
            for code in filter(None, (c.strip() for c in code_cell.split("/"))):
                assert int(code) not in table, f"{code} twice in the table"
                assert meaning, f"{code} has no meaning"
                table[int(code)] = meaning
    return table


def test_the_readme_table_lists_exactly_the_named_codes():
    table = _readme_table()
    assert sorted(table) == sorted(_named_codes())


def _literal_exit_codes(tree: ast.AST) -> list[int]:
    """Line numbers where a number is given as a process exit code: sys.exit(3), SystemExit(3),
    ctx.exit(3), os._exit(3), or `exit_code = 3` (a tuple assignment's element included)."""
    def numbers(node: ast.AST | None) -> bool:
        return node is not None and any(
            isinstance(n, ast.Constant) and type(n.value) is int for n in ast.walk(node))

    def is_exit_code(target: ast.AST) -> bool:
        return (isinstance(target, ast.Attribute) and target.attr == "exit_code") or \
            (isinstance(target, ast.Name) and target.id == "exit_code")

    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = ast.unparse(node.func)
            exits = func in ("sys.exit", "SystemExit", "exit", "os._exit") or func.endswith("ctx.exit")
            if exits and any(numbers(a) for a in node.args):
                    lines.append(node.lineno)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple) and \
                        len(target.elts) == len(node.value.elts):
                    pairs = list(zip(target.elts, node.value.elts, strict=True))
                else:
                    pairs = [(target, node.value)]
                if any(is_exit_code(t) and numbers(v) for t, v in pairs):
                    lines.append(node.lineno)
    return sorted(lines)


def test_no_number_is_an_exit_code_outside_errors_py():
    found = {}
    for path in sorted((ROOT / "xbuild").rglob("*.py")):
        if path.name == "errors.py" and path.parent.name == "xbuild":
            continue
        if lines := _literal_exit_codes(ast.parse(path.read_text(), str(path))):
            found[str(path.relative_to(ROOT))] = lines
    assert found == {}, "name the code in xbuild/errors.py (ExitCode, or an error class)"


def test_the_scan_finds_literal_codes():
    """The scan above, on the forms it must catch and the ones it must leave alone."""
    caught = ast.parse("sys.exit(16)\nraise SystemExit(0)\nsys.exit(0 if ok else 1)\n"
                       "job.state, job.exit_code = 'failed', 17\nself.exit_code = 128 + n\n")
    assert _literal_exit_codes(caught) == [1, 2, 3, 4, 5]
    fine = ast.parse("sys.exit(code)\nsys.exit(ExitCode.OK)\njob.exit_code = exc.exit_code\n"
                     "job.state, job.exit_code = 'failed', WorkerLost.exit_code\nx = 3\n")
    assert _literal_exit_codes(fine) == []

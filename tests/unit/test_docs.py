"""The docs a newcomer reads hold true: every `xbuild ...` command in a shell code block of the
README and docs/ parses with the real command line (options, subcommands, choices), the README's
test command is the one CI runs, and every link between the docs reaches a file and a heading.

A command that must not be parsed (there should be very few) carries the marker `# unchecked:`
and the reason, visible to the reader, at the end of its line."""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from itertools import product
from pathlib import Path

import click
import pytest

from tests.helpers import ROOT, parse_cli

DOCS = [*sorted(ROOT.glob("*.md")), *sorted((ROOT / "docs").rglob("*.md")),
        ROOT / "examples" / "README.md", ROOT / "tests" / "security" / "README.md"]
SHELL = {"sh", "bash", "shell", "console"}
UNCHECKED = "# unchecked:"
# `status|install`: one of the words (no space around the bar, which a shell pipe has)
_ALTERNATIVES = re.compile(r"(?<![\w.,:|-])[\w.,:-]+(?:\|[\w.,:-]+)+(?![\w.,:|-])")
_ASSIGNMENT = re.compile(r"[A-Za-z_]\w*=")
_COMMAND_LINE = re.compile(r"^\s*(?:[A-Za-z_]\w*=\S*\s+)*(?:\S*/)?xbuild(?:\s|$)")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int        # of the opening fence
    info: str
    lines: list[str]


@dataclass(frozen=True)
class Command:
    where: str       # file:line
    text: str
    args: list[str]


def _blocks(path: Path) -> list[Block]:
    blocks, current = [], None
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fence = re.match(r"\s*(```+|~~~+)\s*(\S*)", line)
        if current is None and fence:
            current = Block(path, number, fence[2].lower(), [])
        elif current is not None and fence and not fence[2]:
            blocks.append(current)
            current = None
        elif current is not None:
            current.lines.append(line)
    assert current is None, f"{path}:{current.line}: a code block is never closed"
    return blocks


def _logical_lines(block: Block):
    """(line number, text) with backslash continuations joined."""
    pending, start = "", 0
    for offset, line in enumerate(block.lines, 1):
        if not pending:
            start = block.line + offset
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        yield start, pending + line
        pending = ""


def _variants(text: str) -> list[str]:
    """`xbuild binfmt status|install` shows two commands; a shell pipe has spaces around it."""
    code = text.split(" #", 1)[0]
    groups = _ALTERNATIVES.findall(code)
    if not groups:
        return [text]
    variants = []
    for choice in product(*(g.split("|") for g in groups)):
        variant = code
        for group, word in zip(groups, choice, strict=True):
            variant = variant.replace(group, word, 1)
        variants.append(variant)
    return variants


def _simple_commands(text: str) -> list[list[str]]:
    """The words of each simple command on a shell line, split at `&&`, `||`, `;`, pipes and
    redirections (what follows a redirection is its file, never an xbuild argument)."""
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands: list[list[str]] = [[]]
    for token in lexer:
        if set(token) <= set("();<>|&"):
            commands.append([])
        else:
            commands[-1].append(token)
    return [c for c in commands if c]


def _xbuild_args(words: list[str]) -> list[str] | None:
    """The arguments after `xbuild` (or `.venv/bin/xbuild`), past `VAR=value` prefixes; `[...]`
    marks an optional part, parsed as given."""
    while words and _ASSIGNMENT.match(words[0]):
        words = words[1:]
    if not words or words[0].rsplit("/", 1)[-1] != "xbuild":
        return None
    return [w.removeprefix("[").removesuffix("]") for w in words[1:]]


def commands_in(path: Path) -> list[Command]:
    found = []
    for block in _blocks(path):
        if block.info not in SHELL:
            continue
        for number, text in _logical_lines(block):
            if UNCHECKED in text or text.lstrip().startswith("#"):
                continue
            for variant in _variants(text):
                for words in _simple_commands(variant):
                    args = _xbuild_args(words)
                    if args is not None:
                        found.append(Command(f"{path.relative_to(ROOT)}:{number}", variant.strip(), args))
    return found


ALL = [c for path in DOCS if path.exists() for c in commands_in(path)]


def test_the_docs_show_many_commands_and_the_extraction_finds_them():
    """The extraction itself: if it broke, the parse test below would pass on nothing."""
    assert len(ALL) >= 40
    readme = [c.args for c in commands_in(ROOT / "README.md")]
    assert ["--target", "rpi3", "examples/hello-make/"] in readme           # after scripts/setup.sh &&
    assert ["binfmt", "status"] in [c.args for c in ALL] and ["binfmt", "install"] in [c.args for c in ALL]
    assert any(c.args[:1] == ["submit"] for c in ALL)                          # behind XBUILD_TOKEN=...


def _parse_error(args: list[str]) -> str | None:
    try:
        parse_cli(args)
    except click.exceptions.Exit as exit_:     # --help, --version: parsed, then they exit 0
        return None if exit_.exit_code == 0 else f"exits {exit_.exit_code}"
    except click.ClickException as exc:
        return exc.format_message()
    return None


def test_every_xbuild_command_in_the_docs_parses_with_the_real_cli(monkeypatch):
    for name in [n for n in os.environ if n.startswith("XBUILD_")]:
        monkeypatch.delenv(name)  # the docs' commands, not this shell's settings
    failed = [f"{c.where}: {c.text}\n    {error}" for c in ALL if (error := _parse_error(c.args))]
    assert not failed, "commands in the docs that xbuild would refuse:\n" + "\n".join(failed)


def _value(args: list[str], *names: str) -> str | None:
    return next((args[i + 1] for i, a in enumerate(args[:-1]) if a in names), None)


def test_every_board_and_release_the_docs_name_exists():
    """The parser takes any word for --target and --os; the board data says which exist."""
    from xbuild.board import targets
    from xbuild.errors import XBuildError
    wrong = []
    for c in ALL:
        board, release = _value(c.args, "--target", "-t"), _value(c.args, "--os")
        try:
            if board:
                targets.get(board).with_os(release)
        except XBuildError as exc:
            wrong.append(f"{c.where}: {c.text}\n    {exc}")
    assert not wrong, wrong
    assert sum(bool(_value(c.args, "--target")) for c in ALL) >= 30


@pytest.mark.parametrize("args", [["--target", "rpi3", "--no-such-option", "p/"], ["imagez", "ls"],
                                  ["--target", "rpi3", "--mode", "fast", "p/"], ["run", "--target", "rpi3"]])
def test_a_wrong_command_is_caught(args):
    assert _parse_error(args)


def test_a_command_is_reported_with_its_file_and_line(tmp_path, monkeypatch):
    doc = tmp_path / "guide.md"
    doc.write_text("text\n\n```sh\nxbuild targets   # fine\n"
                   "XBUILD_TOKEN=t xbuild submit --server http://x --target rpi3 --wiat p/\n```\n")
    monkeypatch.setattr("tests.unit.test_docs.ROOT", tmp_path)
    found = commands_in(doc)
    assert [(c.where, bool(_parse_error(c.args))) for c in found] == [("guide.md:4", False), ("guide.md:5", True)]


def test_commands_are_in_shell_blocks():
    """A command in a block not marked sh would escape the parse test."""
    stray = [f"{b.path.relative_to(ROOT)}:{b.line}" for path in DOCS if path.exists()
             for b in _blocks(path) if b.info not in SHELL
             if any(_COMMAND_LINE.match(line) for line in b.lines)]
    assert not stray, f"label these code blocks ```sh: {stray}"


def test_the_readme_first_commands_are_what_setup_and_ci_run():
    first = _blocks(ROOT / "README.md")[0]
    lines = [text for _, text in _logical_lines(first) if text.strip() and not text.lstrip().startswith("#")]
    assert len(lines) == 2, lines
    setup, test = lines
    assert setup.startswith("scripts/setup.sh && ")
    assert test == "scripts/test.sh"
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(rf"^{re.escape(test)}(\s|$)", ci, re.M), ".ci/run must run the README's test command"
    for script in ("scripts/setup.sh", "scripts/test.sh"):
        assert (ROOT / script).stat().st_mode & 0o111, script
    # The example it builds, and the artifact it then runs: <name>-<target>.tar.gz in xbuild-out/<target>/
    build, run = [c.args for c in commands_in(ROOT / "README.md")[:2]]
    project = ROOT / build[-1]
    assert (project / "Makefile").is_file() and "$(PREFIX)/bin/hello" in (project / "Makefile").read_text()
    assert run[:3] == ["run", "--target", "rpi3"]
    assert run[3] == f"{build[-1]}xbuild-out/rpi3/{project.name}-rpi3.tar.gz" and run[4:6] == ["--", "bin/hello"]


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = path.read_text()
    for block in _blocks(path):
        text = text.replace("\n".join(block.lines), "")
    return {_slug(m[1]) for m in re.finditer(r"^#+ (.+)$", text, re.M)}


def test_links_between_the_docs_reach_a_file_and_a_heading():
    broken = []
    for path in DOCS:
        if not path.exists():
            continue
        for target in re.findall(r"\]\(([^)\s]+)\)", path.read_text()):
            if re.match(r"[a-z]+:", target):
                continue  # http(s): not checked here
            file, _, anchor = target.partition("#")
            dest = (path.parent / file).resolve() if file else path
            if not dest.exists() or (anchor and dest.suffix == ".md" and anchor not in _anchors(dest)):
                broken.append(f"{path.relative_to(ROOT)}: {target}")
    assert not broken, broken

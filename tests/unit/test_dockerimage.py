"""dockerimage's reading of a Dockerfile, without the engine."""

from xbuild.board import targets
from xbuild.containers import dockerimage


def test_a_blank_instruction_is_passed_on_not_a_crash():
    """A last line holding only the escape character leaves a blank instruction: it once ended
    in an AttributeError on a None match; the engine is the one to judge it."""
    text, bases = dockerimage.resolve_bases("  \\\n", targets.get("rpi3"), lambda message: None)
    assert text == "  \n"
    assert bases == []

"""What the API takes and what it gives back, declared once: api.py reads a submit's fields
through `SUBMIT` (the build request's, request.API_FIELDS, made from request.py's declarations;
the source's, declared here) and answers with a job record less `HIDDEN` plus links named by `LINKS`;
openapi.py makes the document from the same declarations and `jobs.Job`, so a field added here or
to the job record is described without a second edit."""

from __future__ import annotations

from dataclasses import dataclass

from xbuild.request import ABOUT, API_FIELDS, DEFAULTS, FIELDS, Mode, field_type

UPLOAD, GIT = "upload", "git"  # the two bodies of a submit: multipart with a .tar.gz, or JSON


@dataclass(frozen=True)
class Field:
    """One field of a submit: how api.py reads it and how the document describes it."""
    kind: str                           # "text", "flag" (true/false, or "1"/"true"/"yes"), "file",
                                        # "words" (names: a list in JSON, or one string of them)
    description: str = ""
    default: str | None = ""            # a text field's value when absent
    bodies: tuple[str, ...] = (UPLOAD, GIT)
    required: bool = False
    choices: tuple[str, ...] = ()


def _asked(name: str) -> Field:
    """A field of the build request, as the API reads it: a flag when it is a bool, else text;
    absent, the request's default (a flag's: false)."""
    kind, _ = field_type(FIELDS[name])
    if kind is bool:
        return Field("flag", ABOUT[name].api)
    choices = tuple(m.value for m in Mode) if kind is Mode else ()
    default = DEFAULTS.get(name, "")
    if kind is tuple:  # names: a list (JSON), or words (a form field)
        return Field("words", ABOUT[name].api)
    return Field("text", ABOUT[name].api, default if default is None else str(default),
                 required=name not in DEFAULTS, choices=choices)


SUBMIT: dict[str, Field] = {
    "source": Field("file", "the project as a .tar.gz", bodies=(UPLOAD,), required=True),
    "git_url": Field("text", "https://, git:// or ssh:// (or user@host:path); not a local path",
                     bodies=(GIT,), required=True),
    "ref": Field("text", "a branch, tag or commit [default: the remote's HEAD]", None, bodies=(GIT,)),
    **{name: _asked(name) for name in API_FIELDS},
    "project": Field("text", "the project's name, for its directory and its artifacts' names",
                     bodies=(UPLOAD,)),
}

# What a build's answer leaves out of its job record: the tenant is the caller itself, and the
# files (with their store objects) are what GET .../artifacts lists.
HIDDEN = ("tenant", "files")
# Its links, besides "self": /v1/builds/<id>/<name> each.
LINKS = ("log", "artifacts", "cancel")

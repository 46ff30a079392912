"""What the API takes and what it gives back, declared once: api.py reads a submit's fields
through `SUBMIT` and answers with a job record less `HIDDEN` plus links named by `LINKS`;
openapi.py makes the document from the same declarations and `jobs.Job`, so a field added here or
to the job record is described without a second edit."""

from __future__ import annotations

from dataclasses import dataclass

from xbuild import MODES

UPLOAD, GIT = "upload", "git"  # the two bodies of a submit: multipart with a .tar.gz, or JSON


@dataclass(frozen=True)
class Field:
    """One field of a submit: how api.py reads it and how the document describes it."""
    kind: str                           # "text", "flag" (true/false, or "1"/"true"/"yes"), "file"
    description: str = ""
    default: str | None = ""            # a text field's value when absent
    bodies: tuple[str, ...] = (UPLOAD, GIT)
    required: bool = False
    choices: tuple[str, ...] = ()


SUBMIT: dict[str, Field] = {
    "source": Field("file", "the project as a .tar.gz", bodies=(UPLOAD,), required=True),
    "git_url": Field("text", "https://, git:// or ssh:// (or user@host:path); not a local path",
                     bodies=(GIT,), required=True),
    "ref": Field("text", "a branch, tag or commit [default: the remote's HEAD]", None, bodies=(GIT,)),
    "target": Field("text", "the board (`xbuild targets` lists them); an unknown one is a 422",
                    required=True),
    "os": Field("text", "the board's OS release, e.g. bullseye; one the board does not run is a 422 "
                        "that lists its releases [default: the project's xbuild.toml os, else the "
                        "board's default]", None),
    "mode": Field("text", "how the build runs", "cross", choices=MODES),
    "static": Field("flag", "fully static executables (zig + musl; ARM boards); a board that has "
                            "none is a 422 [default: the project's xbuild.toml static]"),
    "deb": Field("flag", "also a .deb [default: the project's xbuild.toml deb]"),
    "no_cache": Field("flag", "build even when an identical build is cached"),
    "project": Field("text", "the project's name, for its directory and its artifacts' names",
                     bodies=(UPLOAD,)),
}

# What a build's answer leaves out of its job record: the tenant is the caller itself, and the
# files (with their store objects) are what GET .../artifacts lists.
HIDDEN = ("tenant", "files")
# Its links, besides "self": /v1/builds/<id>/<name> each.
LINKS = ("log", "artifacts", "cancel")

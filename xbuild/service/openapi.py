"""The API's OpenAPI description (served at /openapi.json), made from what the API itself uses:
a submit's fields (fields.SUBMIT), the job record (jobs.Job) less what an answer leaves out
(fields.HIDDEN), and the links it adds. Only the words are written here: which fields there are,
their types, defaults and choices come from the code, so a new one cannot be left out."""

from __future__ import annotations

import dataclasses
import types
import typing

from xbuild.errors import RefusedByService, UnknownRelease, UnknownTarget
from xbuild.request import API_FIELDS, Mode
from xbuild.request import FIELDS as REQUEST_FIELDS
from xbuild.service.fields import GIT, HIDDEN, LINKS, SUBMIT, UPLOAD, Field
from xbuild.service.jobs import STATES, Job

_TYPES: dict[object, str] = {str: "string", int: "integer", bool: "boolean", float: "number",
                             dict: "object", list: "array"}
# The job record's fields that need more words than their name and type.
_RECORD_WORDS = {
    "os": "the OS release asked for; once the build started, the one it is built for",
    "commit": "the commit a git build checked out",
    "exit_code": "the build's exit code, as the CLI's (docs/exit-codes.md)",
    "hint": "what to do about the error",
    "timings": "seconds per phase of the build, as a local build's --json",
    "compiler_cache": "the compiler cache's hits and misses, as a local build's --json",
    "queue": "the worker queue the build was sent to (one per architecture)",
    "nightly": "the night this build belongs to, if `nightly` made it",
}
# What an answer adds to the job record (api.py's view()).
_ADDED: dict[str, dict] = {
    "waiting": {"type": ["string", "null"], "description": "set while the build has been queued for "
                "a while (XBUILD_UNSERVED_AFTER, 60 s) and no worker serves its queue: which queue, "
                "and how to start a worker for it; the build keeps waiting"},
    "links": {"type": "object", "required": ["self", *LINKS],
              "properties": {name: {"type": "string"} for name in ("self", *LINKS)}},
}


def _schema(hint: object) -> dict:
    """A JSON schema for a dataclass field's type: str, int, bool, dict, list, Mode, or one of
    them | None."""
    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType) and len(args) == 2 and type(None) in args:
        (inner,) = (a for a in args if a is not type(None))
        return {"type": [_TYPES[inner], "null"]}
    if hint is Mode:
        return {"type": "string", "enum": [m.value for m in Mode]}
    if typing.get_origin(hint) is tuple:  # names, many: a job record lists them
        return {"type": "array", "items": {"type": "string"}}
    return {"type": _TYPES[typing.get_origin(hint) or hint]}


def _record_fields() -> dict[str, object]:
    """A job record's fields and their types: the job's own, its request's (Job.to_json)."""
    hints = typing.get_type_hints(Job)
    return {name: hint for f in dataclasses.fields(Job) for name, hint in (
        [(n, REQUEST_FIELDS[n]) for n in API_FIELDS] if f.name == "request" else [(f.name, hints[f.name])])}


def build_schema() -> dict:
    """A build as the API answers it: its job record's fields, less the hidden, plus the added."""
    properties = {}
    for name, hint in _record_fields().items():
        if name not in HIDDEN:
            properties[name] = _schema(hint) | (
                {"description": _RECORD_WORDS[name]} if name in _RECORD_WORDS else {})
    properties["state"]["enum"] = list(STATES)
    properties |= _ADDED
    return {"type": "object", "required": sorted(properties), "properties": properties}


def _submit_schema(body: str) -> dict:
    def described(field: Field) -> dict:
        schema: dict[str, typing.Any] = {
            "file": {"type": "string", "format": "binary"},
            "flag": {"type": "boolean"} if body == GIT else {"type": "string", "description": "1, true or yes: on"},
            "text": {"type": "string"},
            "words": {"type": "array", "items": {"type": "string"}} if body == GIT else
                     {"type": "string", "description": "separated by spaces"}}[field.kind]
        words = "; ".join(filter(None, [field.description, schema.get("description")]))
        extra = ({"default": field.default} if field.kind == "text" and field.default else {}) | (
            {"enum": list(field.choices)} if field.choices else {})
        return schema | extra | ({"description": words} if words else {})

    fields = {name: f for name, f in SUBMIT.items() if body in f.bodies}
    return {"type": "object", "required": [n for n, f in fields.items() if f.required],
            "properties": {name: described(f) for name, f in fields.items()}}


# Every error, whatever its status (404 and 405 of unknown routes, 413, 500 included), has this shape.
_ERROR = {"type": "object", "required": ["error", "hint"], "properties": {
    "error": {"type": "string", "description": "what went wrong"},
    "hint": {"type": ["string", "null"], "description": "what to do"},
    "exit_code": {"type": "integer", "description": (
        f"422 only: the CLI's exit code for it ({UnknownTarget.exit_code}: unknown target, "
        f"{UnknownRelease.exit_code}: unknown OS release, {RefusedByService.exit_code}: refused by "
        "the service's policy)")}}}


def _err(description: str) -> dict:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _json(description: str, schema: dict) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_BUILD = {"$ref": "#/components/schemas/Build"}
_ID = [{"name": "job_id", "in": "path", "required": True,
        "schema": {"type": "string", "pattern": r"^\d{8}-\d{6}-[0-9a-f]{8}$"}}]
_NOT_FOUND = _err("no such build (another tenant's, or not an id), or the error named")
_AUTH = {"401": _err("missing or unknown token (Authorization: Bearer <token>, the scheme in any case)"),
         "500": _err("the server failed; its log has the details"),
         "503": _err("its store or broker is down or restarting for a moment: retry after the "
                     "Retry-After header's seconds (a submit with the same Idempotency-Key)")}
# A client's own name for one submit, the same on every retry of it: a repeat is answered with the
# job the first try made (200), never a second job.
_IDEMPOTENCY = [{"name": "Idempotency-Key", "in": "header", "required": False,
                 "schema": {"type": "string", "pattern": r"^[\x21-\x7e]{8,200}$"}}]
_OPEN: dict = {"security": []}  # no token: what a load balancer, a browser or a client generator reads

_SUBMIT = {
    "summary": "Submit a build: a source upload (multipart) or a git URL (JSON)",
    "parameters": _IDEMPOTENCY,
    "requestBody": {"content": {"multipart/form-data": {"schema": _submit_schema(UPLOAD)},
                                "application/json": {"schema": _submit_schema(GIT)}}},
    "responses": {
        "201": _json("queued", _BUILD),
        "200": _json("the job an earlier submit with this Idempotency-Key made", _BUILD),
        "400": _err("not a JSON object, or no source"),
        "413": _err("the upload is over a limit: its size, unpacked or not, or its number of entries"),
        "422": _err(f"a wrong value or type; an unknown target (exit_code {UnknownTarget.exit_code}) or "
                    f"an OS release the board does not run (exit_code {UnknownRelease.exit_code}); a "
                    "private git host; refused by the service's policy (pass_env, Dockerfile: "
                    "XBUILD_SERVICE_PASS_ENV, XBUILD_SERVICE_DOCKERFILE)"),
        **_AUTH}}

SPEC = {
    "openapi": "3.1.0",  # 3.1: JSON Schema's type lists (["string", "null"])
    "info": {"title": "xbuild", "version": "1", "description": "Cross-compilation builds for boards."},
    "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
                   "schemas": {"Build": build_schema(), "Error": _ERROR}},
    "security": [{"bearer": []}],
    "paths": {
        "/v1/builds": {
            "post": _SUBMIT,
            "get": {"summary": "The tenant's recent builds (the last 100)", "responses": {
                "200": _json("builds, newest first", {"type": "object", "required": ["builds"], "properties": {
                    "builds": {"type": "array", "items": _BUILD}}}), **_AUTH}}},
        "/v1/builds/{job_id}": {"get": {"summary": "A build's state", "parameters": _ID, "responses": {
            "200": _json("the build", _BUILD), "404": _NOT_FOUND, **_AUTH}}},
        "/v1/builds/{job_id}/log": {"get": {"summary": "The log from a byte offset", "parameters": _ID + [
            {"name": "offset", "in": "query", "schema": {"type": "integer"}}],
            "responses": {"200": {"description": "text; X-Next-Offset and X-Build-State headers"},
                          "404": _NOT_FOUND, **_AUTH}}},
        "/v1/builds/{job_id}/artifacts": {"get": {"summary": "Files with download links", "parameters": _ID,
                                                  "responses": {"200": {"description": "files"},
                                                                "404": _NOT_FOUND, **_AUTH}}},
        "/v1/builds/{job_id}/artifacts/{name}": {"get": {"summary": "Download one file", "parameters": _ID + [
            {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": {"description": "the file"}, "404": _NOT_FOUND,
                          "410": _err("the artifact is missing from the store"), **_AUTH}}},
        "/v1/builds/{job_id}/cancel": {"post": {"summary": "Cancel a build", "parameters": _ID, "responses": {
            "202": {"description": "cancel requested"}, "409": _err("the build already ended"),
            "404": _NOT_FOUND, **_AUTH}}},
        "/openapi.json": {"get": {"summary": "This description", **_OPEN,
                                  "responses": {"200": {"description": "OpenAPI 3.1"}}}},
        "/healthz": {"get": {"summary": "Whether the server answers", **_OPEN,
                             "responses": {"200": _json("it does", {"type": "object", "properties": {
                                 "ok": {"type": "boolean"}}})}}},
        "/": {"get": {"summary": "A page of recent builds, their logs and artifacts (it asks for a token)",
                      **_OPEN, "responses": {"200": {"description": "HTML"}}}},
    },
}

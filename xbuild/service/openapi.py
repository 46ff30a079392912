"""The API's OpenAPI description (served at /openapi.json)."""

_OS = {"type": "string", "description": "the board's OS release, e.g. bullseye; one the board does "
                                       "not run is a 422 that lists its releases [default: the "
                                       "project's xbuild.toml os, else the board's default]"}
_OS_BUILT = {"type": ["string", "null"], "description": "the OS release asked for; once the build "
                                                        "started, the one it is built for"}
_STATIC = {"description": "1 / true: fully static executables (zig + musl; ARM boards); a board "
                          "that has none is a 422 [default: the project's xbuild.toml static]"}
_DEB = {"description": "1 / true: also a .deb [default: the project's xbuild.toml deb]"}
_BUILD = {"type": "object", "properties": {
    "id": {"type": "string"}, "target": {"type": "string"}, "os": _OS_BUILT, "mode": {"type": "string"},
    "state": {"type": "string", "enum": ["queued", "running", "succeeded", "failed", "timed_out", "cancelled"]},
    "exit_code": {"type": ["integer", "null"]}, "error": {"type": ["string", "null"]},
    "attempts": {"type": "integer"}, "build_id": {"type": ["string", "null"]},
    "cache": {"type": ["string", "null"]}, "cache_key": {"type": ["string", "null"]},
    "project": {"type": "string"},
    "git_url": {"type": ["string", "null"]}, "git_ref": {"type": ["string", "null"]},
    "commit": {"type": ["string", "null"], "description": "the commit a git build checked out"},
    "created": {"type": "string"}, "started": {"type": ["string", "null"]},
    "finished": {"type": ["string", "null"]},
    "waiting": {"type": ["string", "null"], "description": "set while the build has been queued for a "
                "while (XBUILD_UNSERVED_AFTER, 60 s) and no worker serves its queue: which queue, and "
                "how to start a worker for it; the build keeps waiting"},
    "links": {"type": "object"}}}
_ID = [{"name": "id", "in": "path", "required": True,
        "schema": {"type": "string", "pattern": r"^\d{8}-\d{6}-[0-9a-f]{8}$"}}]
# Every error, whatever its status (404 and 405 of unknown routes, 413, 500 included), has this shape.
_ERROR = {"type": "object", "required": ["error", "hint"], "properties": {
    "error": {"type": "string", "description": "what went wrong"},
    "hint": {"type": ["string", "null"], "description": "what to do"},
    "exit_code": {"type": "integer", "description": "422 only: the CLI's exit code for it "
                                                   "(3: unknown target, 36: unknown OS release, "
                                                   "23: refused by the service's policy)"}}}


def _err(description: str) -> dict:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


_ERR = _err("no such build (another tenant's, or not an id), or the error named")
_AUTH = {"401": _err("missing or unknown token (Authorization: Bearer <token>, the scheme in any case)"),
         "500": _err("the server failed; its log has the details"),
         "503": _err("its store or broker is down or restarting for a moment: retry after the "
                     "Retry-After header's seconds (a submit with the same Idempotency-Key)")}
# A client's own name for one submit, the same on every retry of it: a repeat is answered with the
# job the first try made (200), never a second job.
_IDEMPOTENCY = [{"name": "Idempotency-Key", "in": "header", "required": False,
                 "schema": {"type": "string", "pattern": r"^[\x21-\x7e]{8,200}$"}}]

SPEC = {
    "openapi": "3.0.3",
    "info": {"title": "xbuild", "version": "1", "description": "Cross-compilation builds for boards."},
    "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
                   "schemas": {"Build": _BUILD, "Error": _ERROR}},
    "security": [{"bearer": []}],
    "paths": {
        "/v1/builds": {
            "post": {"summary": "Submit a build: a source upload (multipart) or a git URL (JSON)",
                     "parameters": _IDEMPOTENCY,
                     "requestBody": {"content": {
                         "multipart/form-data": {"schema": {"type": "object", "required": ["source", "target"], "properties": {
                             "source": {"type": "string", "format": "binary"}, "target": {"type": "string"}, "os": _OS,
                             "mode": {"type": "string"}, "static": _STATIC, "deb": _DEB,
                             "no_cache": {"type": "string"}, "project": {"type": "string"}}}},
                         "application/json": {"schema": {"type": "object", "required": ["git_url", "target"], "properties": {
                             "git_url": {"type": "string", "description": "https://, git:// or ssh:// (or user@host:path); not a local path"},
                             "ref": {"type": "string", "description": "a branch, tag or commit [default: the remote's HEAD]"},
                             "target": {"type": "string"}, "os": _OS, "static": _STATIC, "deb": _DEB,
                             "mode": {"type": "string"}, "no_cache": {"type": "boolean"}}}}}},
                     "responses": {"201": {"description": "queued", "content": {"application/json": {
                         "schema": {"$ref": "#/components/schemas/Build"}}}},
                         "200": {"description": "the job an earlier submit with this Idempotency-Key made",
                                 "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Build"}}}},
                         "400": _err("not a JSON object, or no source"),
                         "413": _err("the upload is over a limit: its size, unpacked or not, or its number of entries"),
                         "422": _err("a wrong value or type; an unknown target (exit_code 3) or an OS release "
                                     "the board does not run (exit_code 36); a private git host; refused by the service's policy "
                                     "(pass_env, Dockerfile: XBUILD_SERVICE_PASS_ENV, XBUILD_SERVICE_DOCKERFILE)"),
                         **_AUTH}},
            "get": {"summary": "The tenant's recent builds", "responses": {"200": {"description": "builds"}, **_AUTH}}},
        "/v1/builds/{id}": {"get": {"summary": "A build's state", "parameters": _ID, "responses": {
            "200": {"description": "the build", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Build"}}}},
            "404": _ERR, **_AUTH}}},
        "/v1/builds/{id}/log": {"get": {"summary": "The log from a byte offset", "parameters": _ID + [
            {"name": "offset", "in": "query", "schema": {"type": "integer"}}],
            "responses": {"200": {"description": "text; X-Next-Offset and X-Build-State headers"}, "404": _ERR, **_AUTH}}},
        "/v1/builds/{id}/artifacts": {"get": {"summary": "Files with download links", "parameters": _ID,
                                              "responses": {"200": {"description": "files"}, "404": _ERR, **_AUTH}}},
        "/v1/builds/{id}/artifacts/{name}": {"get": {"summary": "Download one file", "parameters": _ID + [
            {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": {"description": "the file"}, "404": _ERR, **_AUTH}}},
        "/v1/builds/{id}/cancel": {"post": {"summary": "Cancel a build", "parameters": _ID, "responses": {
            "202": {"description": "cancel requested"}, "409": _ERR, "404": _ERR, **_AUTH}}},
    },
}

"""The HTTP API for CI pipelines. JSON in and out; every request carries a bearer token from
XBUILD_API_TOKENS; a tenant sees only its own builds (another tenant's build is a 404).

    POST /v1/builds                      multipart with source (a .tar.gz), or JSON with git_url; the
                                         fields are fields.SUBMIT's
    GET  /v1/builds                      the tenant's recent builds
    GET  /v1/builds/<id>                 state
    GET  /v1/builds/<id>/log?offset=N    log bytes from N; X-Next-Offset, X-Build-State headers
    GET  /v1/builds/<id>/artifacts       files with download links
    GET  /v1/builds/<id>/artifacts/<f>   one file
    POST /v1/builds/<id>/cancel
    GET  /openapi.json                   the description (openapi.py, made from fields.py and jobs.Job)
    GET  /healthz                        {"ok": true}
    GET  /                               a page of recent builds, their logs and artifacts (page.html)

Every error, whatever its status, is JSON: {"error": "...", "hint": "..." or null}. A store or
broker outage is a 503 with Retry-After (outage.py), never a 500. A submit that carries an
Idempotency-Key header answers a repeat of itself with the job the first try made."""

from __future__ import annotations

import functools
import hmac
import json
import re
import sys
import tempfile
from pathlib import Path

from flask import Flask, Response, jsonify, request, send_file
from werkzeug.exceptions import HTTPException

from xbuild.errors import BadArtifact, SourceTooLarge, StoreError, TooManyFiles, UserError, XBuildError
from xbuild.host.archive import check_upload, sha256_file
from xbuild.pipeline.spec import check
from xbuild.request import API_FIELDS, BuildRequest
from xbuild.service import outage, policy, settings
from xbuild.service.celery_app import queue_for, submit, waiting_notice
from xbuild.service.fields import HIDDEN, LINKS, SUBMIT
from xbuild.service.jobs import TERMINAL, Job, Jobs, new_id, tenant_of
from xbuild.service.openapi import SPEC
from xbuild.store import to_segment

_GIT_REF = re.compile(r"(?!.*\.\.)\w[\w./+-]*\Z")  # never "-..." (an option to git), never ".."
_GIT_URL = re.compile(r"(https?|git|ssh)://[^/\s]|[\w.-]+@[\w.-]+:[^\s]")
_JOB_ID = re.compile(r"\d{8}-\d{6}-[0-9a-f]{8}\Z")  # jobs.new_id(): anything else is no job
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{8,200}\Z")  # printable ASCII, no spaces: a UUID fits
# The page's one inline script and style; nothing from elsewhere, no framing.
_PAGE_CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
             "connect-src 'self'; img-src 'self'; frame-ancestors 'none'; form-action 'none'")


class Refused(Exception):
    """An error answer: the status, what went wrong and what to do."""

    def __init__(self, status: int, message: str, hint: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.hint, self.headers = status, message, hint, headers or {}


def _error(status: int, message: str, hint: str | None = None, headers=None, **extra) -> Response:
    response = jsonify({"error": message, "hint": hint, **extra})
    response.status_code = status
    response.headers.update(headers or {})
    return response


def _project_name(raw: str) -> str:
    """A directory on the worker and a prefix in the store: never ".", "..", hidden or empty."""
    return to_segment(raw)[:100]


def _form() -> dict:
    if not request.is_json:
        return request.form  # multipart: every value is a string
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise Refused(400, "the body must be a JSON object",
                      'e.g. {"git_url": "https://host/org/app.git", "target": "rpi3"}')
    return body


def _text(form: dict, key: str, default: str | None = "") -> str | None:
    value = form.get(key)
    if value is None:
        return default
    if not isinstance(value, str):
        raise Refused(422, f"{key!r} must be a string, not {type(value).__name__}")
    return value


def _flag(form: dict, key: str) -> bool:
    value = form.get(key, "")
    if isinstance(value, bool):
        return value
    if not isinstance(value, str):
        raise Refused(422, f"{key!r} must be true or false, not {type(value).__name__}")
    return value.lower() in ("1", "true", "yes")


def _value(form: dict, name: str):
    """A submit's field, read as fields.SUBMIT declares it (the document describes the same)."""
    field = SUBMIT[name]
    if field.kind == "words":
        return _words(form, name)
    return _flag(form, name) if field.kind == "flag" else _text(form, name, field.default)


def _words(form: dict, key: str) -> list[str] | str:
    """Names: a JSON body's list of strings, or a form's one string of them (BuildRequest splits it)."""
    value = form.get(key, "")
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    if not isinstance(value, str):
        raise Refused(422, f"{key!r} must be a list of strings or a string of words, not {type(value).__name__}")
    return value


def _request(form: dict) -> BuildRequest:
    """The submit's build request, its fields read as fields.SUBMIT declares them (an empty os:
    none), checked as far as the board goes (spec.check: an unknown target, release or mode, or
    what the board cannot build, is a 422 now); the project is the worker's to read."""
    values = {name: _value(form, name) for name in API_FIELDS}
    return check(BuildRequest.from_json({k: None if v == "" and SUBMIT[k].default is None else v
                                         for k, v in values.items()}, "the submit"))


def _too_big() -> tuple[str, str]:
    return (f"the upload is over the server's limit of {settings.max_upload_mb()} MB",
            "make the project smaller (xbuild-out/ and .git are left out already)")


def _check_upload(path: Path) -> None:
    """One streaming pass, in bounded memory: unsafe or sparse members, the size and file-count
    caps, and the policy's pass_env and Dockerfile checks, before the job is queued."""
    scan = policy.UploadScan()
    check_upload(path, scan.visit)
    scan.check()


def _waitress_errors_in_json() -> None:
    """waitress (what `serve` runs) answers a few requests itself, before the app sees them: a
    body over its max_request_body_size, a malformed request. Those answers are JSON too."""
    try:
        from waitress import utilities
    except ImportError:
        return

    def to_response(error, ident=None):
        message, hint = _too_big() if error.code == 413 else (error.reason.lower(), str(error.body))
        body = json.dumps({"error": message, "hint": hint}).encode() + b"\n"
        return f"{error.code} {error.reason}", [("Content-Type", "application/json")], body

    utilities.Error.to_response = to_response


def _unavailable(app: Flask, exc: Exception) -> Response:
    """The store or the broker is down or restarting: not the request's fault, and it passes."""
    app.logger.warning("%s %s: store or broker unavailable: %s", request.method, request.path, exc)
    return _error(503, "the build server's store or queue is unavailable for a moment",
                  f"retry after {outage.RETRY_AFTER} s (`xbuild submit` does, for XBUILD_RETRY_SECONDS)",
                  {"Retry-After": str(outage.RETRY_AFTER)})


def _idempotency_key() -> str | None:
    """The submit's Idempotency-Key header: the client's name for this one submit, the same on
    every retry, so that a retry after a lost answer does not make a second job."""
    key = request.headers.get("Idempotency-Key")
    if key is not None and not _IDEMPOTENCY_KEY.match(key):
        raise Refused(400, "Idempotency-Key must be 8 to 200 printable ASCII characters, no spaces",
                      "e.g. a UUID, the same on every retry of one submit")
    return key


def _replayed(jobs: Jobs, who: str, key: str | None) -> Job | None:
    """The job an earlier try of this submit made. Queued again when still queued: the earlier
    try may have failed to queue it (a broker outage); a duplicate message is harmless (run_job
    skips a job that is done or running)."""
    job = jobs.by_key(who, key) if key else None
    if job is not None and job.state == "queued":
        submit(job)
    return job


def _errors(app: Flask) -> None:
    """JSON for every error, whatever raised it: a client (or a CI script) never parses HTML."""
    @app.errorhandler(Refused)
    def refused(exc: Refused):
        return _error(exc.status, exc.message, exc.hint, exc.headers)

    @app.errorhandler(UserError)
    def user_error(exc: UserError):  # the project or the request is wrong: policy, xbuild.toml
        return _error(422, exc.message, exc.hint, exit_code=exc.exit_code)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if exc.code == 413:
            return _error(413, *_too_big())
        headers = {k: v for k, v in exc.get_response().headers.items() if k in ("Allow", "WWW-Authenticate")}
        return _error(exc.code or 500, (exc.name or "error").lower(), None, headers)

    @app.errorhandler(Exception)
    def internal(exc: Exception):
        if outage.is_outage(exc):
            return _unavailable(app, exc)
        app.logger.error("%s %s failed", request.method, request.path, exc_info=exc)
        what = type(exc).__name__ if isinstance(exc, XBuildError) else "internal error"
        return _error(500, f"the build server failed ({what})",
                      "not your request's fault: try again later, or tell the server's operator "
                      "(its log has the details)")


def create_app(jobs: Jobs | None = None) -> Flask:
    app = Flask("xbuild")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_upload_mb() << 20
    html = Path(__file__).with_name("page.html").read_bytes()
    _errors(app)
    _waitress_errors_in_json()
    for warning in policy.startup_warnings():
        print(f"warning: {warning}", file=sys.stderr)

    @functools.cache  # made on the first request that needs it, once
    def store() -> Jobs:
        return jobs if jobs is not None else Jobs()

    def tenant() -> str:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        token = token.strip() if scheme.lower() == "bearer" else ""  # RFC 7235: any case
        if not token or not any(hmac.compare_digest(token.encode(), t.encode()) for t in settings.api_tokens()):
            raise Refused(401, "unauthorized", "send Authorization: Bearer <token>", {"WWW-Authenticate": "Bearer"})
        return tenant_of(token)

    def job_or_404(job_id: str) -> Job:
        who = tenant()
        job = store().get(who, job_id) if _JOB_ID.match(job_id) else None
        if job is None:
            raise Refused(404, "not found")
        return job

    def bad(message: str, hint: str | None = None, status: int = 400):
        return _error(status, message, hint)

    def view(job: Job) -> dict:
        base = f"/v1/builds/{job.id}"
        return {**{k: v for k, v in job.to_json().items() if k not in HIDDEN},
                "waiting": waiting_notice(job),
                "links": {"self": base, **{name: f"{base}/{name}" for name in LINKS}}}

    @app.post("/v1/builds")
    def submit_build():
        who = tenant()
        key = _idempotency_key()
        if (again := _replayed(store(), who, key)) is not None:
            return jsonify(view(again)), 200
        form = _form()
        asked = _request(form)
        job = Job(id=new_id(), tenant=who, request=asked, queue=queue_for(asked.target))
        if request.is_json:
            url = _value(form, "git_url")
            if not _GIT_URL.match(url):  # not file:// or a path: the server's own disk is not a source
                return bad("git_url must be a remote git URL (https, git, ssh)",
                           "e.g. https://host/org/repo.git", 422)
            ref = _value(form, "ref") or None
            if ref is not None and not _GIT_REF.match(ref):
                return bad(f"ref {ref!r} is not a branch, tag or commit name", "e.g. main, v1.2, 3f2a9c1", 422)
            policy.check_git_url(url)  # its host: public, unless the operator allows private ones
            job.source, job.git_url, job.git_ref = "git", url, ref
            job.project = _project_name(url.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git"))
        else:
            upload = request.files.get("source")
            if upload is None:
                return bad("no source: send a .tar.gz as the 'source' form field, or JSON with git_url")
            with tempfile.NamedTemporaryFile(prefix="xbuild-upload-") as tmp:
                upload.save(tmp)  # streamed to disk, then read as a stream: never whole in memory
                tmp.flush()
                try:
                    _check_upload(Path(tmp.name))
                except (BadArtifact, SourceTooLarge, TooManyFiles) as exc:
                    too_big = isinstance(exc, (SourceTooLarge, TooManyFiles))
                    return bad(exc.message, exc.hint, 413 if too_big else 422)
                job.project = _project_name(_value(form, "project"))
                src = Path(tmp.name)
                store().store.put_file(f"{job.prefix}/source.tar.gz", src, sha256_file(src))
        store().save(job)
        if key:
            store().remember_key(who, key, job.id)
        submit(job)
        return jsonify(view(job)), 201

    @app.get("/v1/builds")
    def list_builds():
        who = tenant()
        return jsonify({"builds": [view(j) for j in store().all(who)[:100]]})

    @app.get("/v1/builds/<job_id>")
    def get_build(job_id):
        return jsonify(view(job_or_404(job_id)))

    @app.get("/v1/builds/<job_id>/log")
    def get_log(job_id):
        job = job_or_404(job_id)
        offset = max(0, request.args.get("offset", 0, type=int))
        data = store().log(job, offset)  # only the chunks from offset on are read
        return Response(data, 200, {"Content-Type": "text/plain; charset=utf-8",
                                    "X-Next-Offset": str(offset + len(data)),
                                    "X-Build-State": job.state})

    @app.get("/v1/builds/<job_id>/artifacts")
    def get_artifacts(job_id):
        job = job_or_404(job_id)
        return jsonify({"state": job.state, "build_id": job.build_id, "files": [
            {"name": f["name"], "sha256": f["sha256"], "size": f["size"],
             "url": f"/v1/builds/{job.id}/artifacts/{f['name']}"} for f in job.files]})

    @app.get("/v1/builds/<job_id>/artifacts/<name>")
    def get_artifact(job_id, name):
        job = job_or_404(job_id)
        entry = next((f for f in job.files if f["name"] == name), None)
        if entry is None:
            raise Refused(404, "not found")
        # Through a temporary file, sent as a stream: an artifact may be gigabytes, and the
        # server's memory must not grow with it. Unlinked at once; the open file keeps it.
        with tempfile.NamedTemporaryFile(prefix="xbuild-artifact-", delete=False) as tmp:
            path = Path(tmp.name)
        try:
            store().store.get_file(entry["object"], path)
            data = path.open("rb")
        except StoreError:
            if not store().store.exists(entry["object"]):
                return bad("the artifact is missing from the store", None, 410)
            raise  # the store failing: a 503 when it is down (outage.py), else a 500 that says so
        finally:
            path.unlink(missing_ok=True)
        return send_file(data, download_name=name, as_attachment=True,
                         mimetype="application/octet-stream")

    @app.post("/v1/builds/<job_id>/cancel")
    def cancel(job_id):
        job = job_or_404(job_id)
        if job.state in TERMINAL:
            return bad(f"the build already ended ({job.state})", None, 409)
        store().request_cancel(job)
        return jsonify({"id": job.id, "state": job.state, "cancel": "requested"}), 202

    @app.get("/openapi.json")
    def openapi():
        return jsonify(SPEC)

    @app.get("/")
    def page():
        # Static: the page calls the API above with the visitor's token, so it needs none itself.
        return Response(html, 200, {"Content-Type": "text/html; charset=utf-8",
                                    "Content-Security-Policy": _PAGE_CSP,
                                    "X-Content-Type-Options": "nosniff"})

    @app.get("/healthz")
    def healthz():
        return jsonify({"ok": True})

    return app

"""The HTTP API for CI pipelines. JSON in and out; every request carries a bearer token from
XBUILD_API_TOKENS; a tenant sees only its own builds (another tenant's build is a 404).

    POST /v1/builds                      multipart: source (a .tar.gz), target, mode, no_cache
                                         or JSON: {"git_url", "ref", "target", "mode", "no_cache"}
    GET  /v1/builds                      the tenant's recent builds
    GET  /v1/builds/<id>                 state
    GET  /v1/builds/<id>/log?offset=N    log bytes from N; X-Next-Offset, X-Build-State headers
    GET  /v1/builds/<id>/artifacts       files with download links
    GET  /v1/builds/<id>/artifacts/<f>   one file
    POST /v1/builds/<id>/cancel
    GET  /openapi.json                   the description
    GET  /                               a page of recent builds, their logs and artifacts (page.html)"""

from __future__ import annotations

import hmac
import io
import re
import tarfile
from pathlib import Path

from flask import Flask, Response, abort, jsonify, request, send_file

from xbuild import targets
from xbuild.archive import safe_members
from xbuild.errors import BadArtifact, UnknownTarget
from xbuild.service import settings
from xbuild.service.celery_app import queue_for, submit
from xbuild.service.jobs import TERMINAL, Job, Jobs, new_id, tenant_of

_PROJECT = re.compile(r"[^A-Za-z0-9._+-]")
_GIT_REF = re.compile(r"(?!.*\.\.)\w[\w./+-]*\Z")  # never "-..." (an option to git), never ".."
_GIT_URL = re.compile(r"(https?|git|ssh)://[^/\s]|[\w.-]+@[\w.-]+:[^\s]")
# The page's one inline script and style; nothing from elsewhere, no framing.
_PAGE_CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
             "connect-src 'self'; img-src 'self'; frame-ancestors 'none'; form-action 'none'")


def create_app(jobs: Jobs | None = None) -> Flask:
    app = Flask("xbuild")
    app.config["MAX_CONTENT_LENGTH"] = settings.MAX_UPLOAD_MB << 20
    html = Path(__file__).with_name("page.html").read_bytes()
    state = {"jobs": jobs}

    def store() -> Jobs:
        if state["jobs"] is None:
            state["jobs"] = Jobs()
        return state["jobs"]

    def tenant() -> str:
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
        if not token or not any(hmac.compare_digest(token, t) for t in settings.api_tokens()):
            abort(Response('{"error": "unauthorized", "hint": "send Authorization: Bearer <token>"}\n',
                           401, {"Content-Type": "application/json", "WWW-Authenticate": "Bearer"}))
        return tenant_of(token)

    def job_or_404(job_id: str) -> Job:
        job = store().get(tenant(), job_id)
        if job is None:
            abort(Response('{"error": "not found"}\n', 404, {"Content-Type": "application/json"}))
        return job

    def bad(message: str, hint: str | None = None, status: int = 400):
        return jsonify({"error": message, "hint": hint}), status

    def view(job: Job) -> dict:
        base = f"/v1/builds/{job.id}"
        return {**{k: v for k, v in job.to_json().items() if k not in ("tenant", "files")},
                "links": {"self": base, "log": f"{base}/log", "artifacts": f"{base}/artifacts",
                          "cancel": f"{base}/cancel"}}

    @app.post("/v1/builds")
    def submit_build():
        who = tenant()
        form = request.get_json(silent=True) if request.is_json else request.form
        form = form or {}
        target = form.get("target", "")
        try:
            target = targets.get(target).name
        except UnknownTarget as exc:
            return bad(exc.message, exc.hint, 422)
        mode = form.get("mode", "cross")
        if mode not in ("cross", "emulate"):
            return bad(f"unknown mode {mode!r}", "cross or emulate", 422)
        no_cache = str(form.get("no_cache", "")).lower() in ("1", "true", "yes")
        job = Job(id=new_id(), tenant=who, target=target, mode=mode, no_cache=no_cache,
                  queue=queue_for(target))
        if request.is_json:
            url = form.get("git_url", "")
            if not _GIT_URL.match(url):  # not file:// or a path: the server's own disk is not a source
                return bad("git_url must be a remote git URL (https, git, ssh)",
                           "e.g. https://host/org/repo.git", 422)
            ref = form.get("ref") or None
            if ref is not None and not _GIT_REF.match(ref):
                return bad(f"ref {ref!r} is not a branch, tag or commit name", "e.g. main, v1.2, 3f2a9c1", 422)
            job.source, job.git_url, job.git_ref = "git", url, ref
            job.project = _PROJECT.sub("-", url.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")) or "project"
        else:
            upload = request.files.get("source")
            if upload is None:
                return bad("no source: send a .tar.gz as the 'source' form field, or JSON with git_url")
            data = upload.read()
            try:
                with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
                    list(safe_members(tar, "upload"))
            except (tarfile.TarError, EOFError, OSError) as exc:
                return bad(f"the source is not a readable tar archive: {exc}", None, 422)
            except BadArtifact as exc:
                return bad(exc.message, "upload the project's files only", 422)
            job.project = _PROJECT.sub("-", form.get("project") or "project")
            store().store.write(f"{job.prefix}/source.tar.gz", data)
        store().save(job)
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
            abort(404)
        data = store().store.read(entry["object"])
        if data is None:
            return bad("the artifact is missing from the store", None, 410)
        return send_file(io.BytesIO(data), download_name=name, as_attachment=True,
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
        from xbuild.service.openapi import SPEC
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

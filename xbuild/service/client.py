"""`xbuild submit`: upload a project to a build server, stream its log, download its artifacts."""

from __future__ import annotations

import datetime
import functools
import json
import tempfile
import time
import uuid
from pathlib import Path

from xbuild.errors import (
    BadProjectPath,
    ConfigError,
    RefusedByService,
    ServerError,
    ServerUnavailable,
    TokenRejected,
    UnknownRelease,
    UnknownTarget,
    UserError,
)
from xbuild.host.archive import sha256_file, write_tar_gz
from xbuild.host.atomic import check_out, replacing
from xbuild.host.paths import component
from xbuild.pipeline.spec import OUT_DIRNAME, PYPI
from xbuild.project import pypi
from xbuild.project.sources import check_size, excluder
from xbuild.request import API_FIELDS, BuildRequest
from xbuild.service.jobs import TERMINAL

POLL_MIN, POLL_MAX = 0.1, 1.0  # seconds between log polls while waiting
WAITING_CHECK = 10.0           # seconds between asking whether a queued build has a worker
# A 422 that names one of these exit codes exits with it, as the same mistake does on the CLI;
# any other refusal is a ConfigError.
_REFUSALS: dict[object, type[UserError]] = {
    e.exit_code: e for e in (RefusedByService, UnknownTarget, UnknownRelease)}


class Client:
    """The API, as a CI job needs it: a restart of the server, its store or its broker is waited
    out. A request that is safe to repeat (a GET, a submit with its Idempotency-Key) is retried
    with backoff on a refused connection, a timeout or a 5xx (a 500 too: an older server's or a
    proxy's word for an outage; ours says 503 with Retry-After), for up to `retry_seconds`
    (XBUILD_RETRY_SECONDS), each retry said on `say` (stderr); only then does it fail as before
    (exit 18 unreachable, 22 server error)."""

    def __init__(self, server: str, token: str, retry_seconds: float = 0.0, say=None):
        import requests
        self.server, self.http = server.rstrip("/"), requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"
        self.retry_seconds, self.say = retry_seconds, say

    def call(self, method: str, path: str, **kwargs):
        """The answer to one request, retried when that is safe (see the class)."""
        safe = method == "GET" or "Idempotency-Key" in kwargs.get("headers", {})
        return self.patiently(f"{method} {path}", lambda: self.once(method, path, **kwargs),
                              retry=safe)

    def patiently(self, what: str, fn, retry: bool = True):
        """fn() (which raises Transient on an outage), for up to retry_seconds when `retry`."""
        from xbuild.host.retry import patiently
        return patiently(fn, self.retry_seconds if retry else 0.0, what, self.say)

    def once(self, method: str, path: str, **kwargs):
        import requests

        from xbuild.host.retry import Transient
        try:
            resp = self.http.request(method, self.server + path, timeout=60, **kwargs)
        except requests.RequestException as exc:
            raise Transient(ServerUnavailable(f"cannot reach {self.server}: {type(exc).__name__}")) from None
        if resp.status_code >= 500:  # it answered: not "unreachable", and not the user's fault
            said = _first_line(str(_json(resp).get("error") or resp.text))
            error = ServerError(f"server error from {self.server}{path}: HTTP {resp.status_code}"
                                + (f": {said}" if said else ""))
            raise Transient(error, _retry_after(resp))
        return _checked(self.server, path, resp)


def _retry_after(resp) -> float | None:
    """Retry-After in seconds (the HTTP-date form is not worth a parser here)."""
    value = resp.headers.get("Retry-After", "")
    return float(value) if value.strip().isdigit() else None


def _checked(server: str, path: str, resp):
    """resp, unless it is a refusal: each its own error and exit code."""
    if resp.status_code == 401:
        raise TokenRejected(f"{server} refused the token")
    if resp.status_code in (400, 413, 422):
        body = _json(resp)
        # the service's policy (exit 23, as when its worker refuses a git source), an unknown
        # board or release (3, 36), or another wrong value in the request
        error = _REFUSALS.get(body.get("exit_code"), ConfigError)
        raise error(f"the server refused the build: {body.get('error', resp.status_code)}",
                    hint=body.get("hint"))
    if resp.status_code >= 400:
        raise ServerUnavailable(f"{server}{path}: HTTP {resp.status_code}")
    return resp


def _json(resp) -> dict:
    try:
        body = resp.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _first_line(text: str) -> str:
    """Of an error message or page (a proxy's): short, and no control characters for the terminal."""
    line = next((s.strip() for s in text.splitlines() if s.strip()), "")
    return "".join(c if c.isprintable() else "?" for c in line[:200])


def _source(project: Path) -> bytes:
    """The project as a .tar.gz, compressed as it is read: memory holds the compressed upload
    (which the server caps, XBUILD_MAX_UPLOAD_MB), never the unpacked tree."""
    exclude = excluder(project, project / OUT_DIRNAME, OUT_DIRNAME)
    check_size(project, exclude)  # before any content is read, as a local build does
    with tempfile.TemporaryDirectory(prefix="xbuild-submit-") as tmp:
        archive = Path(tmp) / "source.tar.gz"
        write_tar_gz(project, archive, mtime=0, clamp=False, exclude=exclude)
        return archive.read_bytes()


def submit_and_wait(server, token, project, request: BuildRequest, wait, out, log,
                    git: str | None = None, ref: str | None = None, retry_seconds: float = 0.0) -> dict:
    """Upload PROJECT (or name a git URL and ref for the server to fetch), then follow the build."""
    client = Client(server, token, retry_seconds, log)
    # One submit, one job, however often it is sent: the server answers a repeat with the job
    # the first try made (a retry after a timeout whose answer was lost).
    once = {"Idempotency-Key": str(uuid.uuid4())}
    # What the API takes of the request, as JSON (true, false); unset (None) ones are left out.
    asked = {k: v for k, v in request.to_json(API_FIELDS).items() if v is not None}
    path = Path(project).resolve()  # with --git, only where the artifacts go by default
    outputs = path / OUT_DIRNAME
    if str(project).startswith(PYPI):  # fetched here, outside the farm, and uploaded as a folder
        sdist = pypi.fetch(str(project).removeprefix(PYPI), log)
        path, outputs = sdist.project, Path.cwd() / OUT_DIRNAME / sdist.label
    # Two releases of a board (or static and not) must not replace each other's download, as the
    # CLI's output directories do not
    name = component("-".join([request.target, *([request.os] if request.os else []),
                               *(["static"] if request.static else [])]), "--target and --os")
    dest = Path(out) if out else outputs / name
    if wait:
        check_out(dest, path)  # refused now, not after the build
    if git:
        resp = client.call("POST", "/v1/builds", headers=once, json={**asked, "git_url": git, "ref": ref})
    else:
        if not path.is_dir():
            raise BadProjectPath(f"project path {str(project)!r} is not a directory")
        # A form's values are strings: JSON's own spelling of each (true, false, 3), a list's
        # (packages) its words, as the API reads them.
        form = {k: v if isinstance(v, str) else " ".join(v) if isinstance(v, list) else json.dumps(v)
                for k, v in asked.items()}
        resp = client.call("POST", "/v1/builds", headers=once, data={**form, "project": path.name},
                           files={"source": ("source.tar.gz", _source(path))})
    job = resp.json()
    release = f" on {job['os']}" if job.get("os") else ""
    log(f"submitted build {job['id']} ({job['target']}{release}, queue {job.get('queue')})")
    if not wait:
        return job
    offset, pause, told, check_at = 0, POLL_MIN, False, time.monotonic() + WAITING_CHECK
    while True:
        r = client.call("GET", f"/v1/builds/{job['id']}/log", params={"offset": offset})
        if r.content:
            for line in r.content.decode("utf-8", "replace").splitlines():
                log(line)
        offset = int(r.headers.get("X-Next-Offset", offset))
        state = r.headers.get("X-Build-State")
        if state in TERMINAL:
            break
        if state == "queued" and not told and time.monotonic() >= check_at:
            # no worker for its queue? the server says so once it has waited a while
            check_at = time.monotonic() + WAITING_CHECK
            if notice := client.call("GET", f"/v1/builds/{job['id']}").json().get("waiting"):
                log(f"waiting: {notice}")
                told = True
        # Quick at first (a cache hit ends in well under a second), then easier on the server.
        pause = POLL_MIN if r.content else min(pause * 1.5, POLL_MAX)
        time.sleep(pause)
    job = client.call("GET", f"/v1/builds/{job['id']}").json()
    if job["state"] != "succeeded":
        if job.get("error"):
            log(f"error: {job['error']}")
            for hint in (job.get("hint") or "").splitlines():  # several hints: one line each
                log(f"hint: {hint}")
        return {"status": "error", "message": job.get("error"), **job}
    downloaded = _download(client, job["id"], dest)
    return {**_as_local_build(job, dest), **job, "downloaded": downloaded}


def _fetch(client: Client, url: str, dest: Path) -> None:
    """One artifact into dest, streamed (it may be gigabytes); a connection cut midway is an
    outage like any other: the whole file is fetched again."""
    import requests

    from xbuild.host.retry import Transient
    with client.once("GET", url, stream=True) as resp, dest.open("wb") as out:
        try:
            for chunk in resp.iter_content(1 << 20):
                out.write(chunk)
        except requests.RequestException as exc:
            raise Transient(ServerUnavailable(f"{url}: the download broke off: {type(exc).__name__}")) from None


def _as_local_build(job: dict, dest: Path) -> dict:
    """What a local build's --json says (artifacts with path, sha256 and size, manifest, log,
    cache, os, ...), from the downloaded manifest: CI reads either with one parser. The
    service's own fields (id, state, queue, ...) go on top of it."""
    path = dest / "manifest.json"  # every build writes one; a server of another version might not
    manifest = json.loads(path.read_text()) if path.is_file() else {}
    times = [datetime.datetime.fromisoformat(job[k]) for k in ("started", "finished") if job.get(k)]
    return {"status": "ok", "target": job["target"], "os": job.get("os"), "mode": job["mode"],
            "recipe": manifest.get("recipe"),
            "artifacts": [{"path": str(dest / Path(a["name"]).name), "sha256": a["sha256"], "size": a["size"]}
                          for a in manifest.get("artifacts", [])],
            "manifest": str(dest / "manifest.json"), "log": str(dest / "build.log"),
            "image": (manifest.get("image") or {}).get("id", ""),
            "source_hash": manifest.get("source_tree_sha256"),
            "duration": round((times[1] - times[0]).total_seconds(), 3) if len(times) == 2 else None,
            "cache": job.get("cache"), "build_id": job.get("build_id"),
            "depends": manifest.get("depends", []), "timings": job.get("timings") or {},
            "compiler_cache": job.get("compiler_cache") or {"enabled": False, "hits": 0, "misses": 0,
                                                            "namespace": None}}


def _download(client: Client, job_id: str, dest: Path) -> list[str]:
    """Every artifact, checked, into dest; dest changes only once all of them arrived intact."""
    listing = client.call("GET", f"/v1/builds/{job_id}/artifacts").json()
    names = []
    with replacing(dest, "download") as tmp:
        for f in listing["files"]:
            name = component(f["name"], "an artifact name from the server")
            client.patiently(f"downloading {name}", functools.partial(_fetch, client, f["url"], tmp / name))
            if sha256_file(tmp / name) != f["sha256"]:
                raise ServerUnavailable(f"{f['name']} arrived corrupted (sha256 mismatch)",
                                        hint="submit again; the previous output was left as it was")
            names.append(name)
    return [str(dest / n) for n in names]

"""Running one job on a worker: take the lease, fetch the source, run the shared pipeline with the
log streamed to the store, record the outcome. Nothing about building lives here."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from xbuild import spec as specs
from xbuild.archive import extract
from xbuild.errors import BadProjectPath, BuildTimeout, StoreError, XBuildError
from xbuild.pipeline import run_build
from xbuild.progress import Progress
from xbuild.service import policy, settings
from xbuild.service.jobs import TERMINAL, Job, Jobs, now
from xbuild.service.leases import lease

LOG_FLUSH_SECONDS = 2.0
JOB_LABEL = "org.xbuild.job"


class _JobLog(Progress):
    """Progress that keeps every line and writes the log to the store every few seconds."""

    def __init__(self, jobs: Jobs, job: Job):
        super().__init__(quiet=True)
        self.jobs, self.job, self.lines, self.last = jobs, job, [], 0.0
        self.cancelled = threading.Event()
        self.container_name: str | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        # A quiet build (sleep, a long link) writes no lines: a ticker still publishes the log
        # and notices a cancel request.
        self._ticker = threading.Thread(target=self._tick, daemon=True)
        self._ticker.start()

    def _tick(self):
        while not self._stop.wait(LOG_FLUSH_SECONDS):
            self.flush()

    def close(self):
        self._stop.set()
        self.flush()

    def container(self, name):
        self.container_name = name

    def phase(self, name, detail=""):
        self.line(f"[xbuild] {name}{': ' + detail if detail else ''}")

    def line(self, text):
        if text.startswith("::xbuild "):
            text = "[xbuild] build: " + text.removeprefix("::xbuild ")
        self.lines.append(text)
        if time.monotonic() - self.last > LOG_FLUSH_SECONDS:
            self.flush()

    def flush(self):
        with self._lock:
            self.last = time.monotonic()
            self.jobs.write_log(self.job, ("\n".join(self.lines) + "\n").encode())
        if not self.cancelled.is_set() and self.jobs.cancel_requested(self.job):
            self.cancelled.set()
            self._kill()

    def _kill(self):
        from docker.errors import APIError
        from xbuild.engine import client
        if self.container_name:
            try:
                client().containers.get(self.container_name).kill()
            except APIError:
                pass  # already gone


# The worker's own git set-up (an operator's keys or credential helper for private repositories),
# but no prompt for credentials that nobody is there to type.
_GIT_ENV = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C",
            "GIT_SSH_COMMAND": os.environ.get("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")}


def _source(jobs: Jobs, job: Job, into: Path) -> Path:
    project = into / job.project
    project.mkdir(parents=True)
    if job.source == "git":
        policy.check_git_job(job)
        job.commit = fetch_git(job.git_url, job.git_ref, project)
    else:
        archive = into / "source.tar.gz"
        jobs.store.get_file(f"{job.prefix}/source.tar.gz", archive)
        extract(archive, project, "uploaded source")
    return project


def fetch_git(url: str, ref: str | None, into: Path) -> str:
    """Check out `ref` (a branch, tag or commit; default: the remote's HEAD) of `url` into an
    empty directory; returns the commit. Outside the sandbox, but only git's own transport runs:
    a fetch runs no hooks and no code from the repository."""
    def git(*args: str) -> str:
        try:
            # no redirect: the host the service checked (policy.check_git_job) is the one fetched from
            return subprocess.run(["git", "-c", "http.followRedirects=false", "-C", str(into), *args],
                                  check=True, capture_output=True, text=True, timeout=600,
                                  env=_GIT_ENV).stdout.strip()
        except subprocess.CalledProcessError as exc:
            why = (exc.stderr or "").strip().splitlines()
            raise BadProjectPath(f"cannot fetch {ref or 'HEAD'} of {url}: {why[-1] if why else exc}",
                                 hint="check the git URL and ref (a branch, tag or commit)") from None
        except subprocess.TimeoutExpired:
            raise BadProjectPath(f"fetching {url} took over 10 minutes") from None

    git("init", "-q")
    try:  # one commit's worth, the quick way: works for branches, tags and most servers' commits
        git("fetch", "-q", "--depth", "1", "--", url, ref or "HEAD")
        wanted = "FETCH_HEAD"
    except BadProjectPath:
        if not ref:
            raise
        # A short commit id, or a server that will not serve a bare commit: take the history.
        git("fetch", "-q", "--", url, "+refs/heads/*:refs/remotes/src/*", "+refs/tags/*:refs/tags/*")
        wanted = f"{ref}^{{commit}}"
    git("checkout", "-q", "--detach", wanted)
    return git("rev-parse", "HEAD")


def run_job(tenant: str, job_id: str, jobs: Jobs | None = None) -> str:
    """Run a job unless it is finished or running elsewhere; returns what happened."""
    jobs = jobs or Jobs()
    job = jobs.get(tenant, job_id)
    if job is None:
        return "missing"
    if job.state in TERMINAL:
        return "already-done"
    held = lease(job.id)
    if not held.acquire():
        return "running-elsewhere"  # a duplicate delivery: the holder finishes it
    try:
        job = jobs.get(tenant, job_id)  # re-read under the lease
        if job.state in TERMINAL:
            return "already-done"
        if jobs.cancel_requested(job):
            job.state, job.finished = "cancelled", now()
            jobs.save(job)
            return job.state
        job.state, job.started, job.attempts = "running", now(), job.attempts + 1
        jobs.save(job)
        # A previous attempt's worker may have died with its build container still running.
        from xbuild.sandbox import Container
        Container.remove_labelled(JOB_LABEL, job.id)
        log = _JobLog(jobs, job)
        work = settings.state_dir() / "work"
        work.mkdir(exist_ok=True)
        for stale in work.glob(f"{job.id}-*"):  # a dead worker's previous attempt
            shutil.rmtree(stale, ignore_errors=True)
        with tempfile.TemporaryDirectory(prefix=f"{job.id}-", dir=work) as tmp:
            try:
                project = _source(jobs, job, Path(tmp))
                spec = specs.resolve(project, job.target, mode=job.mode, out=Path(tmp) / "out")
                policy.check(spec)  # pass_env, Dockerfile: whatever the source, before it builds
                result = run_build(spec, log, use_cache=not job.no_cache, labels={JOB_LABEL: job.id})
                job.state, job.exit_code, job.cache = "succeeded", 0, result.extra.get("cache")
                job.build_id = result.extra["build_id"]
                job.files = _published_files(jobs, spec, job.build_id)
            except XBuildError as exc:
                job.state = "timed_out" if isinstance(exc, BuildTimeout) else "failed"
                if log.cancelled.is_set():
                    job.state = "cancelled"
                job.exit_code, job.error, job.hint = exc.exit_code, exc.message, exc.hint
                if exc.detail:
                    log.lines += exc.detail.splitlines()
        log.close()
        job.finished = now()
        jobs.save(job)
        return job.state
    finally:
        held.release()


def _published_files(jobs: Jobs, spec, build_id: str) -> list[dict]:
    """The job's files are the build's record in the store (the cache wrote it)."""
    from xbuild import cache, publish
    record = publish.read_record(jobs.store, cache.store_base(spec), build_id)
    if record is None:
        raise StoreError(f"build {build_id} is missing from the store after building")
    base = cache.store_base(spec)
    return [{**f, "object": f"{base}/{f['object']}"} for f in record["files"]]

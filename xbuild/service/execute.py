"""Running one job on a worker: take the lease, fetch the source, run the shared pipeline with the
log streamed to the store, record the outcome. Nothing about building lives here."""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import hashlib
import os
import re
import subprocess
import threading
import time
from pathlib import Path

from xbuild.errors import BadProjectPath, BuildCancelled, BuildTimeout, ExitCode, StoreError, XBuildError
from xbuild.host.archive import extract, max_source_files
from xbuild.host.paths import under
from xbuild.host.safefs import remove_tree, temp_dir
from xbuild.pipeline import buildlog, compiler_cache
from xbuild.pipeline import spec as specs
from xbuild.pipeline.build import run_build
from xbuild.pipeline.context import CacheUse
from xbuild.service import policy, settings
from xbuild.service.jobs import TERMINAL, Job, Jobs, now
from xbuild.service.leases import lease

LOG_FLUSH_SECONDS = 2.0
STORE_RETRIES = 2             # builds again after a store error, this many times
LOG_CHUNK_BYTES = 1 << 20     # a chunk is written at least this often, whatever the time
LOG_TAIL_LINES = 200          # kept past the cap, so the failing line is still there
LOG_LINE_BYTES = 16 << 10     # a longer line is cut (a binary dumped to stdout)
JOB_LABEL = "org.xbuild.job"
FARM_LABEL = "org.xbuild.farm"


def farm() -> str:
    """This deployment's name, the FARM_LABEL of its build containers. A farm is its store (its
    API, workers and reaper share it), named by a hash of the store's URL. A farm sweeps only its
    own expired containers: another farm's, or a laptop's build on a shared engine, is not its to
    remove."""
    from xbuild.store import configured_url
    return hashlib.sha256(configured_url().encode()).hexdigest()[:16]


def remove_expired() -> int:
    """This farm's build containers past their deadline (their xbuild died with them running)."""
    from xbuild.containers import sandbox
    return sandbox.remove_expired(label=f"{FARM_LABEL}={farm()}")


class _JobLog:
    """A job's observer (observer.Observer): appends the job's log to the store as it comes, and
    stops the build the tenant cancelled. Lines are buffered for at most LOG_FLUSH_SECONDS or
    LOG_CHUNK_BYTES, then written as one more chunk. Memory holds one chunk and, past the cap
    (XBUILD_MAX_LOG_MB), the last LOG_TAIL_LINES lines, which close() writes after a line saying
    how much was left out."""

    def __init__(self, jobs: Jobs, job: Job):
        self.jobs, self.job, self.last = jobs, job, time.monotonic()
        self.offset, self.pending_bytes = jobs.log_size(job), 0
        self.pending: list[bytes] = []
        self.cap, self.capped = buildlog.max_bytes(), 0     # capped: lines left out so far
        self.tail: collections.deque[bytes] = collections.deque(maxlen=LOG_TAIL_LINES)
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
        """Stop the ticker and write what is left (and, if capped, the tail); idempotent."""
        self._stop.set()
        if self._ticker.is_alive() and self._ticker is not threading.current_thread():
            self._ticker.join()
        with self._lock:
            if self.capped:
                left_out = self.capped - len(self.tail)
                self.pending = [f"[xbuild] log capped at {self.cap >> 20} MB (XBUILD_MAX_LOG_MB): "
                                f"{left_out} line(s) left out; the last {len(self.tail)} follow\n".encode(),
                                *self.tail]
                self.capped = 0
                self.tail.clear()
        self.flush(check_cancel=False)

    def container(self, name: str) -> None:
        self.container_name = name

    def stop_requested(self) -> bool:
        """A Dockerfile build has no one container to kill: it polls this and stops itself."""
        return self.cancelled.is_set()

    def mark(self, name: str) -> None:
        """Each quiet phase asks the store itself, not only the ticker's flag (up to
        LOG_FLUSH_SECONDS late): a cancel during a quick copy-in still stops the build before its
        steps (the build asks stop_requested next)."""
        if name and not self.cancelled.is_set():
            with contextlib.suppress(StoreError):  # the store restarting: the ticker asks again
                if self.jobs.cancel_requested(self.job):
                    self.cancelled.set()

    def phase(self, name: str, detail: str = "") -> None:
        self.line(f"[xbuild] {name}{': ' + detail if detail else ''}")

    def done(self) -> None:
        """The log stays open after the build: run_job writes the outcome's lines and closes it."""

    def line(self, text: str) -> None:
        if text.startswith("::xbuild "):
            text = "[xbuild] build: " + text.removeprefix("::xbuild ")
        if text.startswith("[xbuild]"):  # xbuild's own lines name server paths and the store
            text = _tenant_text(text, self.jobs.store.url)
        data = text.encode(errors="replace")
        if len(data) > LOG_LINE_BYTES:
            data = data[:LOG_LINE_BYTES] + b" [line cut]"
        data += b"\n"
        with self._lock:
            if self.capped or self.offset + self.pending_bytes + len(data) > self.cap:
                self.capped += 1
                self.tail.append(data)
                return
            self.pending.append(data)
            self.pending_bytes += len(data)
            due = self.pending_bytes >= LOG_CHUNK_BYTES or time.monotonic() - self.last > LOG_FLUSH_SECONDS
        if due:
            self.flush()

    def flush(self, check_cancel: bool = True):
        try:
            with self._lock:
                self.last = time.monotonic()
                if self.pending:
                    data = b"".join(self.pending)
                    self.jobs.append_log(self.job, self.offset, data)
                    self.offset += len(data)
                    self.pending, self.pending_bytes = [], 0
            if check_cancel and (self.cancelled.is_set() or self.jobs.cancel_requested(self.job)):
                self.cancelled.set()  # the build sees it at its next quiet phase (BuildContext.mark)
                self._kill()  # again at every tick: a container that was not running yet may be now
        except StoreError:
            return  # the store is restarting: the lines stay pending, the next flush writes them

    def _kill(self):
        from docker.errors import APIError

        from xbuild.containers.engine import client
        if self.container_name:
            with contextlib.suppress(APIError):  # already gone
                client().containers.get(self.container_name).kill()


# The worker's own git set-up (an operator's keys or credential helper for private repositories),
# but no prompt for credentials that nobody is there to type.
_GIT_ENV = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C",
            "GIT_SSH_COMMAND": os.environ.get("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")}
# The checkout needs none of it: without the operator's config, a tenant's .gitattributes can name
# no filter driver the operator set up (git-lfs's smudge would fetch from a host the tenant picks).
_GIT_CHECKOUT_ENV = {**{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
                     "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
                     "GIT_TERMINAL_PROMPT": "0", "GIT_LFS_SKIP_SMUDGE": "1", "LC_ALL": "C"}


def _source(jobs: Jobs, job: Job, into: Path) -> Path:
    """The job's project, in its work directory's fixed layout: xbuild's own files at the top
    (source.tar.gz, out/, ccache/), the project one level down as src/<name>, so that no name a
    request gives meets one of xbuild's."""
    project = under(into / "src", job.project, what="the job's project name")  # a record is data too
    project.mkdir(parents=True)
    if job.source == "git":
        job.commit = fetch_git(policy.check_git_job(job), job.git_ref, project)  # its .git: the worker's own
    else:
        archive = into / "source.tar.gz"
        jobs.store.get_file(f"{job.prefix}/source.tar.gz", archive)
        extract(archive, project, "uploaded source", files=max_source_files())
        _drop_git(project)
    return project


def _drop_git(project: Path) -> None:
    """An upload's .git is the tenant's own making: git on the worker never reads it, not even
    through gitmeta (whose git would still parse the tenant's objects). The build never saw it
    anyway (sources.VCS_DIRS); the date and version are the defaults."""
    dot_git = project / ".git"
    if dot_git.is_dir() and not dot_git.is_symlink():
        remove_tree(dot_git)  # of any depth
    else:
        dot_git.unlink(missing_ok=True)


def fetch_git(url: str, ref: str | None, into: Path) -> str:
    """Check out `ref` (a branch, tag or commit; default: the remote's HEAD) of `url` into an
    empty directory; returns the commit. Outside the sandbox, but only git's own transport runs:
    a fetch runs no hooks and no code from the repository."""
    def git(*args: str, env: dict[str, str] = _GIT_ENV) -> str:
        try:
            # no redirect: the host the service checked (policy.check_git_job) is the one fetched from
            return subprocess.run(["git", "-c", "http.followRedirects=false", "-C", str(into), *args],
                                  check=True, capture_output=True, text=True, timeout=600,
                                  env=env).stdout.strip()
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
    git("checkout", "-q", "--detach", wanted, env=_GIT_CHECKOUT_ENV)
    return git("rev-parse", "HEAD", env=_GIT_CHECKOUT_ENV)


def run_job(tenant: str, job_id: str, jobs: Jobs | None = None) -> str:
    """Run a job unless it is finished or running elsewhere; returns what happened."""
    jobs = jobs or Jobs()
    job = jobs.get(tenant, job_id)
    if job is None:
        return "missing"
    if job.state in TERMINAL:
        return "already-done"
    held = lease(job.id)
    if not _acquire(held):
        return "running-elsewhere"  # a duplicate delivery: the holder finishes it
    try:
        job = jobs.get(tenant, job_id)  # re-read under the lease
        if job is None:  # deleted meanwhile
            return "missing"
        if job.state in TERMINAL:
            return "already-done"
        if jobs.cancel_requested(job):
            job.state, job.finished = "cancelled", now()
            jobs.save(job)
            return job.state
        job.state, job.started, job.attempts = "running", now(), job.attempts + 1
        _patiently(jobs.save, job)
        _worker_log().info("job %s: attempt %d", job.id, job.attempts)
        log = _JobLog(jobs, job)
        if job.attempts > 1:
            log.line(f"[xbuild] attempt {job.attempts}: the previous worker died during the build")
        try:
            _run(jobs, job, log)
        finally:
            log.close()
        if held.lost:  # another process holds the job now (see leases.py): its record is theirs
            return "lease-lost"
        job.finished = now()
        _patiently(jobs.save, job)  # a build done is not thrown away for a store restarting
        return job.state
    finally:
        held.release()


def _patiently(fn, *args, seconds: float = 120):
    """fn(*args), retried while the store answers StoreError (a restart) for up to `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return fn(*args)
        except StoreError:
            if time.monotonic() > deadline:
                raise
            time.sleep(2)


def _worker_log():
    """The worker's own log (the operator's, not the tenant's), through Celery's handlers."""
    from celery.utils.log import get_logger
    return get_logger("xbuild.worker")


def _acquire(held) -> bool:
    """The lease, waiting a moment: the reaper holds it briefly while it requeues the job. A
    broker restarting (the lease lives there) is waited out, as the store is."""
    from xbuild.host.retry import Transient, patiently, retry_seconds
    from xbuild.service.outage import is_outage

    def once() -> bool:
        try:
            return held.acquire()
        except Exception as exc:
            if is_outage(exc):
                raise Transient(exc) from None
            raise
    for _ in range(10):
        if patiently(once, retry_seconds(), "taking the job's lease", _worker_log().warning):
            return True
        time.sleep(0.3)
    return False


def _work_dir() -> Path:
    return settings.state_dir() / "work"


def _run(jobs: Jobs, job: Job, log: _JobLog) -> None:
    """Build the job and record the outcome in `job`: every failure ends it, a bug of ours too."""
    work = _work_dir()
    try:
        _build_patiently(jobs, job, log, work)
    except XBuildError as exc:
        if log.cancelled.is_set() and not isinstance(exc, BuildCancelled):
            exc = BuildCancelled("the build was cancelled")  # not "exit code 137": the kill was ours
        job.state = ("cancelled" if isinstance(exc, BuildCancelled) else
                     "timed_out" if isinstance(exc, BuildTimeout) else "failed")
        # The log already holds the lines the error's detail repeats (the log tail).
        job.exit_code, job.error = exc.exit_code, _tenant_text(exc.message, jobs.store.url)
        job.hint = _tenant_hint(exc.hint, job, work)
    except Exception as exc:  # noqa: BLE001 - a bug of ours must still end the job
        _worker_log().exception("job %s: internal error", job.id)  # the operator's log
        first = _tenant_text((str(exc).splitlines() or [""])[0][:300], jobs.store.url)
        text = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
        job.state, job.exit_code = "failed", ExitCode.INTERNAL
        job.error = f"internal error in the build service ({text})"
        job.hint = "not a fault of the project: retry later, or tell the service's operator"
        log.line(f"[xbuild] internal error: {text}")


def _build_patiently(jobs: Jobs, job: Job, log: _JobLog, work: Path) -> None:
    """A store that fails for a moment (a restart, a 5xx) fails no build: wait until it answers
    and build again (publishing is idempotent, and a cache hit makes the second time quick)."""
    for retry in range(STORE_RETRIES + 1):
        try:
            _build(jobs, job, log, work)
            return
        except StoreError as exc:
            if retry == STORE_RETRIES or log.cancelled.is_set():
                raise
            _worker_log().warning("job %s: store error, building again: %s", job.id, exc.message)
            log.line(f"[xbuild] the artifact store failed ({exc.message}): building again once it answers")
            _patiently(jobs.store.read, f"{job.prefix}/job.json")


def _build(jobs: Jobs, job: Job, log: _JobLog, work: Path) -> None:
    # A previous attempt's worker may have died with its build container still running.
    from xbuild.containers.sandbox import Container
    Container.remove_labelled(JOB_LABEL, job.id)
    remove_expired()  # any of this farm's build containers on this engine past its time limit
    work.mkdir(exist_ok=True)
    for stale in work.glob(f"{job.id}-*"):  # a dead worker's previous attempt
        remove_tree(stale)
    with temp_dir(f"{job.id}-", work) as tmp:  # holds the upload, of any depth
        project = _source(jobs, job, Path(tmp))
        # static/deb False: not asked for, so the project's xbuild.toml decides (None)
        asked = dataclasses.replace(job.request, static=job.request.static or None,
                                    deb=job.request.deb or None)
        spec = specs.resolve(project, asked, out=Path(tmp) / "out")
        if job.request.os != spec.target.selected.name:  # chosen by xbuild.toml or the board's
            # default: the status names the release it is built for
            job.request = dataclasses.replace(job.request, os=spec.target.selected.name)
            _patiently(jobs.save, job)
        policy.check(spec)  # pass_env, Dockerfile: whatever the source, before it builds
        # The tenant's own compiler cache, through the store: never another tenant's.
        with compiler_cache.shared(jobs.store, job.tenant, spec, Path(tmp), log.line) as ccache:
            result = run_build(spec, log, cache=CacheUse(answer=not job.request.no_cache, scope=cache_scope(job)),
                               compiler_cache=ccache, labels={JOB_LABEL: job.id, FARM_LABEL: farm()})
        job.state, job.exit_code, job.cache = "succeeded", ExitCode.OK, result.extra.get("cache")
        job.build_id, job.cache_key = result.extra["build_id"], result.extra.get("cache_key")
        job.timings, job.compiler_cache = result.extra.get("timings"), result.extra.get("compiler_cache")
        job.files = _published_files(jobs, spec, job.build_id, cache_scope(job))


def cache_scope(job: Job) -> str:
    """Each tenant's builds answer only that tenant's: a build is no longer a function of its
    inputs alone once it compiles through the tenant's own compiler cache, which that tenant's
    earlier builds wrote. One tenant's planted cache entries must never reach another's
    artifacts through a shared build record."""
    return f"builds/{job.tenant}"


def _tenant_text(text: str, store_url: str) -> str:
    """A message for the tenant: a file of the project named as in the project
    (/srv/.../work/<job>-x/src/app/xbuild.toml: xbuild.toml), any other server path and the
    store's URL left out."""
    work, text = _work_dir(), text.replace(store_url, "the service's store")  # first: it may hold a path
    for root in {str(work), str(work.resolve())}:  # resolve(): the spec's paths are resolved
        text = re.sub(re.escape(root) + r"/[^/\s]+/src/[^/\s]+/", "", text)
    for server in (str(work), str(work.resolve()), str(settings.state_dir())):
        text = text.replace(server, "<server>")
    return text


def _tenant_hint(hint: str | None, job: Job, work: Path) -> str | None:
    """A hint for the tenant: never a path on the server (the pipeline's "full log: /srv/...").
    Line by line: the lines before it (the missing packages' hints) stay."""
    if not hint:
        return hint
    server = (str(work), str(settings.state_dir()))
    return "\n".join(f"full log: GET /v1/builds/{job.id}/log"
                     if line.startswith("full log:") or any(p in line for p in server) else line
                     for line in hint.splitlines())


def _published_files(jobs: Jobs, spec, build_id: str, scope: str) -> list[dict]:
    """The job's files are the build's record in the store (the cache wrote it)."""
    from xbuild.pipeline import cache
    from xbuild.store import publish
    base = cache.store_base(spec, scope)
    record = publish.read_record(jobs.store, base, build_id)
    if record is None:
        raise StoreError(f"build {build_id} is missing from the store after building")
    return [{**f, "object": f"{base}/{f['object']}"} for f in record["files"]]

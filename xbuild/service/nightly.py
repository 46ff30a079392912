"""Nightly builds: a matrix of projects x boards from nightly.toml, run through the same queue as
every other build, indexed per night in the store.

    schedule = "0 2 * * *"          # cron, UTC
    keep = 14                       # nights kept in the store
    [[project]]
    name = "hello"
    path = "examples/hello-make"    # or: git = "https://...", branch = "main"
    targets = ["rpi3", "rpi0"]     # boards (names or aliases)
    os = "bullseye"                 # optional: the OS release, which every board must run
    static = true                   # optional: fully static executables

Store layout: nightly/<date>/index.json (what was built, from which commit, state, artifacts) and
nightly/latest/<project>/<target> (moved only on success; <target>-<release> for a release that is
not the board's default, so two releases of a board built in one night keep one each). A night is
claimed under a lease and marked by its index, so two schedulers running by mistake do not build it
twice. An unchanged project is a cache hit, not a rebuild."""

from __future__ import annotations

import datetime
import gzip
import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from xbuild import schema
from xbuild.board import targets as tg
from xbuild.errors import ConfigError, UnknownTarget
from xbuild.host.archive import tar_tree
from xbuild.pipeline.spec import OUT_DIRNAME, check
from xbuild.project import gitmeta
from xbuild.project.sources import excluder
from xbuild.request import FIELDS, BuildRequest
from xbuild.schema import Invalid
from xbuild.service.jobs import TERMINAL, Job, Jobs, new_id, now
from xbuild.service.leases import lease

TENANT = "nightly"


@dataclass(frozen=True)
class Project:
    name: str
    # One build request per board of its targets, with the project's other request keys (os,
    # static): what a submit would ask.
    requests: tuple[BuildRequest, ...]
    path: str | None = None
    git: str | None = None
    branch: str | None = None
    pypi: str | None = None  # NAME[==VERSION]: an sdist from the package index (a piwheels of one's own)

    def folder(self, base: Path) -> Path:
        """A path project's folder, or a pypi project's sdist, fetched (once) and unpacked. The
        schema gives each project one source (_one_source): asked of a git project, this is
        xbuild's own mistake."""
        if self.pypi is not None:
            from xbuild.project import pypi
            return pypi.fetch(self.pypi).project
        if self.path is None:
            raise ValueError(f"nightly project {self.name!r} is a git project: it has no folder")
        return (base / self.path).resolve()


@dataclass(frozen=True)
class Config:
    schedule: str
    keep: int
    projects: tuple[Project, ...]
    base: Path


def _is_board(name) -> bool:
    try:
        return isinstance(name, str) and bool(tg.get(name))
    except UnknownTarget:
        return False


def cron(schedule: str):
    """The schedule as Celery's crontab: minute hour day-of-month month day-of-week (UTC)."""
    from celery.schedules import crontab
    minute, hour, dom, month, dow = schedule.split()
    return crontab(minute=minute, hour=hour, day_of_month=dom, month_of_year=month, day_of_week=dow)


def _is_cron(schedule) -> bool:
    try:
        return isinstance(schedule, str) and bool(cron(schedule))
    except (ValueError, TypeError, KeyError):  # 4 or 6 fields, or a field crontab's parser refuses
        return False


def _one_source(p: dict) -> None:
    if sum(k in p for k in ("path", "git", "pypi")) != 1:
        raise Invalid("path", "or 'git' or 'pypi' must be given, and only one of them")
    if "branch" in p and "git" not in p:
        raise Invalid("branch", "is for a git project: a path project builds what its folder holds")


def _boards_run_os(p: dict) -> None:
    for name in p["targets"] if "os" in p else ():
        if p["os"].lower() not in tg.get(name).os:
            raise Invalid("os", f"is {p['os']!r}, which {name} does not run: its releases are "
                                f"{tg.get(name).releases_text()}")


# One line per key of nightly.toml.
PROJECT = schema.Table({
    "name": schema.text("a project name (letters, digits, . _ + -)", schema.NAME, required=True),
    "targets": schema.List(schema.Value(lambda: f"a board ({', '.join(tg.all_targets())})", _is_board),
                           required=True, empty=False),
    "path": schema.text("a folder, relative to nightly.toml"),
    "git": schema.text("a git URL"),
    "pypi": schema.text('an sdist on the package index: NAME or NAME==VERSION, such as "msgpack==1.1.0"'),
    "branch": schema.text("a branch or tag name"),
    "os": schema.text("an OS release name such as bullseye", r"[A-Za-z][A-Za-z0-9.-]*"),
    "static": schema.BOOL,
    "packages": schema.List(schema.text('a Debian package name such as "libyaml-dev"', schema.DEBIAN_PACKAGE)),
}, rules=(_one_source, _boards_run_os))
NIGHTLY = schema.Table({
    "schedule": schema.Value('a cron schedule of five fields (UTC), such as "0 2 * * *"', _is_cron),
    "keep": schema.integer(0, 100000, "the number of nights kept in the store (0: all of them)"),
    "project": schema.Tables(PROJECT),
})


def load(path: str) -> Config:
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"nightly config {path!r} not found", hint="write a nightly.toml (see docs/service.md)")
    data = schema.load(file, NIGHTLY, hint="see docs/service.md (nightly.toml)")
    projects = tuple(_project(p) for p in data.get("project", ()))
    return Config(data.get("schedule", "0 2 * * *"), data.get("keep", 14), projects, file.resolve().parent)


def _project(entry: dict) -> Project:
    """A [[project]] as its build requests (the keys the request has) and where its source is."""
    asked = {k: v for k, v in entry.items() if k in FIELDS and k != "target"}
    requests = tuple(BuildRequest.from_json({**asked, "target": t}, f"nightly project {entry['name']!r}")
                     for t in entry["targets"])
    return Project(requests=requests, **{k: v for k, v in entry.items()
                                         if k not in FIELDS and k != "targets"})


def _commit(project: Project, base: Path) -> str | None:
    try:
        if project.git:
            out = subprocess.run(["git", "ls-remote", project.git, project.branch or "HEAD"],
                                 capture_output=True, text=True, timeout=60).stdout
            return out.split()[0] if out.strip() else None
        # the operator's folder, maybe in a larger checkout; never git on that checkout's config
        return gitmeta.read(gitmeta.checkout_of(project.folder(base))).commit
    except (OSError, subprocess.SubprocessError):
        return None


def _enqueue(jobs: Jobs, project: Project, request: BuildRequest, night: str, base: Path,
             commit: str | None) -> Job:
    from xbuild.service.celery_app import queue_for, submit
    request = check(request)  # the board's own name, the release's
    job = Job(id=new_id(), tenant=TENANT, request=request, project=project.name,
              queue=queue_for(request.target), nightly=night)
    if project.git:
        # Pinned to the commit resolved now: every board of the night builds the same one.
        job.source, job.git_url, job.git_ref = "git", project.git, commit or project.branch
    else:
        root = project.folder(base)
        raw = tar_tree(root, mtime=0, exclude=excluder(root, root / OUT_DIRNAME, OUT_DIRNAME), clamp=False)
        jobs.store.write(f"{job.prefix}/source.tar.gz", gzip.compress(raw, mtime=0))
    jobs.save(job)
    submit(job)
    return job


def run_night(config: Config, *, night: str | None = None, wait: bool = True, timeout: float = 3 * 3600,
              log=print) -> dict:
    night = night or datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
    jobs = Jobs()
    index_key = f"nightly/{night}/index.json"
    claim = lease(f"nightly-{night}")
    if not claim.acquire():
        log(f"night {night} is being built by another scheduler")
        return {"night": night, "status": "claimed-elsewhere", "builds": []}
    try:
        if (existing := jobs.store.read(index_key)) is not None:
            log(f"night {night} already built")
            return json.loads(existing)
        for p in config.projects:  # a release a board does not run: refused before anything is queued
            for r in p.requests:
                check(r)
        commits = {p.name: _commit(p, config.base) for p in config.projects}
        queued = [(p, r.target, commits[p.name], _enqueue(jobs, p, r, night, config.base, commits[p.name]))
                  for p in config.projects for r in p.requests]
        log(f"night {night}: {len(queued)} build(s) queued")
        if not wait:
            return {"night": night, "status": "queued", "builds": [
                {"project": p.name, "target": t, "os": j.request.os, "state": "queued", "job": j.id}
                for p, t, _, j in queued]}
        deadline, told = time.monotonic() + timeout, set[str]()
        while time.monotonic() < deadline:
            # a record removed meanwhile is waited for no longer (the index says it is missing)
            states = [s for *_, j in queued if (s := jobs.get(TENANT, j.id)) is not None]
            if all(s.state in TERMINAL for s in states):
                break
            _tell_unserved(states, told, log)
            time.sleep(2)
        finished = now()  # the waiting's end, before the index is written
        builds: list[dict] = []
        for (p, t, commit, j) in queued:
            job = jobs.get(TENANT, j.id)
            if job is None:
                builds.append({"project": p.name, "target": t, "os": j.request.os, "commit": commit, "job": j.id,
                               "state": "missing", "build_id": None, "cache": None, "files": [],
                               "error": "its record was removed before the night ended"})
                continue
            builds.append({"project": p.name, "target": t, "os": job.request.os,
                           "commit": job.commit or commit, "job": j.id,
                           "state": job.state, "build_id": job.build_id, "error": job.error,
                           "cache": job.cache,
                           "files": job.files, "attestation": _attestation(job.files)})
            if job.state == "succeeded":
                jobs.store.write(f"nightly/latest/{p.name}/{_latest_name(t, job.request.os)}",
                                 json.dumps({"night": night, "build_id": job.build_id}).encode())
        index = {"night": night, "finished": finished, "builds": builds}
        jobs.store.write(index_key, json.dumps(index, indent=2, sort_keys=True).encode())
        _retain(jobs, config.keep)
        return index
    finally:
        claim.release()


def _tell_unserved(waiting: list[Job], told: set[str], log) -> None:
    """Once per queue: builds wait in a queue that no worker serves (they keep waiting)."""
    from xbuild.service.celery_app import waiting_notice
    for job in waiting:
        if job.queue not in told and (notice := waiting_notice(job)):
            told.add(job.queue)
            log(notice)


def _latest_name(target: str, release: str | None) -> str:
    """rpi3 for the board's default release, rpi3-bullseye for another (as the CLI's output dirs)."""
    return target if release in (None, tg.get(target).default_os) else f"{target}-{release}"


def _attestation(files: list[dict]) -> dict:
    """The night's index links each build's SBOMs and provenance (objects of the store)."""
    from xbuild.attest import provenance, sbom
    kinds = {sbom.SPDX_NAME: "spdx", sbom.CYCLONEDX_NAME: "cyclonedx", provenance.SIGNED_NAME: "provenance",
             provenance.UNSIGNED_NAME: "provenance"}
    found = {kinds[f["name"]]: f["object"] for f in files if f["name"] in kinds}
    if "provenance" in found:
        found["signed"] = any(f["name"] == provenance.SIGNED_NAME for f in files)
    return found


def _retain(jobs: Jobs, keep: int) -> None:
    """Keep the last `keep` nights' indexes (artifact objects are shared, content-addressed)."""
    nights = sorted({k.split("/")[1] for k in jobs.store.list("nightly") if k.endswith("/index.json")})
    for old in nights[:-keep] if keep > 0 else []:
        for key in jobs.store.list(f"nightly/{old}"):
            jobs.store.delete(key)


def run_scheduler(config_path: str, log=print) -> None:
    """Sleep until the next scheduled night, run it, repeat; sweep for dead workers meanwhile."""
    import threading

    from xbuild.service import reaper
    config = load(config_path)
    schedule = cron(config.schedule)
    stop = threading.Event()
    threading.Thread(target=reaper.run_forever, args=(stop, log), daemon=True).start()
    last = datetime.datetime.now(datetime.UTC)
    while True:
        wait = schedule.remaining_estimate(last).total_seconds()
        log(f"next night in {wait / 3600:.1f} h ({config.schedule} UTC)")
        time.sleep(max(0.0, wait))
        last = datetime.datetime.now(datetime.UTC)
        run_night(load(config_path), log=log)

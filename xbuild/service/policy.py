"""What a tenant's project may ask of the build service, in one place. The API checks an upload
before it queues it (a 422 the tenant sees at once); the worker checks every job again after its
sources are fetched and resolved (git sources, and anything the API could not see).

The operator's settings:
- XBUILD_SERVICE_PASS_ENV=A,B: the only variables a project's pass_env may name. XBUILD_* and
  AWS_* (the worker's store credentials, the service's own settings) are refused even if listed.
- XBUILD_SERVICE_DOCKERFILE=1: allow Dockerfile projects (off by default).
- XBUILD_SERVICE_ALLOW_PRIVATE_GIT=1: allow git URLs whose host is loopback, link-local, private
  or otherwise not public (off by default: the worker would fetch from inside the farm)."""

from __future__ import annotations

import ipaddress
import re
import socket
import tarfile
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from xbuild import environment
from xbuild.errors import ConfigError, RefusedByService
from xbuild.project import config
from xbuild.service.jobs import Job

_NEVER = ("XBUILD_", "AWS_")  # compared case-insensitively: no look-alike gets through
_SCP_HOST = re.compile(r"[\w.-]+@([\w.-]+):")
MAX_CONFIG_BYTES = 1 << 20


def allowed_pass_env() -> set[str]:
    return set(environment.names("XBUILD_SERVICE_PASS_ENV"))


def never_passed(name: str) -> bool:
    return name.upper().startswith(_NEVER)


def startup_warnings() -> list[str]:
    """What `serve` says about the operator's settings."""
    refused = sorted(n for n in allowed_pass_env() if never_passed(n))
    return [f"XBUILD_SERVICE_PASS_ENV lists {', '.join(refused)}: XBUILD_* and AWS_* variables are "
            "never passed to a service build; those names will be refused"] if refused else []


def check_pass_env(names, table: str) -> None:
    allowed = allowed_pass_env()
    for name in names:
        if never_passed(name):
            raise RefusedByService(
                f"xbuild.toml [{table}]: pass_env names {name!r}; a service build never receives "
                "XBUILD_* or AWS_* variables (the service's own settings and credentials)",
                hint="remove it from pass_env")
        if name not in allowed:
            raise RefusedByService(
                f"xbuild.toml [{table}]: pass_env names {name!r}, which this build service does "
                "not pass (it is not in the operator's XBUILD_SERVICE_PASS_ENV)",
                hint="remove it from pass_env, or ask the operator to add it to XBUILD_SERVICE_PASS_ENV")


def check_project_file(project_file: config.ProjectFile) -> None:
    """pass_env in [build] and in every [target.X], whichever board this job builds for."""
    check_pass_env(project_file.base.get("pass_env", ()), "build")
    for name, table in project_file.per_target.items():
        check_pass_env(table.get("pass_env", ()), f"target.{name}")


def check_dockerfile_allowed() -> None:
    if not environment.flag("XBUILD_SERVICE_DOCKERFILE"):
        raise RefusedByService("Dockerfile projects are off on this build service",
                               hint="build it locally (`xbuild --target T .`), or ask the operator "
                                    "to set XBUILD_SERVICE_DOCKERFILE=1")


def check(spec) -> None:
    """The worker's check of a resolved job (BuildSpec), whatever its source."""
    check_project_file(config.load(spec.project))
    if spec.recipe.kind == "image":
        check_dockerfile_allowed()


class UploadScan:
    """The API's early check of an uploaded project: its xbuild.toml, and whether it can only be
    a Dockerfile project. visit() sees each member as archive.check_upload streams the upload
    past, and keeps only what this check needs (the names below, the xbuild.toml's bytes): an
    upload holds up to XBUILD_MAX_SOURCE_FILES entries, whose headers are not kept. What it
    cannot tell here (a link, a detection by content) the worker checks with check()."""

    def __init__(self) -> None:
        self.decisive = {config.FILENAME, "Dockerfile", *_build_files()}
        self.names: set[str] = set()      # those of self.decisive that the upload holds
        self.config: bytes | None = None  # its xbuild.toml (a link to one: the worker checks it)

    def visit(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        name = member.name.removeprefix("./")
        if name not in self.decisive:
            return
        self.names.add(name)
        if name == config.FILENAME and member.isfile() and (f := tar.extractfile(member)) is not None:
            with f:
                data = f.read(MAX_CONFIG_BYTES + 1)
            if len(data) > MAX_CONFIG_BYTES:
                raise ConfigError(f"{config.FILENAME} is over {MAX_CONFIG_BYTES >> 20} MiB")
            self.config = data

    def check(self) -> None:
        project_file = config.ProjectFile() if self.config is None else _parse(self.config)
        check_project_file(project_file)
        settings = [project_file.base, *project_file.per_target.values()]
        if any(s.get("recipe") == "dockerfile" for s in settings) or (
                "Dockerfile" in self.names and not any("recipe" in s or "steps" in s for s in settings)
                and not self.names & _build_files()):
            check_dockerfile_allowed()


def _parse(data: bytes) -> config.ProjectFile:
    """config.load's checks, on the bytes of an uploaded xbuild.toml (no server path in errors)."""
    with tempfile.TemporaryDirectory(prefix="xbuild-toml-") as tmp:
        (Path(tmp) / config.FILENAME).write_bytes(data)
        try:
            return config.load(Path(tmp))
        except ConfigError as exc:
            raise ConfigError(exc.message.replace(f"{tmp}/", ""), exc.hint) from None


def _build_files() -> set[str]:
    """The top-level files that make a project something other than a Dockerfile project."""
    from xbuild.project.recipes import all_recipes
    return {f for r in all_recipes().values() if r.kind != "image" for rule in r.detect
            for f in rule.looked_for()}


def git_host(url: str) -> str | None:
    if m := _SCP_HOST.match(url):
        return m.group(1)
    try:
        return urlsplit(url).hostname
    except ValueError:  # e.g. an unbalanced [ in the host
        return None


def check_git_job(job: Job) -> str:
    """The worker's check before it fetches; the URL to fetch. A nightly project's URL is the
    operator's own (nightly.toml), which may well be a private host; a tenant's is checked again
    here, as its host may resolve elsewhere now than when the API checked it."""
    if job.git_url is None:  # a record is data: one without its URL is refused, not guessed at
        raise RefusedByService("the job's record names git as its source but gives no git_url",
                               hint="submit the build again")
    if job.nightly is None:
        check_git_url(job.git_url)
    return job.git_url


def check_git_url(url: str) -> None:
    """Refuse a git URL whose host is not public (every address it resolves to), unless allowed:
    the worker must not become a way into the farm's own network (metadata services, Redis, ...)."""
    if environment.flag("XBUILD_SERVICE_ALLOW_PRIVATE_GIT"):
        return
    hint = "use a public git host; the operator allows private ones with XBUILD_SERVICE_ALLOW_PRIVATE_GIT=1"
    host = git_host(url)
    if not host:
        raise RefusedByService(f"git_url {url!r} names no host", hint=hint)
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise RefusedByService(f"git_url's host {host!r} does not resolve ({exc})", hint=hint) from None
    for info in infos:
        addr = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        addr = getattr(addr, "ipv4_mapped", None) or addr
        if not addr.is_global or addr.is_multicast:
            raise RefusedByService(f"git_url's host {host!r} is not a public address ({addr})", hint=hint)

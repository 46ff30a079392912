"""The Python package index, from the host: a project's build requirements (PEP 517/518) read
from its pyproject.toml as data, fetched as wheels for where its build runs, and a project's
sdist (`pypi:NAME==VERSION`) fetched and unpacked to build from.

The build sandbox has no network, so whatever it installs is fetched here, by name and version
only, and checked by hash. Wheels come through pip, the pip of xbuild's own environment with this
machine's pip configuration (an operator's mirror, proxy, certificates), never anything of the
project's, and with --only-binary=:all: so that pip builds nothing. An sdist does not come through
pip: `pip download` of an sdist prepares its metadata, that is, installs its build requirements
and runs its build backend (its setup.py) on the host, --no-deps or not (pypa/pip#1884, open since
2014). It is fetched from the index's JSON page (PEP 691) instead (PIP_INDEX_URL's, as pip
would, else PyPI's), checked against the sha256 the index gives, and unpacked bounded and
link-safe."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import re
import signal
import stat
import subprocess
import sys
import threading
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO
from urllib.parse import urljoin

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from xbuild import schema
from xbuild.errors import BadArtifact, ConfigError, IndexUnreachable, PackageUnavailable, SourceTooLarge, XBuildError
from xbuild.host import archive, downloads, safefs
from xbuild.host.downloads import site as _site
from xbuild.host.paths import cache_dir, component

Log = Callable[[str], None]

PYPROJECT = "pyproject.toml"
# PEP 517/518: a tree without [build-system] (or without pyproject.toml) builds as setup.py did
LEGACY_BACKEND = "setuptools.build_meta:__legacy__"
DEFAULT_REQUIRES = ("setuptools>=40.8.0",)
RUST = frozenset({"maturin", "setuptools-rust"})
# Far above any real project's; every requirement becomes an argument of pip's.
MAX_REQUIRES, MAX_REQUIREMENT = 100, 1000
_BACKEND = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*(:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*)?", re.ASCII)
_ARCHIVE = (".whl", ".zip", ".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tar.xz")
REQUIRES_HINT = ('the build installs only what xbuild fetched before it, from the package index by name '
                 'and version: write "name", "name>=1.0" or "name==1.0; marker"')

PIP_TIMEOUT = 1800   # seconds for one pip run: a large resolution on a slow mirror, short of a hang
HTTP_TIMEOUT = 60    # seconds a socket may wait for the index
MAX_PAGE = 64 << 20  # an index's JSON page (PyPI's largest projects: a few MB)
MAX_LINE, MAX_LINES = 4096, 20_000
DEFAULT_INDEX = "https://pypi.org/simple/"
SDIST_HINT = "pick another version of it (`pypi:NAME==VERSION`), or report the archive to its maintainers"


# --- the build system, read as data -------------------------------------------------------------
@dataclass(frozen=True)
class BuildSystem:
    backend: str                # build-backend, e.g. "setuptools.build_meta"
    requires: tuple[str, ...]   # [build-system] requires as written, after checks (+ "wheel" for setuptools)
    needs_rust: bool            # maturin or setuptools-rust builds it


def requirement(text: object) -> Requirement:
    """text as a requirement fetched by name: NAME[extras] SPECIFIER ; MARKER. A URL (`name @
    https://...`), a path or anything pip would take for a file is a ValueError saying so."""
    shown = f"{text!r:.100}"
    if not isinstance(text, str) or len(text) > MAX_REQUIREMENT:
        raise ValueError(f"{shown} is not a requirement (a string such as \"cython>=3\")")
    try:
        req = Requirement(text)
    except InvalidRequirement:
        raise ValueError(f"{shown} is not a requirement by name and version") from None
    if req.url:
        raise ValueError(f"{shown} names a URL: the build runs offline from what xbuild fetched by "
                         f"name and version (give \"{req.name}\" and a version)")
    if req.name.lower().endswith(_ARCHIVE):  # pip would look for a file of that name
        raise ValueError(f"{shown} names a file, not a project")
    return req


def build_system(project: Path) -> BuildSystem:
    """The project's [build-system], or PEP 517's default for a tree without one."""
    path = project / PYPROJECT
    if not os.path.lexists(path):
        if not os.path.lexists(project / "setup.py"):
            raise ConfigError(f"{project.name} is not a Python project: it has neither {PYPROJECT} nor setup.py",
                              hint="a wheel is built from a project with a pyproject.toml (or a setup.py)")
        return _system(LEGACY_BACKEND, DEFAULT_REQUIRES)
    source, data = schema.parse_toml(path, safefs.read_project_file(path, "the project's pyproject.toml"))
    table = data.get("build-system")
    if table is None:
        return _system(LEGACY_BACKEND, DEFAULT_REQUIRES)

    def fail(key: tuple[str | int, ...], message: str, hint: str = REQUIRES_HINT) -> ConfigError:
        return schema.error(path, source, ("build-system", *key), message, hint)

    if not isinstance(table, dict):
        raise fail((), "build-system must be a table ([build-system])")
    requires = table.get("requires")
    if not isinstance(requires, list):
        raise fail(("requires",), f"[build-system] requires must be a list of requirements (PEP 518), not "
                                  f"{requires!r:.100}")
    if len(requires) > MAX_REQUIRES:
        raise fail(("requires",), f"[build-system] requires lists {len(requires)} requirements: more than "
                                  f"the {MAX_REQUIRES} xbuild fetches")
    for i, text in enumerate(requires):
        try:
            requirement(text)
        except ValueError as exc:
            raise fail(("requires", i), f"[build-system] requires: {exc}") from None
    backend = table.get("build-backend", LEGACY_BACKEND)
    if not (isinstance(backend, str) and len(backend) <= 200 and _BACKEND.fullmatch(backend)):
        raise fail(("build-backend",), f"build-backend must be an object path such as "
                                       f"\"setuptools.build_meta\", not {backend!r:.100}",
                   hint="PEP 517: module.path or module.path:object")
    return _system(backend, tuple(requires))


def _system(backend: str, requires: tuple[str, ...]) -> BuildSystem:
    names = {canonicalize_name(Requirement(r).name) for r in requires}
    module = backend.partition(":")[0].split(".")[0]
    # setuptools before 70.1 builds wheels through the wheel package's bdist_wheel
    if module == "setuptools" and "wheel" not in names:
        requires += ("wheel",)
    return BuildSystem(backend, requires, bool(names & RUST) or module == "maturin")


# --- wheels, through pip -------------------------------------------------------------------------
@dataclass(frozen=True)
class Fetched:
    name: str       # normalized (PEP 503), as parsed from the file name
    version: str
    filename: str   # in the cache directory download() was given
    sha256: str
    size: int

    def to_json(self) -> dict:
        return asdict(self)


def download(requirements: Sequence[str], dest: Path, *, python: str, platforms: Sequence[str],
             log: Log) -> list[Fetched]:
    """The wheels of the requirements and of everything they need, resolved by pip for CPython
    `python` ("3.11") on any of `platforms` (each tag literally: pip does not widen them), kept in
    dest: a wheel already there is not fetched again, once pip has checked it against the index's
    hash. Every wheel of the resolved set is returned, hashed here."""
    version = re.fullmatch(r"3\.(\d{1,2})", python)
    if version is None or not platforms:
        raise ValueError(f"download() needs a Python such as '3.11' and platform tags, not {python!r}, {platforms!r}")
    if importlib.util.find_spec("pip") is None:  # a venv made --without-pip, a pipx install
        raise ConfigError(f"xbuild's Python ({sys.executable}) has no pip, which fetches a Python "
                          "project's build requirements", hint=f"{sys.executable} -m ensurepip")
    reqs = []
    for text in requirements:
        try:
            req = requirement(text)
        except ValueError as exc:
            raise ConfigError(f"a build requirement: {exc}", hint=REQUIRES_HINT) from None
        # pip would evaluate the marker for the host's own Python and machine, not the build's
        if req.marker is not None and not req.marker.evaluate(_environment(python, platforms[0])):
            log(f"not needed for CPython {python} on {platforms[0]}: {text}")
            continue
        req.marker = None
        reqs.append(str(req))
    if not reqs:
        return []
    abi = f"cp3{version[1]}" + ("m" if int(version[1]) < 8 else "")  # pymalloc's "m" before 3.8 (PEP 3149)
    dest.mkdir(parents=True, exist_ok=True)
    with safefs.temp_dir(".pip-", dest) as work:
        # pip fills a directory of its own, which starts as the cache (hard links: same inodes), so
        # that the files it names are the resolved set, and a wheel lands in dest whole or not at all
        stage = work / "wheels"
        stage.mkdir()
        for cached in dest.iterdir():
            if cached.name.endswith(".whl") and safefs.is_regular(cached):
                os.link(cached, stage / cached.name)
        args = ["download", "--only-binary=:all:", "--dest", str(stage), "--python-version", python,
                "--implementation", "cp", "--abi", abi, "--abi", "none", "--abi", "abi3",
                *(arg for tag in platforms for arg in ("--platform", tag)),
                "--disable-pip-version-check", "--no-input", "--progress-bar", "off",
                "--log", str(work / "pip.log"), "--", *reqs]
        status, lines = _pip(args, work, log)
        if status != 0:
            raise _failure(lines, work / "pip.log", python, platforms)
        fetched = _resolved(lines, stage)
        for f in fetched:
            os.replace(stage / f.filename, dest / f.filename)
    return fetched


_MACHINE = re.compile(r"(?:manylinux_\d+_\d+|manylinux\d+|musllinux_\d+_\d+|linux)_(\w+)", re.ASCII)


def _environment(python: str, platform: str) -> dict[str, str]:
    """The PEP 508 marker values of CPython `python` on Linux, its machine read from a platform tag
    (the caller's first: all of them name one machine)."""
    machine = m[1] if (m := _MACHINE.fullmatch(platform)) else platform
    return {"python_version": python, "python_full_version": f"{python}.0", "implementation_name": "cpython",
            "platform_python_implementation": "CPython", "sys_platform": "linux", "os_name": "posix",
            "platform_system": "Linux", "platform_machine": machine}


_FILE_LINE = re.compile(r"\s*(?:Saved|File was already downloaded) (.+)")


def _resolved(lines: list[str], stage: Path) -> list[Fetched]:
    """The wheels pip's output names (saved, or found already there), hashed; checked against
    its closing "Successfully downloaded NAME..." so that a change in pip's wording is an error,
    never a partial set."""
    files = {Path(m[1]).name for line in lines if (m := _FILE_LINE.fullmatch(line))}
    said = {canonicalize_name(n) for line in lines if line.startswith("Successfully downloaded ")
            for n in line.split()[2:]}
    fetched = []
    for filename in sorted(files):
        try:
            name, version, _, _ = parse_wheel_filename(component(filename, "a wheel's file name"))
        except InvalidWheelFilename:
            raise XBuildError(f"pip saved {filename!r}, which is not a wheel") from None
        with safefs.open_read(stage / filename) as f:
            size = os.fstat(f.fileno()).st_size
            fetched.append(Fetched(name, str(version), filename, archive.sha256_of(f), size))
    if {f.name for f in fetched} != said:
        raise XBuildError(f"pip's output named the wheels {sorted(files)} for the projects {sorted(said)}: "
                          "xbuild reads which file is which from it, and this pip words it otherwise")
    return fetched


def _pip(args: list[str], cwd: Path, log: Log) -> tuple[int, list[str]]:
    """xbuild's own pip in cwd (a directory xbuild made: pip takes a name that is a directory
    there for a path), stdin closed, each line of its output to log; its whole session killed
    after PIP_TIMEOUT, or when the caller stops."""
    expired = threading.Event()
    lines: list[str] = []
    with subprocess.Popen([sys.executable, "-m", "pip", *args], cwd=cwd, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
                          start_new_session=True) as proc:
        def kill() -> None:
            expired.set()
            _kill_session(proc)

        timer = threading.Timer(PIP_TIMEOUT, kill)
        timer.start()
        try:
            assert proc.stdout is not None
            for raw in proc.stdout:
                line = raw.rstrip()[:MAX_LINE]
                log(line)
                if len(lines) < MAX_LINES:
                    lines.append(line)
            status = proc.wait()
        finally:
            timer.cancel()
            if proc.poll() is None:  # an exception here (a signal, the log failing): pip goes too
                _kill_session(proc)
    if expired.is_set():
        raise IndexUnreachable(f"pip did not finish within {PIP_TIMEOUT} s: the package index is "
                               "unreachable or too slow")
    return status, lines


def _kill_session(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


_UNFETCHED = re.compile(r"Could not fetch URL (\S+): (.*?)(?: - skipping)?$")


def _unfetched(pip_log: Path) -> list[tuple[str, str]]:
    """(URL, why) of each index page pip could not fetch. pip says little when an index cannot be
    reached (it skips the index, then finds "no matching distribution"); its --log file, always
    at debug level, says "Could not fetch URL ...: <why>": a 404 for a name the index lacks,
    anything else for an index down."""
    found: list[tuple[str, str]] = []
    with contextlib.suppress(OSError), safefs.open_read(pip_log) as f:
        for line in iter(lambda: f.readline(MAX_LINE), b""):
            if (m := _UNFETCHED.search(line.decode(errors="replace").rstrip())) and len(found) < 100:
                found.append((m[1], m[2]))
    return found


def _failure(lines: list[str], pip_log: Path, python: str, platforms: Sequence[str]) -> XBuildError:
    """Why pip failed, as the user should hear it."""
    unfetched = _unfetched(pip_log)
    tail = "\n".join(lines[-12:])
    down = [(url, why) for url, why in unfetched if not why.startswith("404")]
    if down:
        url, why = down[0]
        return IndexUnreachable(f"the package index at {_site(url)} could not be reached: "
                                f"{why[:300]}", detail=tail)
    missing = [text for line in lines if (text := line.partition("No matching distribution found for ")[2])]
    if not missing:
        return PackageUnavailable("pip could not fetch the build requirements (its last lines follow)", detail=tail)
    text = missing[0]
    try:
        name = canonicalize_name(Requirement(text).name)
    except InvalidRequirement:
        name = canonicalize_name(text)
    if any(url.rstrip("/").endswith(f"/{name}") for url, _ in unfetched):
        return PackageUnavailable(f"{text}: the package index has no project of that name",
                                  hint="check the name on the index (https://pypi.org): [build-system] "
                                       "requires names projects there")
    listed = re.compile(rf"requirement {re.escape(text)} .*?\(from versions: (.*)\)")
    versions = [found[1] for line in lines if (found := listed.search(line))]
    seen = f"; versions with wheels that fit: {versions[0][-200:]}" if versions and versions[0] != "none" else ""
    shown = ", ".join(platforms[:3]) + (f" and {len(platforms) - 3} more" if len(platforms) > 3 else "")
    return PackageUnavailable(
        f"{text}: the package index has no wheel of it for CPython {python} on {shown} (only its source, "
        f"or wheels for other Pythons or machines){seen}",
        hint="pin a version of it that publishes such wheels, or vendor it into the project: the build "
             "never builds a requirement from source", detail=tail)


# --- an sdist, from the index's JSON page --------------------------------------------------------
@dataclass(frozen=True)
class Sdist:
    name: str
    version: str
    filename: str
    sha256: str
    project: Path   # the unpacked source tree: the sdist's one top-level folder, in xbuild's cache

    def to_json(self) -> dict:
        return {**asdict(self), "project": str(self.project)}

    @property
    def label(self) -> str:
        """NAME-VERSION: the folder its builds' outputs go in, under the caller's directory."""
        return f"{self.name}-{self.version}"


_SPEC = re.compile(r"(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._-]{0,200}[A-Za-z0-9])?)(?:==(?P<version>[^\s=;@]{1,100}))?",
                   re.ASCII)


def parse_spec(spec: str) -> tuple[str, Version | None]:
    """`NAME` or `NAME==VERSION` (what follows `pypi:`): the normalized name and the version."""
    m = _SPEC.fullmatch(spec)
    try:
        if m is not None:
            return canonicalize_name(m["name"]), Version(m["version"]) if m["version"] else None
    except InvalidVersion:
        pass
    raise ConfigError(f"pypi:{spec[:100]} is not a project on the package index by name, or name and version",
                      hint="give pypi:NAME or pypi:NAME==VERSION, e.g. pypi:msgpack==1.1.0 (no other "
                           "specifier, extras or URL)")


def fetch(spec: str, log: Log = lambda line: None) -> Sdist:
    """pypi:SPEC's sdist, in xbuild's own cache of them: what the command line, the submit client
    and nightly all fetch."""
    return fetch_sdist(spec, cache_dir("python", "sdists"), log)


def fetch_sdist(spec: str, cache: Path, log: Log) -> Sdist:
    """The sdist `spec` names (the newest final release when no version is given), unpacked into
    cache/<name>-<version>-<sha256[:12]>/ (reused on the next call), checked against the sha256
    the index gives for it."""
    name, version = parse_spec(spec)
    page = urljoin(os.environ.get("PIP_INDEX_URL", DEFAULT_INDEX).rstrip("/") + "/", f"{name}/")
    chosen, filename, url, sha256 = _pick(_index_page(page, name), page, name, version, spec)
    entry = cache / component(f"{name}-{chosen}-{sha256[:12]}".replace("!", "_"), "an sdist's cache entry")
    if not safefs.is_directory(entry):
        log(f"fetching {filename} from {_site(url)}")
        cache.mkdir(parents=True, exist_ok=True)
        # unpacked beside the entry and renamed into place: an entry is whole, or absent
        with safefs.temp_dir(".sdist-", cache) as tmp:
            tree = tmp / "tree"
            tree.mkdir()
            suffix = ".zip" if filename.endswith(".zip") else ".tar.gz"
            with open(tmp / f"sdist{suffix}", "xb") as f:
                got = _get(url, f, archive.max_source(), f"the sdist {filename}", SourceTooLarge)
            if got is None:
                raise IndexUnreachable(f"{filename} is listed by the package index but {_site(url)} has no such file")
            if got != sha256:
                raise IndexUnreachable(f"{filename} from {_site(url)} has sha256 {got}, not the {sha256} the "
                                       "index gives: a broken download or a tampered mirror")
            _unpack(tmp / f"sdist{suffix}", tree, f"the sdist {filename}")
            _top(tree, filename)
            try:
                os.rename(tree, entry)
            except OSError:
                if not safefs.is_directory(entry):  # else another xbuild made it meanwhile, from the same file
                    raise
    else:
        log(f"using {filename}, unpacked before in {entry}")
    return Sdist(name, str(chosen), filename, sha256, entry / _top(entry, filename))


def _get(url: str, sink: BinaryIO, limit: int, what: str, error: type[XBuildError] = IndexUnreachable,
         accept: str | None = None) -> str | None:
    """url's body into sink, at most `limit` bytes, within PIP_TIMEOUT; its sha256, or None for a
    404. Any other failure to fetch it is IndexUnreachable."""
    try:
        return downloads.get(url, sink, limit=limit, seconds=PIP_TIMEOUT, timeout=HTTP_TIMEOUT, accept=accept)
    except downloads.NotFound:
        return None
    except downloads.WrongType as exc:
        raise IndexUnreachable(f"the package index at {_site(url)} does not answer in PEP 691 JSON ({exc})",
                               hint="set PIP_INDEX_URL to an index that does (PyPI, devpi, pypiserver)") from None
    except downloads.TooLarge:
        raise archive.too_large(error, what, limit) from None
    except downloads.TooSlow:
        raise IndexUnreachable(f"{what} did not arrive within {PIP_TIMEOUT} s") from None
    except downloads.Unreachable as exc:
        raise IndexUnreachable(f"the package index at {_site(url)} could not be reached: {exc}") from None


def _index_page(page: str, name: str) -> dict:
    body = io.BytesIO()
    what = f"the package index's page for {name} on {_site(page)}"
    if _get(page, body, MAX_PAGE, what, accept="application/vnd.pypi.simple.v1+json") is None:
        raise PackageUnavailable(f"the package index at {_site(page)} has no project named {name}",
                                 hint="check the name on the index (https://pypi.org)")
    try:
        data = schema.json_value(body.getvalue())
    except ValueError:
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("files"), list):
        raise IndexUnreachable(f"{what} is not a PEP 691 project page")
    return data


def _pick(data: dict, page: str, name: str, version: Version | None, spec: str) -> tuple[Version, str, str, str]:
    """(version, filename, url, sha256) of the sdist to fetch: the pinned version's, else the
    newest final release's (a prerelease when there is none); a .tar.gz before a .zip. Only a
    file the index gives a sha256 for, and a yanked one only when pinned (PEP 592)."""
    found = []
    for f in data["files"]:
        if not isinstance(f, dict) or not isinstance(f.get("filename"), str) or not isinstance(f.get("url"), str):
            continue
        sha256 = f.get("hashes", {}).get("sha256") if isinstance(f.get("hashes"), dict) else None
        try:
            project, v = parse_sdist_filename(f["filename"])
        except (InvalidSdistFilename, InvalidVersion):
            continue  # a wheel, an egg, an .exe, a malformed name
        if (project == name and isinstance(sha256, str) and re.fullmatch(r"[0-9a-f]{64}", sha256)
                and (v == version if version else not f.get("yanked"))):
            found.append((v, f["filename"].endswith(".tar.gz"), f["filename"], urljoin(page, f["url"]), sha256))
    if not found:
        raise PackageUnavailable(f"the package index has no source distribution (sdist) of {spec}",
                                 hint="check the version on the index; a project that publishes only "
                                      "wheels cannot be built from pypi:")
    finals = [c for c in found if not c[0].is_prerelease] or found
    v, _, filename, url, sha256 = max(finals, key=lambda c: (c[0], c[1]))
    return v, filename, url, sha256


def _unpack(path: Path, tree: Path, where: str) -> None:
    """An sdist into tree, everything checked before anything is written: no absolute path, no
    `..`, no link out of the tree (a zip: no link at all), no device, at most XBUILD_MAX_SOURCE_MB
    and XBUILD_MAX_SOURCE_FILES."""
    limit, most = archive.max_source(), archive.max_source_files()
    try:
        if path.name.endswith(".zip"):
            _unzip(path, tree, where, limit, most)
        else:
            archive.check(path, where, limit, SourceTooLarge, files=most)  # its own error for the size
            archive.extract(path, tree, where, limit=limit, files=most)
    except BadArtifact as exc:  # its hint speaks of xbuild's own archives
        raise BadArtifact(exc.message, hint=SDIST_HINT) from None


def _unzip(path: Path, tree: Path, where: str, limit: int, most: int) -> None:
    try:
        with zipfile.ZipFile(path) as zf:
            members = zf.infolist()
            if len(members) > most:
                raise archive.too_many(where, most)
            # a member's declared size bounds what zipfile reads of it (and its CRC is checked)
            if sum(m.file_size for m in members) > limit:
                raise archive.too_large(SourceTooLarge, where, limit)
            for m in members:
                _check_zip_member(m, where)
            for m in members:
                target = tree.joinpath(*PurePosixPath(m.filename).parts)
                if m.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                # "x": a second member of the same name is refused, never written over the first
                with zf.open(m) as src, open(target, "xb") as out:
                    for chunk in iter(lambda: src.read(1 << 20), b""):
                        out.write(chunk)
                target.chmod(0o755 if (m.external_attr >> 16) & 0o111 else 0o644)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, RuntimeError, NotImplementedError) as exc:
        raise BadArtifact(f"{where}: not an archive xbuild can unpack ({exc})") from None


def _check_zip_member(m: zipfile.ZipInfo, where: str) -> None:
    name, parts = m.filename, PurePosixPath(m.filename).parts
    if not parts or name.startswith("/") or "\\" in name or ".." in parts or ":" in parts[0]:
        raise BadArtifact(f"{where}: unsafe path {name[:200]!r} in the archive")
    kind = stat.S_IFMT(m.external_attr >> 16)
    if m.create_system == 3 and kind not in (0, stat.S_IFREG, stat.S_IFDIR):  # 3: Unix, with a file type
        raise BadArtifact(f"{where}: {name[:200]!r} is a link or a special file: an sdist's zip holds none")
    if m.flag_bits & 0x1:
        raise BadArtifact(f"{where}: {name[:200]!r} is encrypted")


def _top(tree: Path, filename: str) -> str:
    """The one folder an sdist unpacks into (NAME-VERSION/), else BadArtifact."""
    found = os.listdir(tree)
    if len(found) != 1 or not safefs.is_directory(tree / found[0]):
        raise BadArtifact(f"the sdist {filename} does not unpack into one folder (it holds "
                          f"{', '.join(sorted(found)[:5]) or 'nothing'})", hint=SDIST_HINT)
    return found[0]

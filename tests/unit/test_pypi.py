"""project/pypi.py without the internet: build_system on many pyproject shapes (hostile ones
too), the `pypi:` spec's grammar, and download() and fetch_sdist() against a package index of the
test's own on 127.0.0.1 (PEP 691 JSON pages, which pip reads too), serving wheels made by
tests/wheelmaker.py and sdists built here: hostile archives are refused and leave nothing in the
cache, the cache is reused, a broken cached wheel is fetched again, and each failure is the
error a user can act on."""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from packaging.version import Version

from tests.helpers import make_project
from tests.wheelmaker import make_wheel
from xbuild.errors import (
    BadArtifact,
    ConfigError,
    IndexUnreachable,
    PackageUnavailable,
    SourceTooLarge,
    TooManyFiles,
    UnsafeProjectFile,
)
from xbuild.project import pypi
from xbuild.project.pypi import BuildSystem, build_system, download, fetch_sdist, parse_spec

X86 = ["manylinux_2_36_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64", "linux_x86_64"]


# --- build_system ------------------------------------------------------------------------------
def system(tmp_path: Path, pyproject: str | None, **files: str) -> BuildSystem:
    extra = {name.replace("_", "."): text for name, text in files.items()}
    make_project(tmp_path / "p", {**({"pyproject.toml": pyproject} if pyproject is not None else {}), **extra})
    return build_system(tmp_path / "p")


def test_a_setup_py_project_builds_with_the_legacy_backend(tmp_path):
    assert system(tmp_path, None, setup_py="from setuptools import setup\nsetup()\n") == BuildSystem(
        "setuptools.build_meta:__legacy__", ("setuptools>=40.8.0", "wheel"), False)


def test_a_pyproject_without_build_system_gets_pep_517s_default(tmp_path):
    got = system(tmp_path, '[project]\nname = "x"\nversion = "1"\n')
    assert got == BuildSystem("setuptools.build_meta:__legacy__", ("setuptools>=40.8.0", "wheel"), False)


def test_requires_without_a_backend_is_the_legacy_backend(tmp_path):
    got = system(tmp_path, '[build-system]\nrequires = ["setuptools>=61", "Cython"]\n')
    assert got == BuildSystem("setuptools.build_meta:__legacy__", ("setuptools>=61", "Cython", "wheel"), False)


def test_requires_as_written_wheel_added_once_for_setuptools_only(tmp_path):
    setuptools = ('[build-system]\nrequires = ["setuptools_scm[toml]>=6.2", "Wheel>=0.40", '
                  '"oldest-supported-numpy; python_version<\'3.9\'"]\nbuild-backend = "setuptools.build_meta"\n')
    assert system(tmp_path / "a", setuptools).requires == (
        "setuptools_scm[toml]>=6.2", "Wheel>=0.40", "oldest-supported-numpy; python_version<'3.9'")
    hatch = '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'
    assert system(tmp_path / "b", hatch) == BuildSystem("hatchling.build", ("hatchling",), False)


@pytest.mark.parametrize("requires,backend", [
    ('["maturin>=1,<2"]', "maturin"),
    ('["setuptools", "setuptools_rust"]', "setuptools.build_meta"),
    ('["setuptools", "setuptools-rust>=1.5"]', "setuptools.build_meta"),
    ('["puccinialin"]', "maturin"),
])
def test_rust_is_seen_in_requires_or_backend(tmp_path, requires, backend):
    got = system(tmp_path, f'[build-system]\nrequires = {requires}\nbuild-backend = "{backend}"\n')
    assert got.needs_rust


def test_a_tree_with_neither_file_is_not_a_python_project(tmp_path):
    with pytest.raises(ConfigError, match="neither pyproject.toml nor setup.py") as e:
        system(tmp_path, None, Makefile="all:\n")
    assert e.value.hint


HOSTILE = {
    "url": ('[build-system]\nrequires = ["setuptools", "evil @ https://example.com/evil-1.0.tar.gz"]\n',
            r"line 2\).*'evil @ https://example.com/evil-1.0.tar.gz' names a URL"),
    "file url": ('[build-system]\nrequires = ["evil @ file:///etc/passwd"]\n', "names a URL"),
    "path": ('[build-system]\nrequires = ["./vendor/evil"]\n', "'./vendor/evil' is not a requirement"),
    "option": ('[build-system]\nrequires = ["--index-url=http://evil.example/simple"]\n', "is not a requirement"),
    "requirements file": ('[build-system]\nrequires = ["-r /etc/passwd"]\n', "is not a requirement"),
    "archive name": ('[build-system]\nrequires = ["evil.whl"]\n', "names a file"),
    "not a list": ('[build-system]\nrequires = "setuptools"\n', "must be a list"),
    "not strings": ('[build-system]\nrequires = [1, {a = 2}]\n', "1 is not a requirement"),
    "no requires": ('[build-system]\nbuild-backend = "setuptools.build_meta"\n', "must be a list"),
    "not a table": ("build-system = 3\n", "must be a table"),
    "bad marker": ('[build-system]\nrequires = ["x; os_name === 1"]\n', "is not a requirement"),
    "too many": ("[build-system]\nrequires = [" + ", ".join(f'"p{i}"' for i in range(101)) + "]\n",
                 "more than the 100"),
    "huge": ('[build-system]\nrequires = ["' + "x" * 5000 + '"]\n', "is not a requirement"),
    "backend path": ('[build-system]\nrequires = []\nbuild-backend = "../../evil"\n', "must be an object path"),
    "backend shell": ('[build-system]\nrequires = []\nbuild-backend = "x; rm -rf ~"\n', "must be an object path"),
    "backend type": ('[build-system]\nrequires = []\nbuild-backend = ["setuptools"]\n', "must be an object path"),
    "syntax": ("[build-system\nrequires = []\n", "not valid TOML"),
    "nested": ("a = " + "[" * 5000 + "\n", "nested too deeply"),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_a_hostile_pyproject_is_a_config_error_naming_the_file(tmp_path, case):
    text, message = HOSTILE[case]
    with pytest.raises(ConfigError, match=message) as e:
        system(tmp_path, text)
    assert "pyproject.toml" in e.value.message and e.value.hint


def test_a_pyproject_that_is_not_utf8_is_a_config_error(tmp_path):
    (tmp_path / "pyproject.toml").write_bytes(b"[build-system]\nrequires = ['\xff']\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        build_system(tmp_path)


def test_a_pyproject_that_is_a_link_a_fifo_or_huge_is_never_read(tmp_path):
    secret = tmp_path / "secret.toml"
    secret.write_text('[build-system]\nrequires = ["leaked"]\n')
    for name, make in {"link": lambda p: p.symlink_to(secret), "fifo": os.mkfifo,
                       "huge": lambda p: p.write_text("#" * (2 << 20))}.items():
        project = tmp_path / name
        project.mkdir()
        make(project / "pyproject.toml")
        with pytest.raises(UnsafeProjectFile, match="pyproject.toml"):
            build_system(project)


# --- the pypi: spec ----------------------------------------------------------------------------
@pytest.mark.parametrize("spec,expected", [
    ("msgpack", ("msgpack", None)),
    ("PyYAML==6.0.2", ("pyyaml", Version("6.0.2"))),
    ("zope.interface==5.0", ("zope-interface", Version("5.0"))),
    ("a==1.0.post1", ("a", Version("1.0.post1"))),
])
def test_spec_is_a_name_or_a_name_and_version(spec, expected):
    assert parse_spec(spec) == expected


@pytest.mark.parametrize("spec", ["msgpack>=1", "msgpack[cli]", "msgpack[cli]==1.0", "https://x.example/m.tar.gz",
                                  "msgpack==", "msgpack==1.*", "", "-r x", "../x", "msgpack ==1", "msgpack==1 ",
                                  "m==1.0;os_name=='nt'", "m @ https://x.example/m.tgz", "a" * 300, "-msgpack",
                                  "msgpack===1.0", "msgpack~=1.0"])
def test_any_other_spec_is_a_config_error_showing_the_form(spec):
    with pytest.raises(ConfigError) as e:
        parse_spec(spec)
    assert "pypi:NAME==VERSION" in (e.value.hint or "")


# --- a package index of the test's own -----------------------------------------------------------
@dataclass
class Index:
    url: str
    routes: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    seen: list[str] = field(default_factory=list)
    files: dict[str, list[dict]] = field(default_factory=dict)

    def add(self, project: str, filename: str, data: bytes, sha256: str | None = None, **extra) -> None:
        """A file of `project`, listed on its PEP 691 page (with the sha256 given, else its own)."""
        self.routes[f"/files/{filename}"] = ("application/octet-stream", data)
        entry = {"filename": filename, "url": f"../../files/{filename}",
                 "hashes": {"sha256": sha256 or hashlib.sha256(data).hexdigest()}, **extra}
        self.files.setdefault(project, []).append(entry)
        page = {"meta": {"api-version": "1.0"}, "name": project, "files": self.files[project]}
        self.routes[f"/simple/{project}/"] = ("application/vnd.pypi.simple.v1+json", json.dumps(page).encode())

    def add_wheel(self, path: Path) -> None:
        self.add(path.name.split("-")[0].lower().replace("_", "-"), path.name, path.read_bytes())

    def fetched(self) -> list[str]:
        return [p for p in self.seen if p.startswith("/files/")]


@pytest.fixture
def index(monkeypatch) -> Iterator[Index]:
    """The index pip and fetch_sdist see, alone: none of this machine's pip configuration, cache or
    retries."""
    idx = Index("")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            idx.seen.append(self.path)
            if self.path not in idx.routes:
                self.send_error(404)
                return
            ctype, body = idx.routes[self.path]
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    idx.url = f"http://127.0.0.1:{server.server_port}"
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", f"{idx.url}/simple/")
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    monkeypatch.setenv("PIP_RETRIES", "0")
    for var in ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PIP_CONSTRAINT"):
        monkeypatch.delenv(var, raising=False)
    yield idx
    server.shutdown()
    server.server_close()


# --- download ----------------------------------------------------------------------------------
def run(requirements, dest, platforms=X86) -> tuple[list[pypi.Fetched], list[str]]:
    lines: list[str] = []
    return download(requirements, dest, python="3.11", platforms=platforms, log=lines.append), lines


def test_download_resolves_dependencies_into_hashed_wheels(index, tmp_path):
    alpha = make_wheel(tmp_path / "w", "alpha", "1.0", "cp311-cp311-manylinux_2_17_x86_64",
                       metadata_extra="Requires-Dist: beta>=2\n")
    beta = make_wheel(tmp_path / "w", "beta", "2.0", "py3-none-any")
    for wheel in (alpha, beta, make_wheel(tmp_path / "w", "beta", "1.0", "py3-none-any")):
        index.add_wheel(wheel)
    cache = tmp_path / "cache"
    got, lines = run(["alpha"], cache)
    assert [(f.name, f.version, f.filename) for f in got] == [("alpha", "1.0", alpha.name), ("beta", "2.0", beta.name)]
    for f, wheel in zip(got, (alpha, beta), strict=True):
        assert f.sha256 == hashlib.sha256(wheel.read_bytes()).hexdigest() == hashlib.sha256(
            (cache / f.filename).read_bytes()).hexdigest()
        assert f.size == wheel.stat().st_size and f.to_json()["sha256"] == f.sha256
    assert sorted(p.name for p in cache.iterdir()) == [alpha.name, beta.name]  # no staging left behind
    assert any("Successfully downloaded" in line for line in lines)


def test_a_second_download_fetches_nothing_and_a_broken_cached_wheel_is_fetched_again(index, tmp_path):
    wheel = make_wheel(tmp_path / "w", "alpha", "1.0", "py3-none-any")
    index.add_wheel(wheel)
    first, _ = run(["alpha==1.0"], tmp_path / "cache")
    inode = (tmp_path / "cache" / wheel.name).stat().st_ino
    index.seen.clear()
    assert run(["alpha==1.0"], tmp_path / "cache")[0] == first
    assert index.fetched() == [] and (tmp_path / "cache" / wheel.name).stat().st_ino == inode
    (tmp_path / "cache" / wheel.name).write_bytes(b"not the wheel")  # pip checks it against the index's hash
    assert run(["alpha==1.0"], tmp_path / "cache")[0] == first
    assert index.fetched() == [f"/files/{wheel.name}"]
    assert (tmp_path / "cache" / wheel.name).read_bytes() == wheel.read_bytes()


def test_a_name_the_index_lacks_is_named(index, tmp_path):
    with pytest.raises(PackageUnavailable, match="no-such-thing: the package index has no project of that name"):
        run(["no-such-thing"], tmp_path / "cache")


def test_a_requirement_with_only_an_sdist_or_other_machines_wheels_says_what_to_do(index, tmp_path):
    index.add("srconly", "srconly-1.0.tar.gz", b"source")
    index.add_wheel(make_wheel(tmp_path / "w", "armonly", "1.0", "cp311-cp311-manylinux_2_17_aarch64"))
    for name in ("srconly", "armonly>=1"):
        with pytest.raises(PackageUnavailable, match=f"{name}: the package index has no wheel of it for "
                                                     "CPython 3.11 on manylinux_2_36_x86_64") as e:
            run([name], tmp_path / "cache")
        assert "pin a version" in (e.value.hint or "")


def test_a_missing_dependency_is_named_and_the_versions_that_fit_are_listed(index, tmp_path):
    needs = "Requires-Dist: beta>=2\n"
    index.add_wheel(make_wheel(tmp_path / "w", "alpha", "1.0", "py3-none-any", metadata_extra=needs))
    index.add_wheel(make_wheel(tmp_path / "w", "beta", "1.5", "py3-none-any"))
    with pytest.raises(PackageUnavailable, match=r"beta>=2: .*versions with wheels that fit: 1\.5"):
        run(["alpha"], tmp_path / "cache")


def test_an_unreachable_index_says_so_without_its_credentials(monkeypatch, tmp_path):
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", "http://ci:s3cret@127.0.0.1:9/simple/")  # discard: nothing listens
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    lines: list[str] = []
    with pytest.raises(IndexUnreachable, match="127.0.0.1:9 could not be reached") as pip:
        download(["setuptools"], tmp_path / "cache", python="3.11", platforms=X86, log=lines.append)
    with pytest.raises(IndexUnreachable, match="127.0.0.1:9 could not be reached") as own:
        fetch_sdist("msgpack==1.1.0", tmp_path / "sdists", lines.append)
    for e in (pip.value, own.value):
        assert "s3cret" not in f"{e.message} {e.detail} {' '.join(lines)}" and e.hint


def test_an_index_without_pep_691_or_without_the_file_it_lists_is_the_indexs_failure(index, tmp_path):
    index.add("demo", "demo-1.0.tar.gz", targz(SOURCE))
    del index.routes["/files/demo-1.0.tar.gz"]
    with pytest.raises(IndexUnreachable, match="listed by the package index but 127.0.0.1:[0-9]+ has no such file"):
        fetch_sdist("demo==1.0", tmp_path / "sdists", lambda _: None)
    index.routes["/simple/demo/"] = ("text/html", b"<a href='../../files/demo-1.0.tar.gz'>demo-1.0.tar.gz</a>")
    with pytest.raises(IndexUnreachable, match="does not answer in PEP 691 JSON") as e:
        fetch_sdist("demo==1.0", tmp_path / "sdists", lambda _: None)
    assert "PIP_INDEX_URL" in (e.value.hint or "")


def test_a_url_or_path_requirement_never_reaches_pip(index, tmp_path):
    for bad in ("evil @ https://evil.example/evil.whl", "./evil", "--index-url=http://evil.example"):
        with pytest.raises(ConfigError):
            run([bad], tmp_path / "cache")
    assert index.seen == []


# --- fetch_sdist -------------------------------------------------------------------------------
def targz(members: dict[str, bytes | tarfile.TarInfo]) -> bytes:
    """A .tar.gz of files (bytes) and special members (a TarInfo: links, devices)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            if isinstance(data, tarfile.TarInfo):
                data.name = name
                tar.addfile(data)
                continue
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755 if name.endswith(".sh") else 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def zipped(members: dict[str, bytes | zipfile.ZipInfo]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            if isinstance(data, zipfile.ZipInfo):
                data.filename = name
                z.writestr(data, b"")
            else:
                info = zipfile.ZipInfo(name)
                info.external_attr = ((0o755 if name.endswith(".sh") else 0o644) | stat.S_IFREG) << 16
                z.writestr(info, data, zipfile.ZIP_DEFLATED)
    return buf.getvalue()


def special(kind: bytes, target: str = "", mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo()
    info.type, info.linkname, info.mode = kind, target, mode
    return info


def zip_link(target_mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo("x")
    info.create_system, info.external_attr = 3, target_mode << 16
    return info


SOURCE = {"demo-1.0/pyproject.toml": b'[build-system]\nrequires = ["setuptools"]\n',
          "demo-1.0/setup.py": b"from setuptools import setup\nsetup()\n", "demo-1.0/run.sh": b"#!/bin/sh\n"}


@pytest.mark.parametrize("suffix,pack", [(".tar.gz", targz), (".zip", zipped)])
def test_an_sdist_is_unpacked_once_into_its_folder_and_reused(index, tmp_path, suffix, pack):
    data = pack(SOURCE)
    index.add("demo", f"demo-1.0{suffix}", data)
    got = fetch_sdist("Demo==1.0", tmp_path / "sdists", lambda _: None)
    sha = hashlib.sha256(data).hexdigest()
    assert (got.name, got.version, got.filename, got.sha256) == ("demo", "1.0", f"demo-1.0{suffix}", sha)
    assert got.project == tmp_path / "sdists" / f"demo-1.0-{sha[:12]}" / "demo-1.0"
    assert sorted(p.name for p in got.project.iterdir()) == ["pyproject.toml", "run.sh", "setup.py"]
    assert os.access(got.project / "run.sh", os.X_OK) and not os.access(got.project / "setup.py", os.X_OK)
    assert got.to_json()["project"] == str(got.project)
    assert sorted(os.listdir(tmp_path / "sdists")) == [f"demo-1.0-{sha[:12]}"]  # no temp dir left
    index.seen.clear()
    assert fetch_sdist("demo==1.0", tmp_path / "sdists", lambda _: None) == got
    assert index.seen == ["/simple/demo/"]


def test_without_a_version_the_newest_final_release_not_yanked_is_fetched(index, tmp_path):
    for version, extra in (("1.0", {}), ("2.0", {}), ("2.5", {"yanked": "broken"}), ("3.0rc1", {})):
        index.add("demo", f"demo-{version}.tar.gz", targz({f"demo-{version}/setup.py": b""}), **extra)
    index.add("demo", "demo-2.0.zip", zipped({"demo-2.0/setup.py": b""}))
    index.add_wheel(make_wheel(tmp_path / "w", "demo", "4.0", "py3-none-any"))
    got = fetch_sdist("demo", tmp_path / "sdists", lambda _: None)
    assert (got.version, got.filename) == ("2.0", "demo-2.0.tar.gz")
    assert fetch_sdist("demo==2.5", tmp_path / "sdists", lambda _: None).version == "2.5"  # pinned: PEP 592


def test_a_missing_project_version_or_sdist_is_package_unavailable(index, tmp_path):
    index.add_wheel(make_wheel(tmp_path / "w", "wheelonly", "1.0", "py3-none-any"))
    index.add("demo", "demo-1.0.tar.gz", targz({"demo-1.0/setup.py": b""}))
    for spec, message in (("nothing", "no project named nothing"), ("wheelonly", "no source distribution"),
                          ("demo==9", "no source distribution")):
        with pytest.raises(PackageUnavailable, match=message):
            fetch_sdist(spec, tmp_path / "sdists", lambda _: None)


def test_an_sdist_that_does_not_match_the_index_hash_is_refused_and_not_kept(index, tmp_path):
    index.add("demo", "demo-1.0.tar.gz", targz(SOURCE), sha256="0" * 64)
    with pytest.raises(IndexUnreachable, match="not the 0000"):
        fetch_sdist("demo==1.0", tmp_path / "sdists", lambda _: None)
    assert os.listdir(tmp_path / "sdists") == []


HOSTILE_TARS = {
    "dotdot": {"demo-1.0/setup.py": b"", "demo-1.0/../../evil": b"x"},
    "absolute": {"/tmp/evil": b"x"},
    "symlink out": {"demo-1.0/setup.py": b"", "demo-1.0/passwd": special(tarfile.SYMTYPE, "/etc/passwd")},
    "symlink up": {"demo-1.0/setup.py": b"", "demo-1.0/up": special(tarfile.SYMTYPE, "../..")},
    "hardlink out": {"demo-1.0/setup.py": b"", "demo-1.0/passwd": special(tarfile.LNKTYPE, "/etc/passwd")},
    "device": {"demo-1.0/setup.py": b"", "demo-1.0/tty": special(tarfile.CHRTYPE)},
    "fifo": {"demo-1.0/setup.py": b"", "demo-1.0/fifo": special(tarfile.FIFOTYPE)},
    "two folders": {"demo-1.0/setup.py": b"", "other/setup.py": b""},
    "no folder": {"setup.py": b""},
}
HOSTILE_ZIPS = {
    "dotdot": {"demo-1.0/setup.py": b"", "demo-1.0/../../evil": b"x"},
    "absolute": {"/tmp/evil": b"x"},
    "backslash": {"demo-1.0\\..\\..\\evil": b"x"},
    "drive": {"C:/evil": b"x"},
    "symlink": {"demo-1.0/setup.py": b"", "demo-1.0/passwd": zip_link(stat.S_IFLNK | 0o777)},
    "fifo": {"demo-1.0/setup.py": b"", "demo-1.0/fifo": zip_link(stat.S_IFIFO | 0o644)},
    "two folders": {"demo-1.0/setup.py": b"", "other/setup.py": b""},
}


def _hostile(index, tmp_path, suffix, data, error=BadArtifact):
    index.add("demo", f"demo-1.0{suffix}", data)
    with pytest.raises(error) as e:
        fetch_sdist("demo==1.0", tmp_path / "sdists", lambda _: None)
    assert os.listdir(tmp_path / "sdists") == []  # nothing half-made that a later build would trust
    assert not (tmp_path / "evil").exists() and e.value.hint
    return e.value


@pytest.mark.parametrize("case", HOSTILE_TARS)
def test_a_hostile_tar_sdist_is_refused_and_leaves_nothing(index, tmp_path, case):
    _hostile(index, tmp_path, ".tar.gz", targz(HOSTILE_TARS[case]))


@pytest.mark.parametrize("case", HOSTILE_ZIPS)
def test_a_hostile_zip_sdist_is_refused_and_leaves_nothing(index, tmp_path, case):
    _hostile(index, tmp_path, ".zip", zipped(HOSTILE_ZIPS[case]))


def test_a_zip_member_given_twice_is_refused(index, tmp_path):
    buf = io.BytesIO(zipped({"demo-1.0/setup.py": b""}))
    with pytest.warns(UserWarning, match="Duplicate name"), zipfile.ZipFile(buf, "a") as z:
        z.writestr("demo-1.0/setup.py", b"written over the first")
    _hostile(index, tmp_path, ".zip", buf.getvalue())


def test_an_encrypted_zip_member_is_refused(index, tmp_path):
    data = bytearray(zipped({"demo-1.0/setup.py": b"secret"}))
    data[6] |= 0x1  # the "encrypted" flag of the local header (zipfile writes none) ...
    data[data.index(b"PK\x01\x02") + 8] |= 0x1  # ... and of the central directory's entry
    _hostile(index, tmp_path, ".zip", bytes(data))


@pytest.mark.parametrize("suffix,pack", [(".tar.gz", targz), (".zip", zipped)])
def test_bombs_are_bounded_by_size_and_by_entries(index, tmp_path, monkeypatch, suffix, pack):
    monkeypatch.setenv("XBUILD_MAX_SOURCE_MB", "1")
    monkeypatch.setenv("XBUILD_MAX_SOURCE_FILES", "50")
    _hostile(index, tmp_path / "big", suffix, pack({"demo-1.0/zeros": b"\0" * (3 << 20)}), SourceTooLarge)
    index.files.clear()
    many = pack({f"demo-1.0/f{i}": b"" for i in range(200)})
    _hostile(index, tmp_path / "many", suffix, many, TooManyFiles)


def test_markers_hold_for_the_builds_python_and_machine_not_the_hosts(index, tmp_path):
    index.add_wheel(make_wheel(tmp_path / "w", "alpha", "1.0", "cp36-cp36m-manylinux_2_17_armv7l"))
    lines: list[str] = []
    got = download(["alpha; python_version < '3.8' and platform_machine == 'armv7l'",
                    "beta; python_version >= '3.11'", "gamma; platform_machine == 'x86_64'"],
                   tmp_path / "cache", python="3.6", platforms=["manylinux_2_17_armv7l", "linux_armv7l"],
                   log=lines.append)
    assert [f.name for f in got] == ["alpha"]  # cp36m: the ABI tag of CPython before 3.8
    assert [p for p in index.seen if "beta" in p or "gamma" in p] == []
    assert "not needed for CPython 3.6 on manylinux_2_17_armv7l: beta; python_version >= '3.11'" in lines

"""A project's .git is data on the host, never configuration (issue 16, item 1).

git reads .git/config and runs the programs it names: gpg.program (with log.showSignature, on a
commit that carries a signature), core.fsmonitor, core.pager, diff.external, core.hooksPath,
core.sshCommand, a filter's smudge... Each hostile checkout here names a script for all of them;
the script leaves a marker outside the project, and the marker must never appear, through the
CLI and through a real `serve` + worker, while a normal checkout still gives its tag and date."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import requests

from tests.helpers import make_project, xbuild
from tests.services import GitDaemon, embedded_server

pytestmark = pytest.mark.security

SIGNED_DATE = 1600000000     # the signed-looking commit's committer date
FILES = {"Makefile": "all:\n\techo hi > hi.txt\n", "xbuild.toml": '[build]\nartifacts = ["hi.txt"]\n'}
# Every key that makes git run a program, each naming the project's own script.
_DOORS = ("gpg.program", "core.fsmonitor", "core.pager", "core.editor", "core.sshCommand",
          "diff.external", "credential.helper", "filter.x.smudge", "filter.x.clean",
          "filter.x.process", "core.askPass", "sequence.editor", "pager.log", "pager.describe")
_HOOKS = ("post-checkout", "post-index-change", "reference-transaction", "fsmonitor-watchman",
          "pre-auto-gc", "post-rewrite")


def _git(repo: Path, *args: str, stdin: bytes | None = None) -> str:
    """The test's own git, on a repository before it turns hostile (its config is set last)."""
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "-C", str(repo),
                           *args], input=stdin, capture_output=True, check=True, env=env).stdout.decode().strip()


def checkout(root: Path, files: dict[str, str], tag: str | None = "v1.2") -> Path:
    """A project whose HEAD is a commit dated SIGNED_DATE, carrying a gpgsig header, tagged `tag`."""
    project = make_project(root, files)
    _git(project, "init", "-q")
    _git(project, "add", ".")
    _git(project, "commit", "-qm", "first")
    tree = _git(project, "rev-parse", "HEAD^{tree}")
    parent = _git(project, "rev-parse", "HEAD")
    commit = (f"tree {tree}\nparent {parent}\nauthor t <t@example.org> {SIGNED_DATE} +0000\n"
              f"committer t <t@example.org> {SIGNED_DATE} +0000\n"
              "gpgsig -----BEGIN PGP SIGNATURE-----\n \n iQEzBAABCAAdFiEE\n -----END PGP SIGNATURE-----\n"
              "\nsigned\n").encode()
    signed = _git(project, "hash-object", "-t", "commit", "-w", "--stdin", stdin=commit)
    _git(project, "update-ref", "HEAD", signed)
    if tag:
        _git(project, "tag", tag)
    return project


def make_hostile(project: Path, marker: Path) -> None:
    """Turn a checkout hostile: its config names a script (relative, as an upload's must: git runs
    it from the project) at every door, its hooks are that script, and its attributes use the
    filter. Written as text: the test's git never runs on it again."""
    script = project / ".git" / "x.sh"
    script.write_text(f'#!/bin/sh\necho "$0 $*" >> {marker}\n')
    script.chmod(0o755)
    hooks = project / ".git" / "evil-hooks"
    hooks.mkdir()
    for hook in _HOOKS:  # copies, not links: an upload's links must stay in its tree
        (hooks / hook).write_text(script.read_text())
        (hooks / hook).chmod(0o755)
    doors = "".join(f"{head}\n\t{name} = .git/x.sh\n" for head, name in map(_section, _DOORS))
    with (project / ".git" / "config").open("a") as f:
        f.write(doors + "[log]\n\tshowSignature = true\n[core]\n\thooksPath = .git/evil-hooks\n"
                        "\tfsmonitorHookVersion = 2\n[status]\n\tshowUntrackedFiles = all\n")
    (project / ".gitattributes").write_text("* filter=x diff=x\n")
    (project / ".git" / "info").mkdir(exist_ok=True)
    (project / ".git" / "info" / "attributes").write_text("* filter=x\n")


def _section(key: str) -> tuple[str, str]:
    """"filter.x.smudge" -> ('[filter "x"]', "smudge"); "core.pager" -> ("[core]", "pager")."""
    parts = key.split(".")
    return (f'[{parts[0]} "{parts[1]}"]' if len(parts) == 3 else f"[{parts[0]}]"), parts[-1]


def test_the_hostile_checkout_runs_its_script_under_plain_git(tmp_path):
    """The test's own check: the checkout is hostile enough that plain `git log` runs the script
    (otherwise the tests below would pass for nothing)."""
    marker = tmp_path / "marker"
    project = checkout(tmp_path / "p", FILES)
    make_hostile(project, marker)
    subprocess.run(["git", "-C", str(project), "log", "-1", "--format=%ct"], capture_output=True, timeout=60)
    assert marker.is_file()


def test_gitmeta_reads_a_hostile_checkout_without_running_anything(tmp_path):
    from xbuild.project import gitmeta
    marker = tmp_path / "marker"
    project = checkout(tmp_path / "p", FILES)
    head = _git(project, "rev-parse", "HEAD")
    make_hostile(project, marker)
    meta = gitmeta.read(project)
    assert not marker.exists(), marker.read_text()
    assert meta == gitmeta.Meta(commit=head, epoch=SIGNED_DATE, version="1.2")


def test_a_packed_shallow_clone_is_read_too(tmp_path):
    from xbuild.project import gitmeta
    origin = checkout(tmp_path / "origin", FILES)
    _git(origin, "gc", "-q")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--depth", "1", "--no-local", f"file://{origin}", str(clone)],
                   check=True, capture_output=True)
    meta = gitmeta.read(clone)
    assert meta.epoch == SIGNED_DATE and meta.commit == _git(origin, "rev-parse", "HEAD")


def test_a_git_link_or_pointer_file_is_not_followed(tmp_path):
    """A worktree's or submodule's .git file, or a link, names a place outside the project: the
    defaults, and a note that says why."""
    from xbuild.project import gitmeta
    real = checkout(tmp_path / "real", FILES)
    linked = make_project(tmp_path / "linked", FILES)
    (linked / ".git").symlink_to(real / ".git")
    pointer = make_project(tmp_path / "pointer", FILES)
    (pointer / ".git").write_text(f"gitdir: {real / '.git'}\n")
    for project, kind in ((linked, "a link"), (pointer, "not a directory")):
        meta = gitmeta.read(project)
        assert (meta.commit, meta.epoch, meta.version) == (None, None, None)
        assert meta.note and kind in meta.note and "defaults" in meta.note


def test_links_and_fifos_inside_the_git_dir_are_not_followed(tmp_path):
    """HEAD a link to a file elsewhere, a ref that is a FIFO, objects/ a link: never followed,
    never blocking."""
    from xbuild.project import gitmeta
    project = checkout(tmp_path / "p", FILES, tag=None)
    secret = tmp_path / "secret"
    secret.write_text(_git(project, "rev-parse", "HEAD") + "\n")
    os.mkfifo(project / ".git" / "refs" / "tags" / "fifo")
    (project / ".git" / "HEAD").unlink()
    (project / ".git" / "HEAD").symlink_to(secret)
    meta = gitmeta.read(project)
    assert meta.commit is None and meta.note and "HEAD" in meta.note
    (project / ".git" / "HEAD").unlink()
    (project / ".git" / "HEAD").write_text("ref: refs/heads/master\n")
    assert gitmeta.read(project).commit == _git(project, "rev-parse", "HEAD")
    objects = project / ".git" / "objects"
    (objects / "info" / "alternates").write_text(f"{tmp_path / 'elsewhere'}\n")  # a path it names
    meta = gitmeta.read(project)
    assert meta.commit is None and meta.note and "alternates" in meta.note
    (objects / "info" / "alternates").unlink()
    objects.rename(tmp_path / "objects")
    objects.symlink_to(tmp_path / "objects")
    assert gitmeta.read(project).commit is None


def test_nightly_takes_a_path_projects_commit_the_same_way(tmp_path):
    """The operator's path project, a folder of a hostile checkout: its commit, nothing run. (A
    guard more than a regression: main's `git rev-parse` happens to open none of these doors.)"""
    from xbuild.service import nightly
    marker = tmp_path / "marker"
    repo = checkout(tmp_path / "repo", {f"fw/{name}": text for name, text in FILES.items()})
    head = _git(repo, "rev-parse", "HEAD")
    make_hostile(repo, marker)
    assert nightly._commit(nightly.Project("fw", ("rpi3",), path="fw"), repo) == head
    assert not marker.exists(), marker.read_text()


@pytest.mark.integration
def test_the_cli_runs_nothing_from_a_projects_git(engine, tmp_path):
    """`xbuild --target rpi3 project/` on a downloaded tree holding a hostile .git: nothing runs,
    and the tag and the commit's date still make the version and SOURCE_DATE_EPOCH."""
    marker = tmp_path / "marker"
    project = checkout(tmp_path / "tagged", FILES)
    make_hostile(project, marker)
    result = xbuild("--target", "rpi3", project, "--deb", "--json")
    assert result.returncode == 0, result.stderr
    assert not marker.exists(), marker.read_text()
    out = json.loads(result.stdout)
    assert Path(out["artifacts"][1]["path"]).name == "tagged_1.2_armhf.deb"
    manifest = json.loads(Path(out["manifest"]).read_text())
    assert manifest["options"]["source_date_epoch"] == SIGNED_DATE


# --- the service -------------------------------------------------------------------------------
def _tar_gz(project: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path in sorted(project.rglob("*")):
            tar.add(path, path.relative_to(project).as_posix(), recursive=False)
    return buf.getvalue()


@pytest.fixture(scope="module")
def server(engine, tmp_path_factory):
    with embedded_server(tmp_path_factory.mktemp("svc-git")) as srv:
        yield srv


def _job(server, response) -> dict:
    from tests.integration.test_service import _wait
    assert response.status_code == 201, response.text
    return _wait(server, response.json()["id"], timeout=900)


def _manifest(server, job) -> dict:
    from tests.integration.test_service import _auth
    got = requests.get(f"{server.url}/v1/builds/{job['id']}/artifacts/manifest.json", headers=_auth())
    assert got.status_code == 200, got.text
    return got.json()


@pytest.mark.integration
def test_a_worker_never_reads_an_uploads_git(server, tmp_path):
    """An upload holding a hostile .git (the script named relatively, as git would run it from the
    unpacked project): nothing runs on the worker, and the upload's .git decides nothing."""
    from tests.integration.test_service import _auth
    marker = tmp_path / "marker"
    project = checkout(tmp_path / "up", FILES)
    make_hostile(project, marker)
    job = _job(server, requests.post(f"{server.url}/v1/builds", headers=_auth(),
                                     data={"target": "rpi3", "project": "up"},
                                     files={"source": ("s.tar.gz", _tar_gz(project))}))
    assert job["state"] == "succeeded", job
    assert not marker.exists(), marker.read_text()
    assert _manifest(server, job)["options"]["source_date_epoch"] == 315532800  # the default


@pytest.mark.integration
def test_a_git_source_the_worker_cloned_gives_its_date(server, tmp_path):
    """A git source is the worker's own clone: its commit's date is read (through gitmeta)."""
    from tests.integration.test_service import _auth
    project = checkout(tmp_path / "work", FILES)
    (tmp_path / "repos").mkdir()
    subprocess.run(["git", "clone", "-q", "--bare", str(project), str(tmp_path / "repos" / "app.git")],
                   check=True, capture_output=True)
    daemon = GitDaemon(tmp_path / "repos")
    try:
        job = _job(server, requests.post(f"{server.url}/v1/builds", headers=_auth(),
                                         json={"git_url": f"{daemon.url}/app.git", "target": "rpi3"}))
    finally:
        daemon.stop()
    assert job["state"] == "succeeded", job
    assert _manifest(server, job)["options"]["source_date_epoch"] == SIGNED_DATE


def test_a_cloned_sources_attributes_reach_no_filter_of_the_operators(tmp_path):
    """A git source's checkout on the worker: the tenant's .gitattributes may name a filter driver
    that the operator's own git set-up defines (git-lfs's smudge fetches from a URL the tenant's
    .lfsconfig picks). The checkout runs with no operator config, so no driver runs."""
    marker = tmp_path / "smudge-ran"
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text(f"[filter \"lfs\"]\n\tsmudge = sh -c 'touch {marker}; cat'\n"
                                     "\trequired = true\n")
    repo = checkout(tmp_path / "repo", {**FILES, ".gitattributes": "* filter=lfs\n"}, tag=None)
    env = {**os.environ, "HOME": str(home)}
    env.pop("GIT_CONFIG_GLOBAL", None)
    script = ("import sys; from pathlib import Path; from xbuild.service.execute import fetch_git; "
              "Path(sys.argv[2]).mkdir(); print(fetch_git(sys.argv[1], None, Path(sys.argv[2])))")
    out = subprocess.run([sys.executable, "-c", script, str(repo), str(tmp_path / "into")], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "into" / "Makefile").read_text() == FILES["Makefile"]
    assert not marker.exists(), "the operator's filter driver ran on the tenant's checkout"

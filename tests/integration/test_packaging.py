"""Real projects on the first try: build options without rewriting recipes (cmake_args & co.),
`tools` for the build machine, a name and version of the project's own, extra artifacts placed by
kind, and a .deb the board installs with apt (checked with apt itself in a board container)."""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.helpers import EXAMPLES, make_project, xbuild

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def greeter(engine, tmp_path_factory) -> dict:
    """examples/cmake-options built for rpi3 (trixie): name, version, deb, cmake_args, dests."""
    project = shutil.copytree(EXAMPLES / "cmake-options", tmp_path_factory.mktemp("g") / "cmake-options")
    result = xbuild("--target", "rpi3", project, "--json")
    assert result.returncode == 0, result.stderr
    return {"project": project, **json.loads(result.stdout)}


def test_name_cmake_args_and_extra_artifacts_by_kind(greeter):
    paths = [Path(a["path"]).name for a in greeter["artifacts"]]
    assert paths == ["greeter-rpi3.tar.gz", "greeter_1.2.0_armhf.deb"]  # name, not the folder's
    with tarfile.open(greeter["artifacts"][0]["path"]) as tar:
        names = set(tar.getnames())
    assert {"bin/greeter", "share/greeter/greeter.xml", "etc/greeter/greeter.conf"} <= names
    assert not any(n.startswith(("doc/", "conf/")) for n in names)  # not their build-tree paths
    run = xbuild("run", "--target", "rpi3", greeter["artifacts"][0]["path"], "--", "bin/greeter")
    assert run.returncode == 0 and run.stdout.strip() == "Hello from greeter, board"  # -DGREETING


def test_the_deb_is_listed_checksummed_and_read_by_dpkg(greeter):
    deb = Path(greeter["artifacts"][1]["path"])
    sums = (deb.parent / "SHA256SUMS").read_text()
    assert f"{greeter['artifacts'][1]['sha256']}  {deb.name}" in sums
    manifest = json.loads(Path(greeter["manifest"]).read_text())
    assert deb.name in [a["name"] for a in manifest["artifacts"]]
    info = subprocess.run(["dpkg-deb", "--field", deb, "Package", "Version", "Architecture", "Depends"],
                          capture_output=True, text=True, check=True).stdout
    assert "Package: greeter\nVersion: 1.2.0\nArchitecture: armhf\nDepends: libc6 (>= " in info
    run = xbuild("run", "--target", "rpi3", deb, "--", "bin/greeter", "deb")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "Hello from greeter, deb"


@pytest.fixture(scope="module")
def jsonsum(engine, tmp_path_factory) -> dict:
    """examples/json-ssl for rpi3: a program linking two of the board's libraries (cJSON, OpenSSL)."""
    project = shutil.copytree(EXAMPLES / "json-ssl", tmp_path_factory.mktemp("j") / "json-ssl")
    result = xbuild("--target", "rpi3", project, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


ABC_SHA256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_two_libraries_become_the_boards_runtime_packages_and_run(jsonsum):
    packages = [d.split(" ")[0] for d in jsonsum["depends"]]
    assert packages[0] == "libc6" and packages[1] == "libcjson1" and packages[2].startswith("libssl3")
    for artifact in jsonsum["artifacts"]:  # the tar.gz and the .deb alike
        run = xbuild("run", "--target", "rpi3", artifact["path"], "--", "bin/jsonsum", '{"a": "abc"}')
        assert run.returncode == 0, run.stderr
        assert json.loads(run.stdout) == {"a": ABC_SHA256}


def test_apt_installs_the_deb_and_its_dependencies_on_the_boards_userland(jsonsum):
    """apt itself, in a trixie armhf container under qemu (with network, for the Depends): the
    package installs, pulls libcjson1 and libssl3t64, and its program runs from /usr/local/bin."""
    deb = Path(next(a["path"] for a in jsonsum["artifacts"] if a["path"].endswith(".deb")))
    base = subprocess.run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}",
                           "--filter", "label=org.xbuild.kind=base"], capture_output=True, text=True)
    image = next(t for t in base.stdout.split() if t.startswith("xbuild/base:trixie-armhf-"))
    script = (f"cp /pkg/{deb.name} /tmp/ && apt-get update -qq && "
              f"apt-get install -y -qq /tmp/{deb.name} >/dev/null && "
              "dpkg-query -W -f='${Status}\n' libcjson1 && jsonsum '{\"a\": \"abc\"}'")
    proc = subprocess.run(["docker", "run", "--rm", "--platform", "linux/arm/v7", "-v",
                           f"{deb.parent}:/pkg:ro", "-e", "QEMU_CPU=max", image, "sh", "-c", script],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    assert lines[-2] == "install ok installed" and json.loads(lines[-1]) == {"a": ABC_SHA256}


def test_two_builds_make_the_same_deb(greeter, tmp_path):
    again = xbuild("--target", "rpi3", greeter["project"], "--no-cache", "--out", tmp_path / "again",
                   "--json")
    assert again.returncode == 0, again.stderr
    assert [a["sha256"] for a in json.loads(again.stdout)["artifacts"]] == \
        [a["sha256"] for a in greeter["artifacts"]]


def test_same_name_in_another_folder_answers_from_the_cache(greeter, tmp_path):
    copy = shutil.copytree(greeter["project"], tmp_path / "unpacked-greeter-1.2",
                           ignore=shutil.ignore_patterns("xbuild-out"))
    result = xbuild("--target", "rpi3", copy, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["cache"] == "hit"


def test_without_the_cmake_option_the_hint_names_the_tool(greeter, tmp_path):
    copy = shutil.copytree(greeter["project"], tmp_path / "docs-on", ignore=shutil.ignore_patterns("xbuild-out"))
    toml = copy / "xbuild.toml"
    toml.write_text(toml.read_text().replace('"-DWITH_DOCS=OFF", ', ""))
    result = xbuild("--target", "rpi3", copy)
    assert result.returncode == 7
    assert 'hint: add tools = ["xsltproc"] to xbuild.toml' in result.stderr


def test_tools_run_on_the_build_machine(engine, tmp_path):
    project = shutil.copytree(EXAMPLES / "xslt-tools", tmp_path / "xslt-tools")
    result = xbuild("--target", "rpi3", project, "--json")
    assert result.returncode == 0, result.stderr
    run = xbuild("run", "--target", "rpi3", json.loads(result.stdout)["artifacts"][0]["path"],
                 "--", "bin/version")
    assert run.returncode == 0 and run.stdout.strip() == "xslt-tools 2.7"


@pytest.mark.parametrize("text,message", [
    ('[build]\nmeson_args = ["-Dx=1"]\n', "meson_args does not apply to the make recipe"),
    ('[build]\nsteps = ["make"]\nmake_args = ["V=1"]\n', "make_args are added to the recipe's own steps"),
])
def test_options_a_recipe_does_not_take_are_refused(engine, tmp_path, text, message):
    project = make_project(tmp_path / "p", {"Makefile": "all:\n", "xbuild.toml": text})
    result = xbuild("--target", "rpi3", project)
    assert result.returncode == 6 and message in result.stderr, result.stderr


def test_version_from_git_describe_else_the_epoch(engine, tmp_path):
    files = {"Makefile": "all:\n\techo hi > hi.txt\n", "xbuild.toml": '[build]\nartifacts = ["hi.txt"]\n'}
    plain = make_project(tmp_path / "plain", files)
    result = xbuild("--target", "rpi3", plain, "--deb", "--json")
    assert result.returncode == 0, result.stderr
    assert Path(json.loads(result.stdout)["artifacts"][1]["path"]).name == "plain_0~315532800_armhf.deb"

    tagged = make_project(tmp_path / "tagged", files)
    git = ["git", "-C", str(tagged), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "x"], check=True)
    subprocess.run([*git, "tag", "v3.1"], check=True)
    result = xbuild("--target", "rpi3", tagged, "--deb", "--json")
    assert result.returncode == 0, result.stderr
    assert Path(json.loads(result.stdout)["artifacts"][1]["path"]).name == "tagged_3.1_armhf.deb"

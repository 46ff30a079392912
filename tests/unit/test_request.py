"""The build request (xbuild/request.py): its JSON round trip, its errors for bad JSON, Mode, and
that the click options, the API's fields, the job record and the OpenAPI document are made from
its declarations."""

from __future__ import annotations

import dataclasses
import json

import pytest

from tests.helpers import xbuild
from xbuild.errors import ConfigError, UnknownRelease, UnknownTarget
from xbuild.pipeline import spec as specs
from xbuild.request import ABOUT, API_FIELDS, FIELDS, BuildRequest, Mode
from xbuild.service.fields import GIT, SUBMIT
from xbuild.service.jobs import Job
from xbuild.service.openapi import SPEC

FULL = BuildRequest("rpi3", os="bookworm", mode=Mode.HYBRID, static=False, deb=True, keep_debug=True,
                    jobs=3, timeout=600, memory="2g", no_cache=True)


@pytest.mark.parametrize("request_", [BuildRequest("rpi3"), FULL], ids=["defaults", "every-field"])
def test_the_json_round_trip(request_):
    text = json.dumps(request_.to_json())
    assert BuildRequest.from_json(json.loads(text)) == request_
    assert json.loads(text)["mode"] == request_.mode.value


def test_the_json_is_json_types():
    data = FULL.to_json()
    assert data["mode"] == "hybrid" and type(data["mode"]) is str
    assert data["deb"] is True and data["static"] is False and data["jobs"] == 3
    assert BuildRequest("rpi3").to_json()["static"] is None  # not asked: xbuild.toml decides


@pytest.mark.parametrize("data, words", [
    (["rpi3"], "a build request must be a JSON object, not a list"),
    ({"target": "rpi3", "colour": "red"}, "unknown field 'colour'"),
    ({"os": "bookworm"}, "no target"),
    ({"target": 3}, "'target' must be a string, not a number"),
    ({"target": "rpi3", "static": "yes"}, "'static' must be true or false or null, not a string"),
    ({"target": "rpi3", "no_cache": None}, "'no_cache' must be true or false, not null"),
    ({"target": "rpi3", "jobs": "4"}, "'jobs' must be a whole number or null, not a string"),
    ({"target": "rpi3", "jobs": True}, "'jobs' must be a whole number or null, not a boolean"),
    ({"target": "rpi3", "jobs": 1.5}, "'jobs' must be a whole number or null, not a number"),
    ({"target": "rpi3", "jobs": 0}, "jobs is 0: it must be at least 1"),
    ({"target": "rpi3", "timeout": 0}, "timeout is 0: it must be at least 1 and at most 604800"),
    ({"target": "rpi3", "mode": 3}, "'mode' must be a string, not a number"),
    ({"target": "rpi3", "mode": "native"}, "unknown mode 'native'"),
])
def test_bad_json_is_a_config_error_that_says_what(data, words):
    with pytest.raises(ConfigError) as exc:
        BuildRequest.from_json(data)
    assert words in exc.value.message and exc.value.exit_code == ConfigError.exit_code == 6


def test_mode_from_a_string_or_a_config_error():
    assert Mode("hybrid") is Mode.HYBRID and Mode.HYBRID == "hybrid" and f"{Mode.EMULATE}" == "emulate"
    assert [m.emulated for m in Mode] == [False, True, True]
    with pytest.raises(ConfigError) as exc:
        Mode("native")
    assert exc.value.message == "unknown mode 'native'" and exc.value.hint == "cross, emulate or hybrid"
    with pytest.raises(ConfigError):
        BuildRequest("rpi3", mode="fast")  # a caller's plain string goes through Mode too
    assert BuildRequest("rpi3", mode="emulate").mode is Mode.EMULATE


def test_every_request_field_is_an_option_of_build():
    """build takes every field, each with its declared flag and XBUILD_* variable."""
    proc = xbuild("build", "--help")
    assert proc.returncode == 0
    for name, about in ABOUT.items():
        flag = (about.flags or (f"--{name.replace('_', '-')}",))[-1].split("/")[0]
        assert flag in proc.stdout and about.env in proc.stdout, name


def test_the_commands_take_the_request_and_submit_what_the_api_takes():
    from xbuild.commands.build import build
    from xbuild.commands.service import submit
    from xbuild.commands.shell import shell
    from xbuild.commands.verify import verify
    params = {c.name: {p.name for p in c.params} for c in (build, shell, verify, submit)}
    assert set(FIELDS) <= params["build"]
    assert set(API_FIELDS) <= params["submit"]
    assert {"target", "os", "mode"} <= params["shell"] & params["verify"]


def test_the_api_fields_and_the_document_come_from_the_request():
    assert set(API_FIELDS) == {"target", "os", "mode", "static", "deb", "no_cache", "packages"}
    assert all(name in SUBMIT and SUBMIT[name].description == ABOUT[name].api for name in API_FIELDS)
    post = SPEC["paths"]["/v1/builds"]["post"]["requestBody"]["content"]
    git = post["application/json"]["schema"]
    assert git["properties"]["mode"]["enum"] == [m.value for m in Mode]
    assert git["properties"]["static"]["type"] == "boolean" and SUBMIT["static"].kind == "flag"
    assert "target" in git["required"] and SUBMIT["target"].required and GIT in SUBMIT["target"].bodies
    record = SPEC["components"]["schemas"]["Build"]["properties"]
    assert record["mode"]["enum"] == [m.value for m in Mode]
    assert record["os"]["type"] == ["string", "null"] and record["static"]["type"] == ["boolean", "null"]


def test_the_job_record_holds_the_requests_api_fields():
    job = Job(id="j", tenant="t", request=dataclasses.replace(FULL, jobs=None, timeout=None))
    record = json.loads(json.dumps(job.to_json()))
    assert {k: record[k] for k in API_FIELDS} == FULL.to_json(API_FIELDS)
    assert "request" not in record and "jobs" not in record  # the worker chooses those
    again = Job.from_json(record)
    assert again.request == dataclasses.replace(FULL, jobs=None, timeout=None, keep_debug=False, memory="4g")
    assert again == dataclasses.replace(job, request=again.request)
    with pytest.raises(ConfigError, match="a job record: 'static' must be"):
        Job.from_json({**record, "static": "1"})


def test_check_is_the_boards_part():
    assert specs.check(BuildRequest("pi3", os="Bookworm")) == BuildRequest("rpi3", os="bookworm")
    assert specs.check(BuildRequest("rpi3")).os is None  # the project's xbuild.toml may say
    with pytest.raises(UnknownTarget):
        specs.check(BuildRequest("rpi9"))
    with pytest.raises(UnknownRelease):
        specs.check(BuildRequest("rpi3", os="jessie"))
    with pytest.raises(ConfigError, match="cannot build with --mode hybrid"):
        specs.check(BuildRequest("rpi0", mode="hybrid"))
    with pytest.raises(ConfigError, match="--static is not available"):
        specs.check(BuildRequest("s390x", static=True))

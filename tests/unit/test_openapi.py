"""The OpenAPI document against the real app: its routes, the fields a submit is read with, and
the answers it gives for job records kept in a real file:// store."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re

import pytest

from tests.openapi_check import mismatches
from xbuild.errors import ExitCode
from xbuild.request import API_FIELDS, BuildRequest
from xbuild.service import api, openapi
from xbuild.service.api import create_app
from xbuild.service.fields import GIT, SUBMIT, UPLOAD
from xbuild.service.jobs import Job, Jobs, new_id, now, tenant_of
from xbuild.service.openapi import SPEC
from xbuild.store import open_store

TOKEN = "t0ken-for-the-openapi-test"


def test_every_route_is_described_and_nothing_else():
    routes = {}
    for rule in create_app(jobs=object()).url_map.iter_rules():
        if rule.endpoint != "static":
            path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)  # <job_id> -> {job_id}
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                routes[(path, method.lower())] = rule.arguments
    described = {(path, method): op for path, ops in SPEC["paths"].items() for method, op in ops.items()}
    assert sorted(described) == sorted(routes)
    for key, arguments in routes.items():
        in_path = {p["name"] for p in described[key].get("parameters", []) if p["in"] == "path"}
        assert in_path == arguments, key


def test_the_submit_reads_exactly_the_declared_fields():
    """api.py reads a submit's fields through SUBMIT only (an undeclared name is a KeyError), and
    every declared field is read: none in the document that the API ignores. The build request's
    are read by name in a loop over request.API_FIELDS."""
    source = inspect.getsource(api)
    names = [node.args[1] for node in ast.walk(ast.parse(source))
             if isinstance(node, ast.Call) and ast.unparse(node.func) == "_value"]
    read = {n.value for n in names if isinstance(n, ast.Constant)}
    assert [ast.unparse(n) for n in names if not isinstance(n, ast.Constant)] == ["name"]
    assert "for name in API_FIELDS" in inspect.getsource(api._request)
    read |= set(API_FIELDS)
    files = {node.args[0].value for node in ast.walk(ast.parse(source))
             if isinstance(node, ast.Call) and ast.unparse(node.func) == "request.files.get"}
    assert read | files == set(SUBMIT)
    assert all(SUBMIT[name].kind == "file" for name in files)
    for body, media in ((UPLOAD, "multipart/form-data"), (GIT, "application/json")):
        schema = SPEC["paths"]["/v1/builds"]["post"]["requestBody"]["content"][media]["schema"]
        assert set(schema["properties"]) == {n for n, f in SUBMIT.items() if body in f.bodies}


def test_the_described_record_fields_exist():
    names = {f.name for f in dataclasses.fields(Job)} | set(API_FIELDS)
    assert set(openapi._RECORD_WORDS) <= names


@pytest.fixture
def client(tmp_path, monkeypatch):
    monkeypatch.setenv("XBUILD_API_TOKENS", TOKEN)
    jobs = Jobs(open_store((tmp_path / "store").as_uri(), create=True))
    return jobs, create_app(jobs).test_client()


def _get(client, path: str):
    resp = client.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def test_the_answers_for_real_job_records_fit_the_build_schema(client):
    """A job as the API makes it (queued), and as a worker leaves it (finished, every field set):
    what GET answers for each has every field of the schema and nothing it lacks."""
    jobs, http = client
    queued = Job(id=new_id(), tenant=tenant_of(TOKEN), request=BuildRequest("rpi3"), queue="xbuild.armhf")
    done = dataclasses.replace(
        queued, id=new_id(), request=BuildRequest("rpi3", os="bookworm", static=True, deb=True, no_cache=True),
        source="git", git_url="https://example.org/a.git", git_ref="main",
        commit="3f2a9c1" * 5 + "abcde", project="a", state="succeeded", attempts=1, started=now(),
        finished=now(), exit_code=ExitCode.OK, error=None, hint=None, cache="miss",
        build_id="rpi3-bookworm-0123", cache_key="ab" * 32, timings={"build": 1.5},
        compiler_cache={"hits": 1, "misses": 2}, nightly="2026-12-06",
        files=[{"name": "a.tar.gz", "sha256": "00" * 32, "size": 1, "object": "x"}])
    for job in (queued, done):
        jobs.save(job)
    schema = SPEC["components"]["schemas"]["Build"]
    for job in (queued, done):
        answer = _get(http, f"/v1/builds/{job.id}")
        assert set(answer) == set(schema["properties"]) == set(schema["required"])
        assert mismatches(answer, schema, SPEC) == []
    listed = _get(http, "/v1/builds")
    described = SPEC["paths"]["/v1/builds"]["get"]["responses"]["200"]["content"]["application/json"]
    assert len(listed["builds"]) == 2 and mismatches(listed, described["schema"], SPEC) == []
    # The schema would see a field it does not describe, or a value of another type.
    assert mismatches({**answer, "tenant": "t"}, schema, SPEC) == ["$.tenant: not in the schema"]
    assert mismatches({**answer, "attempts": True}, schema, SPEC) == ["$.attempts: True is not integer"]

"""xbuild.pipeline.cache: the key changes with everything that decides the output, and nothing else."""

import dataclasses

import pytest

from tests.helpers import EXAMPLES
from xbuild.pipeline import cache
from xbuild.pipeline import spec as specs
from xbuild.request import BuildRequest


@pytest.fixture
def base(tmp_path):
    return specs.resolve(EXAMPLES / "hello-make", BuildRequest("rpi3", jobs=2), out=tmp_path / "out")


def key(spec, source="s" * 64, image="xbuild/builder:tag"):
    return cache.key(spec, source, image)


def test_same_inputs_same_key_whatever_the_jobs_and_output_path(base, tmp_path):
    other = dataclasses.replace(base, jobs=7, out=tmp_path / "elsewhere")
    assert key(base) == key(other)


def test_source_image_target_mode_and_steps_change_the_key(base, tmp_path):
    k = key(base)
    assert key(base, source="t" * 64) != k
    assert key(base, image="xbuild/builder:other") != k
    assert key(specs.resolve(EXAMPLES / "hello-make", BuildRequest("rpi0"), out=tmp_path / "o")) != k
    assert key(dataclasses.replace(base, mode="emulate")) != k
    steps = dataclasses.replace(base.config, steps=("make STATIC=1",))
    assert key(dataclasses.replace(base, config=steps)) != k
    assert key(dataclasses.replace(base, source_date_epoch=base.source_date_epoch + 1)) != k


def test_project_env_and_passed_values_change_the_key(base, monkeypatch):
    cfg = dataclasses.replace(base.config, env={"FOO": "1"})
    assert key(dataclasses.replace(base, config=cfg)) != key(base)
    passing = dataclasses.replace(base, config=dataclasses.replace(base.config, pass_env=("APP_VERSION",)))
    monkeypatch.setenv("APP_VERSION", "1.0")
    one = key(passing)
    monkeypatch.setenv("APP_VERSION", "1.1")
    assert key(passing) != one
    monkeypatch.delenv("APP_VERSION")
    assert key(passing) not in (one, key(base))


def test_build_id_names_the_target(base):
    assert cache.build_id(base, "ab" * 32) == "rpi3-" + "ab" * 10

"""The build cache key: a hash of everything that decides a build's output.

Source content, the resolved target (every ABI fact and tuning flag, and its OS release), the
toolchain (name and version) and the static flag, the recipe and its steps, the project config,
the builder image's definition (its tag is a content hash), the reproducibility epoch, xbuild's
own build-logic and gate versions, the archives' gzip level, and the values of the variables the
project passes in (`pass_env`: a different VERSION must not answer from the cache). Not in it: job
count, paths, time, the store."""

from __future__ import annotations

import dataclasses
import hashlib
import json

from xbuild import BUILD_LOGIC_VERSION
from xbuild.host.archive import GZIP_LEVEL
from xbuild.pipeline.spec import BuildSpec
from xbuild.store import to_segment


def key(spec: BuildSpec, source_hash: str, image_tag: str) -> str:
    facts = {
        "xbuild": BUILD_LOGIC_VERSION,
        # What the gate checks, apart from the build logic (whose bump retags every image): a
        # build a newer gate fails (2: undefined symbols) must not be answered by an older hit.
        "gate": 2,
        "gzip": GZIP_LEVEL,  # the archives' bytes (and a .deb's)
        "source": source_hash,
        "target": dataclasses.asdict(spec.target),
        "mode": spec.mode,
        "static": spec.static,
        "toolchain": spec.toolchain.summary(),  # name, version (zig's), static
        # What the shims and the script after collection do changes the output (zig's -g0, strip).
        "toolchain_files": hashlib.sha256(json.dumps(
            [spec.toolchain.files(), spec.toolchain.finish(spec.keep_debug)], sort_keys=True
        ).encode()).hexdigest(),
        "recipe": dataclasses.asdict(spec.recipe),
        "steps": list(spec.steps),
        "config": spec.config.to_json(),
        "image": image_tag,
        "source_date_epoch": spec.source_date_epoch,
        "deb": [spec.deb, spec.version],
        # Hashed one by one, so not even the key's input holds a passed secret in the clear.
        "pass_env": {k: hashlib.sha256(v.encode()).hexdigest() for k, v in spec.passed_env().items()},
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True, default=list).encode()).hexdigest()


def build_id(spec: BuildSpec, cache_key: str) -> str:
    return f"{spec.target.name}-{cache_key[:20]}"


def store_base(spec: BuildSpec, scope: str = "") -> str:
    """The project's folder in the configured store (a safe single path segment), under `scope`
    when the store is shared by parties who must not answer each other's builds (the farm's
    tenants: builds/<tenant>)."""
    return "/".join(filter(None, (scope, to_segment(spec.name))))

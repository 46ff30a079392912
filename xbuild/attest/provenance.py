"""SLSA v1 provenance as an in-toto statement (in-toto.io/Statement/v1): which files a build made
(subjects, by sha256), from what (the request, the source tree, the builder image, the packages)
and by whom (xbuild's version, this machine or a farm worker), then signed into a DSSE envelope
when XBUILD_SIGNING_KEY is set (dsse.py).

The build type is documented in docs/attestation.md; its URI names the version of that document."""

from __future__ import annotations

import json
from datetime import UTC, datetime

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "https://xbuild.dev/attestation/build/v1"   # docs/attestation.md
SIGNED_NAME, UNSIGNED_NAME = "provenance.dsse.json", "provenance.intoto.json"


def _time(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def statement(subjects: dict[str, str], request: dict, source_sha256: str, image: dict,
              packages: list[dict], builder: dict, build_id: str, started: float, finished: float) -> dict:
    """subjects: {file name: sha256}; request: what was asked (board, release, mode, options);
    image: {"tag", "id"}; packages: [{"uri": purl, "digest": {...}}]; builder: {"id", "version"}."""
    resolved = [{"name": "source", "uri": "xbuild:source-tree",
                 "digest": {"sha256": source_sha256}}]
    if image.get("id"):
        resolved.append({"name": "builder-image", "uri": f"docker-image:{image.get('tag', '')}",
                         "digest": {"sha256": image["id"].removeprefix("sha256:")}})
    resolved += packages
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": name, "digest": {"sha256": digest}} for name, digest in sorted(subjects.items())],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {"buildType": BUILD_TYPE, "externalParameters": request,
                                "internalParameters": {}, "resolvedDependencies": resolved},
            "runDetails": {"builder": builder,
                           "metadata": {"invocationId": build_id, "startedOn": _time(started),
                                        "finishedOn": _time(finished)}},
        },
    }


def dumps(doc: dict) -> bytes:
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()

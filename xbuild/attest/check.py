"""`xbuild attest verify`: a build's folder checked against its attestation. The provenance's
signature (when a public key is given), every subject's digest against the file, the SBOMs'
artifact digests against the files, SHA256SUMS against the files. Every mismatch is named; none
stops the others from being checked."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from xbuild.attest import dsse, provenance, sbom
from xbuild.host.archive import sha256_file
from xbuild.host.safefs import is_regular, read_prefix

MAX_DOCUMENT = 64 << 20  # an attestation or SBOM larger than this is not one xbuild wrote


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    signed: bool = False
    checked: list[str] = field(default_factory=list)  # the files whose digests matched

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict:
        return {"ok": self.ok, "signed": self.signed, "problems": self.problems, "notes": self.notes,
                "checked": sorted(set(self.checked))}


def _read(folder: Path, name: str) -> bytes | None:
    path = folder / name
    if not is_regular(path):  # a link or a FIFO in a folder someone else filled is not followed
        return None
    data = read_prefix(path, MAX_DOCUMENT + 1)
    return data if len(data) <= MAX_DOCUMENT else None


def _digest(folder: Path, name: str) -> str | None:
    path = folder / name
    if "/" in name or name in ("", ".", "..") or not is_regular(path):
        return None
    return sha256_file(path)


def verify(folder: Path, key: dsse.PublicKey | None) -> Report:
    report = Report()
    statement = _statement(folder, key, report)
    if statement is not None:
        subjects = statement.get("subject", [])
        if not subjects:
            report.problems.append("the provenance names no subject")
        for s in subjects:
            _compare(folder, str(s.get("name", "")), str(s.get("digest", {}).get("sha256", "")),
                     "the provenance", report)
    _sboms(folder, report)
    _sums(folder, report)
    return report


def _statement(folder: Path, key: dsse.PublicKey | None, report: Report) -> dict | None:
    signed, unsigned = _read(folder, provenance.SIGNED_NAME), _read(folder, provenance.UNSIGNED_NAME)
    try:
        if signed is not None:
            report.signed = True
            envelope = json.loads(signed)
            if key is None:
                report.notes.append(f"{provenance.SIGNED_NAME} is signed; its signature was not checked "
                                    "(no --key given)")
                payload = dsse.payload(envelope)
            else:
                payload = dsse.open_envelope(envelope, key)
                report.notes.append(f"signature by key {dsse.keyid(key)[:16]} verified")
            return _parsed(json.loads(payload), report)
        if unsigned is not None:
            if key is not None:
                report.problems.append(f"the build is unsigned ({provenance.UNSIGNED_NAME}): nothing "
                                       "is signed by the key given")
            else:
                report.notes.append("the build is unsigned (no XBUILD_SIGNING_KEY when it was built)")
            return _parsed(json.loads(unsigned), report)
    except dsse.BadSignature as exc:
        report.problems.append(f"{provenance.SIGNED_NAME}: {exc}")
        return None
    except (ValueError, TypeError) as exc:
        report.problems.append(f"the provenance is not JSON: {exc}")
        return None
    report.problems.append(f"no provenance ({provenance.SIGNED_NAME} or {provenance.UNSIGNED_NAME})")
    return None


def _parsed(statement: object, report: Report) -> dict | None:
    if not isinstance(statement, dict) or statement.get("_type") != provenance.STATEMENT_TYPE \
            or statement.get("predicateType") != provenance.PREDICATE_TYPE:
        report.problems.append("the provenance is not an in-toto statement of SLSA v1 provenance")
        return None
    return statement


def _compare(folder: Path, name: str, expected: str, where: str, report: Report) -> None:
    actual = _digest(folder, name)
    if actual is None:
        report.problems.append(f"{name or '(no name)'}: named by {where}, missing from the folder")
    elif actual != expected:
        report.problems.append(f"{name}: sha256 {actual[:16]}... differs from {where}'s {expected[:16]}...")
    else:
        report.checked.append(name)


def _sboms(folder: Path, report: Report) -> None:
    for name, artifacts in ((sbom.SPDX_NAME, _spdx_artifacts), (sbom.CYCLONEDX_NAME, _cdx_artifacts)):
        data = _read(folder, name)
        if data is None:
            report.problems.append(f"no {name}")
            continue
        try:
            named = artifacts(json.loads(data))
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            report.problems.append(f"{name} is not a bill of materials xbuild wrote: {exc}")
            continue
        if not named:
            report.problems.append(f"{name} names no artifact")
        for artifact, digest in named.items():
            _compare(folder, artifact, digest, name, report)


def _spdx_artifacts(doc: dict) -> dict[str, str]:
    return {p["packageFileName"]: next(c["checksumValue"] for c in p["checksums"] if c["algorithm"] == "SHA256")
            for p in doc["packages"] if p.get("SPDXID", "").startswith("SPDXRef-Artifact-")}


def _cdx_artifacts(doc: dict) -> dict[str, str]:
    return {c["name"]: next(h["content"] for h in c["hashes"] if h["alg"] == "SHA-256")
            for c in doc["components"] if c.get("bom-ref", "").startswith("artifact:")}


def _sums(folder: Path, report: Report) -> None:
    data = _read(folder, "SHA256SUMS")
    if data is None:
        report.problems.append("no SHA256SUMS")
        return
    for line in data.decode("utf-8", "replace").splitlines():
        digest, _, name = line.partition("  ")
        if name:
            _compare(folder, name, digest, "SHA256SUMS", report)

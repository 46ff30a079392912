"""Signing and checking a build's attestation. The signature is checked here with a plain
ed25519/ECDSA verification written in the test (DSSE's PAE spelled out), not with xbuild's code."""

from __future__ import annotations

import base64
import hashlib
import json
import os

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from xbuild.attest import check, dsse, provenance, sbom
from xbuild.errors import ConfigError


def _pae(kind: str, body: bytes) -> bytes:
    return b"DSSEv1 " + str(len(kind)).encode() + b" " + kind.encode() + b" " + str(len(body)).encode() + b" " + body


@pytest.mark.parametrize("make", [ed25519.Ed25519PrivateKey.generate, lambda: ec.generate_private_key(ec.SECP256R1())])
def test_an_envelope_verifies_with_a_plain_signature_check(make):
    key = make()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    envelope = dsse.sign(b'{"_type": "x"}', dsse.load_private(pem, "test key"))
    body = base64.b64decode(envelope["payload"])
    signature = base64.b64decode(envelope["signatures"][0]["sig"])
    message = _pae(envelope["payloadType"], body)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        key.public_key().verify(signature, message)
    else:
        key.public_key().verify(signature, message, ec.ECDSA(hashes.SHA256()))
    assert body == b'{"_type": "x"}' and envelope["payloadType"] == "application/vnd.in-toto+json"


def test_keys_xbuild_does_not_sign_with_are_refused_clearly():
    rsa = b"-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n"
    with pytest.raises(ConfigError, match="not an unencrypted PEM private key"):
        dsse.load_private(rsa, "XBUILD_SIGNING_KEY")
    p384 = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    with pytest.raises(ConfigError, match="ed25519 or ECDSA P-256 only"):
        dsse.load_private(p384, "XBUILD_SIGNING_KEY")


def _folder(tmp_path, key=None):
    """A build folder as the attest step leaves it (one archive, manifest, SBOMs, SHA256SUMS)."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "app-rpi3.tar.gz").write_bytes(os.urandom(64))
    (out / "manifest.json").write_text("{}\n")
    digest = hashlib.sha256((out / "app-rpi3.tar.gz").read_bytes()).hexdigest()
    facts = sbom.Facts("app", "1.0", "rpi3", "trixie", "ab" * 32, 0, "xbuild-test",
                       (sbom.Artifact("app-rpi3.tar.gz", digest, 64),))
    (out / sbom.SPDX_NAME).write_bytes(sbom.spdx(facts))
    (out / sbom.CYCLONEDX_NAME).write_bytes(sbom.cyclonedx(facts))
    names = ["app-rpi3.tar.gz", "manifest.json", sbom.SPDX_NAME, sbom.CYCLONEDX_NAME]
    sums = {n: hashlib.sha256((out / n).read_bytes()).hexdigest() for n in names}
    (out / "SHA256SUMS").write_text("".join(f"{d}  {n}\n" for n, d in sums.items()))
    statement = provenance.dumps(provenance.statement(sums, {"target": "rpi3"}, "ab" * 32, {}, [],
                                                      {"id": "test"}, "b1", 0, 1))
    if key is None:
        (out / provenance.UNSIGNED_NAME).write_bytes(statement)
    else:
        (out / provenance.SIGNED_NAME).write_bytes(dsse.dumps(dsse.sign(statement, key)))
    return out


def test_a_signed_build_verifies_and_every_alteration_is_named(tmp_path):
    key = ed25519.Ed25519PrivateKey.generate()
    out = _folder(tmp_path, key)
    assert check.verify(out, key.public_key()).ok
    other = ed25519.Ed25519PrivateKey.generate().public_key()
    assert any("no signature by key" in p for p in check.verify(out, other).problems)
    (out / "app-rpi3.tar.gz").write_bytes(b"tampered")
    problems = check.verify(out, key.public_key()).problems
    assert any(p.startswith("app-rpi3.tar.gz: sha256") and "the provenance" in p for p in problems)
    assert any("sbom.spdx.json's" in p for p in problems) and any("SHA256SUMS's" in p for p in problems)


def test_a_tampered_sbom_fails_the_signature_subjects(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    out = _folder(tmp_path, key)
    doc = json.loads((out / sbom.CYCLONEDX_NAME).read_text())
    doc["components"][0]["hashes"][0]["content"] = "00" * 32
    (out / sbom.CYCLONEDX_NAME).write_text(json.dumps(doc))
    problems = check.verify(out, key.public_key()).problems
    assert any(p.startswith("sbom.cdx.json: sha256") for p in problems)
    assert any("sbom.cdx.json's" in p for p in problems)  # its artifact digest no longer matches


def test_a_tampered_envelope_payload_is_refused(tmp_path):
    key = ed25519.Ed25519PrivateKey.generate()
    out = _folder(tmp_path, key)
    envelope = json.loads((out / provenance.SIGNED_NAME).read_text())
    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["subject"][0]["digest"]["sha256"] = "00" * 32
    envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    (out / provenance.SIGNED_NAME).write_text(json.dumps(envelope))
    assert any("no signature by key" in p for p in check.verify(out, key.public_key()).problems)


def test_unsigned_builds_say_so_and_fail_when_a_key_is_required(tmp_path):
    out = _folder(tmp_path)
    report = check.verify(out, None)
    assert report.ok and not report.signed and any("unsigned" in n for n in report.notes)
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    assert any("unsigned" in p for p in check.verify(out, key).problems)


def test_links_in_the_folder_are_not_followed(tmp_path):
    out = _folder(tmp_path)
    secret = tmp_path / "elsewhere"
    secret.write_bytes((out / "app-rpi3.tar.gz").read_bytes())
    (out / "app-rpi3.tar.gz").unlink()
    (out / "app-rpi3.tar.gz").symlink_to(secret)
    assert any("missing from the folder" in p for p in check.verify(out, None).problems)


def test_the_signing_key_never_reaches_a_build(tmp_path, monkeypatch):
    from xbuild.pipeline import spec as specs
    from xbuild.request import BuildRequest
    monkeypatch.setenv("XBUILD_SIGNING_KEY", "/the/operators/key.pem")
    (tmp_path / "Makefile").write_text("all:\n\ttrue\n")
    (tmp_path / "xbuild.toml").write_text('[build]\npass_env = ["HOME", "XBUILD_SIGNING_KEY"]\n')
    with pytest.raises(ConfigError, match="never enters a build container"):  # refused as the file is read
        specs.resolve(tmp_path, BuildRequest("rpi3"), out=tmp_path / "out")


@pytest.mark.parametrize("change", [
    {"name": "../../evil"}, {"name": "a/b"}, {"options": {"version": "../1"}}, {"options": {"mode": "rm"}},
    {"options": {"source_date_epoch": "0"}}, {"artifacts": [{"name": "../x.tar.gz", "sha256": "a"}]},
])
def test_a_reference_whose_manifest_would_name_paths_elsewhere_is_refused(tmp_path, change):
    """verify --against reads a published build's manifest, which anyone with the store may write:
    what becomes a file name or a request is checked before anything is built."""
    from xbuild.errors import StoreError
    from xbuild.pipeline import rebuild
    good = {"name": "app", "source_tree_sha256": "ab" * 32, "files": [{"path": "bin/app", "sha256": "c"}],
            "artifacts": [{"name": "app-rpi3.tar.gz", "sha256": "d"}],
            "options": {"target": "rpi3", "os": "trixie", "mode": "cross", "version": "1.0",
                        "source_date_epoch": 315532800}}
    (tmp_path / "manifest.json").write_text(json.dumps(good))
    assert rebuild._manifest(tmp_path, "ref")["name"] == "app"
    bad = {**good, **{k: v for k, v in change.items() if k != "options"},
           "options": {**good["options"], **change.get("options", {})}}
    (tmp_path / "manifest.json").write_text(json.dumps(bad))
    with pytest.raises(StoreError, match="not one xbuild wrote"):
        rebuild._manifest(tmp_path, "ref")

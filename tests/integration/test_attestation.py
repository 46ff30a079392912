"""Every build's SBOMs and provenance, from real builds (issue 21): validated by independent
libraries, naming the exact Debian packages the builder image holds (asked of the image here with
dpkg-query, not through xbuild), byte-identical across clean builds, signed and checked, and a
published build rebuilt by `verify --against` from a real S3 server."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import uuid
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from tests.helpers import xbuild

pytestmark = pytest.mark.integration


def _installed(image: str, package: str) -> str:
    """The package's version in the image, asked of dpkg in a container of it."""
    proc = subprocess.run(["docker", "run", "--rm", "--network", "none", image, "dpkg-query", "-W",
                           "-f", "${Version}", package], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def _purls(out: Path) -> set[str]:
    doc = json.loads((out / "sbom.cdx.json").read_text())
    return {c["purl"] for c in doc["components"] if "purl" in c}


@pytest.mark.parametrize("target,os,package,arch", [
    ("rpi3", "bullseye", "libssl1.1", "armhf"),     # the OpenSSL example, Raspberry Pi OS bullseye
    ("rpi0", None, "libssl3t64", "armhf"),          # ARMv6 through zig, trixie
    ("jetson-nano", None, "libssl1.1", "arm64"),    # L4T R32 through zig at glibc 2.27
])
def test_the_sbom_names_the_releases_ssl_package_at_the_version_the_image_holds(builds, target, os, package, arch):
    result = builds.get("openssl-version", target, os=os)
    out = Path(result["manifest"]).parent
    manifest = json.loads((out / "manifest.json").read_text())
    version = _installed(manifest["image"]["id"], f"{package}:{arch}")
    purl = f"pkg:deb/debian/{package}@{version.replace(':', '%3A').replace('+', '%2B')}?arch={arch}"
    assert purl in _purls(out)
    spdx = parse_file(str(out / "sbom.spdx.json"))
    assert validate_full_spdx_document(spdx) == []
    assert purl in {ref.locator for p in spdx.packages for ref in p.external_references}
    (archive,) = [p for p in spdx.packages if p.spdx_id.startswith("SPDXRef-Artifact-")]
    assert archive.checksums[0].value == result["artifacts"][0]["sha256"]
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str((out / "sbom.cdx.json").read_text()) is None
    sums = (out / "SHA256SUMS").read_text()
    assert "  sbom.spdx.json\n" in sums and "  sbom.cdx.json\n" in sums
    statement = json.loads((out / "provenance.intoto.json").read_text())
    subjects = {s["name"]: s["digest"]["sha256"] for s in statement["subject"]}
    assert subjects[result["artifacts"][0]["path"].rsplit("/", 1)[1]] == result["artifacts"][0]["sha256"]
    assert statement["predicate"]["buildDefinition"]["externalParameters"]["target"] == target


def test_two_clean_builds_give_byte_identical_sboms(builds, tmp_path):
    first = Path(builds.get("openssl-version", "rpi3", os="bullseye")["manifest"]).parent
    proc = xbuild("--target", "rpi3", "--os", "bullseye", builds.project("openssl-version"), "--no-cache",
                  "--no-compiler-cache", "--out", tmp_path / "again", "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("sbom.spdx.json", "sbom.cdx.json"):
        assert (tmp_path / "again" / name).read_bytes() == (first / name).read_bytes(), name


def _keys(tmp_path: Path) -> tuple[Path, Path, Path]:
    key = ed25519.Ed25519PrivateKey.generate()
    private = tmp_path / "signing.pem"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    public = tmp_path / "signing.pub"
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    other = tmp_path / "other.pub"
    other.write_bytes(ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public, other


def test_a_signed_published_build_verifies_rebuilds_and_catches_tampering(builds, s3_env, tmp_path):
    private, public, other = _keys(tmp_path)
    store = f"s3://xbuild-attest/{uuid.uuid4().hex[:10]}"
    proc = xbuild("--target", "rpi3", builds.project("hello-make"), "--no-cache", "--out", tmp_path / "out",
                  "--publish", store, "--create-bucket", "--json", env={"XBUILD_SIGNING_KEY": str(private)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    build = f"{store}/{result['build_id']}"
    envelope = json.loads((tmp_path / "out" / "provenance.dsse.json").read_text())
    # The signature, checked with the public key alone (DSSE's PAE spelled out here).
    body = base64.b64decode(envelope["payload"])
    kind = envelope["payloadType"].encode()
    message = b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(body), body)
    key = serialization.load_pem_public_key(public.read_bytes())
    assert isinstance(key, ed25519.Ed25519PublicKey)
    key.verify(base64.b64decode(envelope["signatures"][0]["sig"]), message)

    assert xbuild("attest", "verify", "--key", public, build).returncode == 0
    wrong = xbuild("attest", "verify", "--key", other, build)
    assert wrong.returncode == 58 and "no signature by key" in wrong.stderr
    rebuilt = xbuild("verify", "--against", build, "--json")
    assert rebuilt.returncode == 0, rebuilt.stderr[-3000:]
    assert json.loads(rebuilt.stdout)["status"] == "reproducible"

    # Someone with write access to the store swaps the archive and fixes up the store's record.
    import boto3  # the test's own S3 client: the store as an attacker sees it
    s3 = boto3.client("s3", endpoint_url=s3_env.env("")["XBUILD_S3_ENDPOINT_URL"])
    bucket, prefix = store.removeprefix("s3://").split("/", 1)
    record_key = f"{prefix}/{result['build_id']}/manifest.json"
    record = json.loads(s3.get_object(Bucket=bucket, Key=record_key)["Body"].read())
    for f in record["files"]:
        if f["name"].endswith(".tar.gz"):
            data = s3.get_object(Bucket=bucket, Key=f"{prefix}/{f['object']}")["Body"].read() + b"\0"
            f["sha256"] = sha = hashlib.sha256(data).hexdigest()
            f["size"], f["object"] = len(data), f"objects/sha256/{sha}"
            s3.put_object(Bucket=bucket, Key=f"{prefix}/objects/sha256/{sha}", Body=data)
    s3.put_object(Bucket=bucket, Key=record_key, Body=json.dumps(record).encode())
    tampered = xbuild("attest", "verify", "--key", public, build)
    assert tampered.returncode == 58 and "differs from the provenance" in tampered.stderr
    differs = xbuild("verify", "--against", build, "--json")
    assert differs.returncode == 16, differs.stderr[-3000:]
    archive = Path(result["artifacts"][0]["path"]).name
    assert json.loads(differs.stdout)["differences"] == [f"(archive) {archive}"]

"""A build's software bill of materials, from what the build knew (not guessed from the binary):
SPDX 2.3 JSON and CycloneDX 1.6 JSON, rendered from one `Facts`.

Byte-identical for the same inputs: no clock (the time is SOURCE_DATE_EPOCH's), no random ids
(the SPDX namespace and the CycloneDX serial number derive from the content), everything sorted."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote

from xbuild.attest import licenses

SPDX_NAME, CYCLONEDX_NAME = "sbom.spdx.json", "sbom.cdx.json"
NAMESPACE = "https://xbuild.dev/spdx"  # documented in docs/attestation.md


@dataclass(frozen=True)
class Artifact:
    """A file the build delivers (the archive, the .deb, the wheel)."""
    name: str
    sha256: str
    size: int
    holds_files: bool = False  # the archive of the build's tree: Facts.files are its contents


@dataclass(frozen=True)
class File:
    """A file inside the delivered archive."""
    path: str
    sha256: str
    sha1: str  # SPDX 2.3 requires a file's SHA1


@dataclass(frozen=True)
class Component:
    """Something the build was made from or with: a Debian package of the board's release, a
    toolchain, a Python, Rust or Go dependency."""
    ecosystem: str            # deb, pypi, cargo, golang, generic
    name: str
    version: str
    role: str                 # runtime (the board needs it), build (compiled/linked against), tool
    arch: str = ""
    licenses: tuple[str, ...] = ()   # Debian's names (deb), else SPDX expressions as given
    checksum: str = ""        # "SHA256:<hex>" where the ecosystem records one
    source: str = ""          # the Debian source package "name version"

    @property
    def purl(self) -> str:
        # A runtime depends the cross image does not hold has no exact version: none is claimed.
        version = "@" + quote(self.version, safe="") if self.version else ""
        if self.ecosystem == "deb":
            return f"pkg:deb/debian/{quote(self.name, safe='')}{version}?arch={self.arch}"
        if self.ecosystem == "golang":
            return f"pkg:golang/{quote(self.name, safe='/')}{version}"
        name = self.name.lower() if self.ecosystem == "pypi" else self.name  # PEP 503, as purl asks
        return f"pkg:{self.ecosystem}/{quote(name, safe='')}{version}"

    @property
    def license(self) -> str | None:
        if self.ecosystem == "deb":
            return licenses.expression(self.licenses)
        return " AND ".join(self.licenses) or None


@dataclass(frozen=True)
class Facts:
    name: str
    version: str
    target: str               # the board
    os: str                   # its OS release
    source_sha256: str        # xbuild's source tree hash (sources.tree_hash)
    epoch: int                # SOURCE_DATE_EPOCH: the documents' time
    tool: str                 # "xbuild-<version>"
    artifacts: tuple[Artifact, ...]
    files: tuple[File, ...] = ()
    components: tuple[Component, ...] = field(default=())

    @property
    def created(self) -> str:
        return datetime.fromtimestamp(self.epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def digest(self) -> str:
        """What identifies this bill of materials: a hash of everything in it."""
        blob = json.dumps([self.name, self.version, self.target, self.os, self.source_sha256, self.epoch,
                           self.tool, [a.__dict__ for a in self.artifacts], [f.__dict__ for f in self.files],
                           [c.__dict__ for c in self.components]], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()


def _dump(doc: dict) -> bytes:
    return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _ref(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9.\-]+", "-", "-".join(parts)).strip("-")


# --- SPDX 2.3 ------------------------------------------------------------------------------------

_SPDX_RELATION = {"runtime": "RUNTIME_DEPENDENCY_OF", "build": "BUILD_DEPENDENCY_OF", "tool": "BUILD_TOOL_OF",
                  "static": "STATIC_LINK"}


def _verification_code(files: tuple[File, ...]) -> str:
    """SPDX's package verification code: the SHA1 of the files' sorted SHA1s, concatenated."""
    return hashlib.sha1("".join(sorted(f.sha1 for f in files)).encode()).hexdigest()


def _spdx_package_id(c: Component) -> str:
    """Readable, and unique though SPDX ids allow fewer characters than names (g++ and g--)."""
    return f"SPDXRef-Package-{_ref(c.ecosystem, c.name, c.arch)}-{hashlib.sha256(c.purl.encode()).hexdigest()[:8]}"


def spdx(facts: Facts) -> bytes:
    doc_id, project = "SPDXRef-DOCUMENT", "SPDXRef-Project"
    packages: list[dict] = [{
        "SPDXID": project, "name": facts.name, "versionInfo": facts.version,
        "downloadLocation": "NOASSERTION", "filesAnalyzed": False, "primaryPackagePurpose": "SOURCE",
        "licenseConcluded": "NOASSERTION", "licenseDeclared": "NOASSERTION", "copyrightText": "NOASSERTION",
        "sourceInfo": f"source tree sha256 {facts.source_sha256} (xbuild's tree hash)",
    }]
    relationships: list[dict] = []
    refs: set[str] = set()
    for i, a in enumerate(facts.artifacts):
        spdx_id = f"SPDXRef-Artifact-{i}-{_ref(a.name)}"
        holds = a.holds_files and bool(facts.files)
        packages.append({
            "SPDXID": spdx_id, "name": a.name, "versionInfo": facts.version, "packageFileName": a.name,
            "downloadLocation": "NOASSERTION", "filesAnalyzed": holds,
            **({"packageVerificationCode": {"packageVerificationCodeValue": _verification_code(facts.files)}}
               if holds else {}),
            "primaryPackagePurpose": "INSTALL" if a.name.endswith((".deb", ".whl")) else "ARCHIVE",
            "checksums": [{"algorithm": "SHA256", "checksumValue": a.sha256}],
            "licenseConcluded": "NOASSERTION", "licenseDeclared": "NOASSERTION", "copyrightText": "NOASSERTION",
            "comment": f"for {facts.target} ({facts.os}), {a.size} bytes",
        })
        relationships.append({"spdxElementId": doc_id, "relationshipType": "DESCRIBES", "relatedSpdxElement": spdx_id})
        relationships.append({"spdxElementId": spdx_id, "relationshipType": "GENERATED_FROM",
                              "relatedSpdxElement": project})
        for j, _ in enumerate(facts.files if holds else ()):
            relationships.append({"spdxElementId": spdx_id, "relationshipType": "CONTAINS",
                                  "relatedSpdxElement": f"SPDXRef-File-{j}"})
        for c in facts.components:
            component_id = _spdx_package_id(c)
            relation = _SPDX_RELATION[c.role]
            if relation == "STATIC_LINK":
                relationships.append({"spdxElementId": spdx_id, "relationshipType": relation,
                                      "relatedSpdxElement": component_id})
            else:
                relationships.append({"spdxElementId": component_id, "relationshipType": relation,
                                      "relatedSpdxElement": spdx_id})
    files = [{"SPDXID": f"SPDXRef-File-{j}", "fileName": f"./{f.path}",
              "checksums": [{"algorithm": "SHA1", "checksumValue": f.sha1},
                            {"algorithm": "SHA256", "checksumValue": f.sha256}],
              "licenseConcluded": "NOASSERTION", "copyrightText": "NOASSERTION"}
             for j, f in enumerate(facts.files)]
    for c in facts.components:
        expression = c.license
        refs.update(licenses.references(expression))
        package = {
            "SPDXID": _spdx_package_id(c), "name": c.name,
            "versionInfo": c.version, "downloadLocation": "NOASSERTION", "filesAnalyzed": False,
            "primaryPackagePurpose": "APPLICATION" if c.role == "tool" else "LIBRARY",
            "licenseConcluded": "NOASSERTION", "licenseDeclared": expression or "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                              "referenceLocator": c.purl}],
        }
        if c.ecosystem == "deb":
            package["supplier"] = "Organization: Debian"
        if c.source:
            package["sourceInfo"] = f"built from the Debian source package {c.source}"
        if c.checksum:
            algorithm, _, value = c.checksum.partition(":")
            package["checksums"] = [{"algorithm": algorithm, "checksumValue": value}]
        packages.append(package)
    doc = {
        "spdxVersion": "SPDX-2.3", "dataLicense": "CC0-1.0", "SPDXID": doc_id,
        "name": f"{facts.name}-{facts.target}",
        "documentNamespace": f"{NAMESPACE}/{quote(facts.name, safe='')}/{facts.target}/{facts.digest()}",
        "creationInfo": {"created": facts.created, "creators": [f"Tool: {facts.tool}"]},
        "packages": packages, "files": files, "relationships": relationships,
    }
    if refs:
        doc["hasExtractedLicensingInfos"] = [
            {"licenseId": ref, "name": ref.removeprefix("LicenseRef-debian-").removeprefix("LicenseRef-"),
             "extractedText": "A license named so in a Debian package's copyright file "
                              "(/usr/share/doc/<package>/copyright in the builder image)"}
            for ref in sorted(refs)]
    return _dump(doc)


# --- CycloneDX 1.6 -------------------------------------------------------------------------------

_CDX_SCOPE = {"runtime": "required", "static": "required", "build": "excluded", "tool": "excluded"}


def cyclonedx(facts: Facts) -> bytes:
    project = "project"
    components: list[dict] = []
    for a in facts.artifacts:
        components.append({"type": "file", "bom-ref": f"artifact:{a.name}", "name": a.name,
                           "version": facts.version, "hashes": [{"alg": "SHA-256", "content": a.sha256}],
                           "properties": [{"name": "xbuild:target", "value": facts.target},
                                          {"name": "xbuild:os", "value": facts.os},
                                          {"name": "xbuild:size", "value": str(a.size)}]})
    for f in facts.files:
        components.append({"type": "file", "bom-ref": f"file:{f.path}", "name": f.path,
                           "hashes": [{"alg": "SHA-1", "content": f.sha1}, {"alg": "SHA-256", "content": f.sha256}]})
    runtime = []
    for c in facts.components:
        entry: dict = {"type": "application" if c.role == "tool" else "library", "bom-ref": c.purl,
                       "name": c.name, "version": c.version, "purl": c.purl, "scope": _CDX_SCOPE[c.role],
                       "properties": [{"name": "xbuild:role", "value": c.role}]}
        if c.license:
            entry["licenses"] = [{"expression": c.license}]
        if c.source:
            entry["properties"].append({"name": "xbuild:debian-source", "value": c.source})
        if c.checksum:
            algorithm, _, value = c.checksum.partition(":")
            entry["hashes"] = [{"alg": algorithm.replace("SHA", "SHA-"), "content": value}]
        if c.role in ("runtime", "static"):
            runtime.append(c.purl)
        components.append(entry)
    serial = uuid.UUID(facts.digest()[:32])
    doc = {
        "bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1,
        "serialNumber": f"urn:uuid:{uuid.UUID(int=serial.int, version=5)}",
        "metadata": {
            "timestamp": facts.created,
            "tools": {"components": [{"type": "application", "name": "xbuild",
                                      "version": facts.tool.removeprefix("xbuild-")}]},
            "component": {"type": "application", "bom-ref": project, "name": facts.name, "version": facts.version,
                          "properties": [{"name": "xbuild:source-tree-sha256", "value": facts.source_sha256}]},
        },
        "components": components,
        "dependencies": [{"ref": project, "dependsOn": sorted(set(runtime))},
                         *({"ref": f"artifact:{a.name}", "dependsOn": [project]} for a in facts.artifacts)],
    }
    return _dump(doc)

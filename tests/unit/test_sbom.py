"""The SBOMs xbuild writes, checked by independent validators (spdx-tools' and
cyclonedx-python-lib's strict JSON schema validation), not by xbuild's own code."""

from __future__ import annotations

import json

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from xbuild.attest import licenses, sbom

FACTS = sbom.Facts(
    name="sslversion", version="1.2+git3", target="rpi3", os="trixie", source_sha256="ab" * 32,
    epoch=315532800, tool="xbuild-0.1.0",
    artifacts=(sbom.Artifact("sslversion-rpi3.tar.gz", "cd" * 32, 3009, holds_files=True),
               sbom.Artifact("sslversion_1.2_armhf.deb", "ef" * 32, 4000)),
    files=(sbom.File("bin/sslversion", "01" * 32, "02" * 20), sbom.File("share/doc/x y.txt", "03" * 32, "04" * 20)),
    components=(
        sbom.Component("deb", "libssl3t64", "3.5.9-1~deb13u1", "runtime", "armhf",
                       ("Apache-2.0", "Artistic or GPL-1+"), source="openssl 3.5.9-1~deb13u1"),
        sbom.Component("deb", "zlib1g", "1:1.3.dfsg+really1.3.1-1+deb13u1", "build", "armhf", ("Zlib",)),
        sbom.Component("deb", "gcc-14-arm-linux-gnueabihf", "14.2.0-19cross1", "tool", "amd64"),
        sbom.Component("deb", "libfoo", "1.0", "build", "armhf", ("GPL-2+ with OpenSSL exception", "public-domain")),
        sbom.Component("pypi", "Setuptools", "80.9.0", "build", checksum="SHA256:" + "aa" * 32),
        sbom.Component("cargo", "libc", "0.2.169", "static", checksum="SHA256:" + "bb" * 32),
        sbom.Component("golang", "golang.org/x/sys", "v0.30.0", "static"),
    ))


def test_spdx_is_valid_spdx_2_3(tmp_path):
    path = tmp_path / "sbom.spdx.json"
    path.write_bytes(sbom.spdx(FACTS))
    document = parse_file(str(path))
    assert validate_full_spdx_document(document) == []
    purls = {ref.locator for p in document.packages for ref in p.external_references}
    assert "pkg:deb/debian/libssl3t64@3.5.9-1~deb13u1?arch=armhf" in purls
    assert "pkg:deb/debian/zlib1g@1%3A1.3.dfsg%2Breally1.3.1-1%2Bdeb13u1?arch=armhf" in purls
    assert {"pkg:pypi/setuptools@80.9.0", "pkg:cargo/libc@0.2.169", "pkg:golang/golang.org/x/sys@v0.30.0"} <= purls
    (ssl,) = [p for p in document.packages if p.name == "libssl3t64"]
    assert str(ssl.license_declared) == "Apache-2.0 AND (Artistic-1.0 OR GPL-1.0-or-later)"


def test_cyclonedx_is_valid_cyclonedx_1_6():
    text = sbom.cyclonedx(FACTS).decode()
    errors = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    assert errors is None, errors
    doc = json.loads(text)
    assert doc["metadata"]["component"]["name"] == "sslversion"
    (ssl,) = [c for c in doc["components"] if c["name"] == "libssl3t64"]
    assert ssl["scope"] == "required" and ssl["purl"].startswith("pkg:deb/debian/libssl3t64@")
    (deps,) = [d for d in doc["dependencies"] if d["ref"] == "project"]
    assert deps["dependsOn"] == sorted(["pkg:deb/debian/libssl3t64@3.5.9-1~deb13u1?arch=armhf",
                                        "pkg:cargo/libc@0.2.169", "pkg:golang/golang.org/x/sys@v0.30.0"])


def test_the_same_facts_give_the_same_bytes_and_other_facts_other_ids():
    assert sbom.spdx(FACTS) == sbom.spdx(FACTS) and sbom.cyclonedx(FACTS) == sbom.cyclonedx(FACTS)
    other = sbom.Facts(**{**FACTS.__dict__, "source_sha256": "ff" * 32})
    assert json.loads(sbom.spdx(other))["documentNamespace"] != json.loads(sbom.spdx(FACTS))["documentNamespace"]
    assert json.loads(sbom.cyclonedx(other))["serialNumber"] != json.loads(sbom.cyclonedx(FACTS))["serialNumber"]


@pytest.mark.parametrize("names,expected", [
    (("GPL-2+",), "GPL-2.0-or-later"),
    (("Expat", "BSD-3-clause"), "MIT AND BSD-3-Clause"),
    (("LGPL-2.1+ or GPL-3",), "LGPL-2.1-or-later OR GPL-3.0-only"),
    (("Foo License",), "LicenseRef-debian-Foo-License"),
    ((), None),
])
def test_debian_license_names_become_spdx_expressions(names, expected):
    assert licenses.expression(names) == expected

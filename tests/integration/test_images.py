"""Images made from the Debian mirror carry the right platform and are reused, not rebuilt."""

from __future__ import annotations

import json

import pytest

from tests.helpers import xbuild

pytestmark = pytest.mark.integration


# rpi0's runtime is Debian armhf, ARMv7 (its programs are ARMv6; Debian's userland is not): rpi3's
@pytest.mark.parametrize("target,arch,variant", [("rpi3", "arm", "v7"), ("rpi0", "arm", "v7"),
                                                 ("arm64", "arm64", "v8")])
def test_runtime_images_carry_the_board_platform(builds, target, arch, variant):
    from xbuild.board import targets
    from xbuild.containers import images
    from xbuild.containers.engine import client
    builds.get("hello-make", target)  # its run made the runtime image
    image = images.runtime(targets.get(target), log=lambda line: None)
    assert not image.built
    attrs = client().images.get(image.id).attrs
    assert (attrs["Os"], attrs["Architecture"], attrs.get("Variant")) == ("linux", arch, variant)


def test_images_are_reused_and_listed(builds):
    first = builds.get("hello-make", "rpi3")
    proc = xbuild("images", "build", "--target", "rpi3")
    assert proc.returncode == 0 and "up to date" in proc.stdout and "built)" not in proc.stdout
    listing = json.loads(xbuild("images", "ls", "--json").stdout)["images"]
    ids = {i["id"] for i in listing}
    assert first["image"] in ids
    kinds = {i["kind"] for i in listing}
    assert {"base", "builder"} <= kinds
    cross = next(i for i in listing if i["id"] == first["image"])
    assert cross["platform"] == "linux/amd64"  # cross builders run natively

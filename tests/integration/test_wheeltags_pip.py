"""The board's own pip takes the wheels wheeltags names (issue 19, requirement 4): a wheel tagged
for the board and release is installed with the release's python3-pip in the release's userland
under qemu, with the board's QEMU_CPU (its uname -m), and imported; a wheel tagged for another
board or release is refused by the same pip.

The Pi Zero/1 run Raspberry Pi OS, which is not on this machine's mirror, and Debian's armhf
python3 is ARMv7 code that dies on the arm1176: its stand-in is Debian armel's pip under
QEMU_CPU=arm1176, which reports armv6l as the Pi Zero's kernel does (the platform tag is all pip
reads: armv6l has no manylinux tag, so the float ABI is not looked at)."""

from __future__ import annotations

import pytest

from tests.helpers import run_script
from tests.wheelmaker import make_wheel
from xbuild.artifact import wheeltags
from xbuild.board import targets
from xbuild.containers import images

pytestmark = pytest.mark.integration

PROBE = {"tagprobe/__init__.py": "OK = 'imported'\n"}
INSTALL = ("python3 -m pip install --no-index --no-deps --target /tmp/site /wheels/{file} "
           "&& PYTHONPATH=/tmp/site python3 -c 'import tagprobe; print(tagprobe.OK)'")


def board_pip(board: str, release: str, qemu_cpu: str | None, wheel_dir, file: str,
              userland: str | None = None) -> tuple[int, str]:
    """Install `file` with the pip of `userland` (default: the board's) on `release`, the CPU
    being `qemu_cpu`; its exit status and output."""
    userland_target = targets.get(userland or board).with_os(release)
    image = images.runtime(userland_target, lambda _: None, packages=("python3-pip",))
    env = {"PIP_BREAK_SYSTEM_PACKAGES": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    if qemu_cpu:
        env["QEMU_CPU"] = qemu_cpu
    return run_script(image.tag, INSTALL.format(file=file), env, network_mode="none",
                      volumes={str(wheel_dir): {"bind": "/wheels", "mode": "ro"}})


# (board, release, QEMU_CPU, the userland whose pip stands in): each release's own pip, the oldest
# with PEP 600 (bullseye's 20.3.4) included; armel under the arm926 (uname armv5tel)
CASES = [("rpi3", "trixie", "max", None), ("rpi3", "bookworm", "cortex-a7", None),
         ("rpi3", "bullseye", "cortex-a7", None), ("rpi4", "trixie", "cortex-a72", None),
         ("armel", "bookworm", "arm926", None), ("rpi0", "bookworm", "arm1176", "armel")]


@pytest.mark.parametrize("board,release,cpu,userland", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_the_boards_pip_installs_the_wheel(engine, tmp_path, board, release, cpu, userland):
    tags = wheeltags.for_board(targets.get(board).with_os(release))
    wheel = make_wheel(tmp_path, "tagprobe", "1.0", str(tags), PROBE)
    status, out = board_pip(board, release, cpu, tmp_path, wheel.name, userland)
    assert status == 0, out
    assert out.strip().splitlines()[-1] == "imported"


@pytest.mark.parametrize("board,release,cpu,userland,wrong", [
    ("rpi3", "bookworm", "cortex-a7", None, ("rpi3", "trixie")),     # glibc 2.41, cp313 on bookworm
    ("rpi3", "trixie", "max", None, ("rpi0", "trixie")),             # armv6l on an ARMv7 Pi
    ("rpi0", "bookworm", "arm1176", "armel", ("rpi2", "bookworm")),  # ARMv7 code on a Pi Zero
    ("rpi3", "trixie", "cortex-a7", None, ("armel", "trixie")),      # soft-float code in armhf
    ("rpi4", "trixie", "cortex-a72", None, ("rpi3", "trixie")),      # 32-bit ARM on a 64-bit OS
], ids=["trixie-on-bookworm", "armv6l-on-rpi3", "armv7-on-rpi0", "armel-on-armhf", "armhf-on-arm64"])
def test_the_boards_pip_refuses_another_boards_wheel(engine, tmp_path, board, release, cpu, userland, wrong):
    tags = wheeltags.for_board(targets.get(wrong[0]).with_os(wrong[1]))
    wheel = make_wheel(tmp_path, "tagprobe", "1.0", str(tags), PROBE)
    status, out = board_pip(board, release, cpu, tmp_path, wheel.name, userland)
    assert status != 0 and "is not a supported wheel on this platform" in out, out

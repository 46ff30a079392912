#!/usr/bin/env bash
# The whole test suite on a fresh Debian/Ubuntu machine: set up everything the tests need (the
# Docker engine, binfmt handlers, cross compilers, Redis), then run every tier: unit, integration,
# security and the wheel tier (tests/wheel/: the built wheel in a clean virtualenv, no test extras).
# Extra arguments go to pytest (e.g. `scripts/test.sh -m "not integration"`). Exits non-zero when
# the set-up or any test fails.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --tests
# Integration tests fail (not skip) when their real parts are missing: a green run proves them.
export XBUILD_REQUIRE_INTEGRATION=1
# The zig images (the Pi Zero's; the Jetson's bullseye arm64 stack) are the slowest to make and are
# needed only part-way through: they are built now, beside the first tests, which wait on the same
# image lock when they get there rather than build an image twice. Its log: .prebuild.log.
# (rpi3's emulate and hybrid images are not: apt under qemu beside the tests on two cores made
# the suite 2 minutes slower, 1873 s against 1742 s.)
if [ "${XBUILD_PREBUILD:-1}" = 1 ]; then
  setsid sh -c '.venv/bin/xbuild images build --target rpi0 &&
                .venv/bin/xbuild images build --target jetson-nano' > .prebuild.log 2>&1 &
  prebuild=$!
  trap 'kill -- -"$prebuild" 2>/dev/null || true' EXIT  # its whole group, if still at work
fi
# --durations: the slowest tests in the CI log, to keep the suite inside its time.
.venv/bin/python -m pytest -ra --durations=25 "$@"

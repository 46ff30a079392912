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
exec .venv/bin/python -m pytest -ra "$@"

#!/usr/bin/env bash
# Set up xbuild on a fresh Debian/Ubuntu machine, idempotently: the Docker engine (started when no
# init system runs it), qemu-user-static with binfmt handlers (F flag), debootstrap, and a
# virtualenv at .venv with xbuild installed. `--tests` adds what the test suite needs.
set -euo pipefail
cd "$(dirname "$0")/.."

tests=0
[ "${1:-}" = "--tests" ] && tests=1
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
say() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }

packages=(docker.io qemu-user-static binfmt-support debootstrap python3-venv python3-pip git
          ca-certificates tar gzip)
if [ "$tests" = 1 ]; then
  # Real ELF files for the ABI-gate unit tests, and a native toolchain for bench/.
  packages+=(gcc libc6-dev make cmake ninja-build gcc-arm-linux-gnueabihf libc6-dev-armhf-cross
             gcc-arm-linux-gnueabi libc6-dev-armel-cross gcc-aarch64-linux-gnu libc6-dev-arm64-cross
             redis-server            # the tests start their own Redis (and SeaweedFS, from PyPI)
             rabbitmq-server         # ... and their own RabbitMQ node (own ports and epmd: a system node is left alone)
             chromium-headless-shell   # a real browser for the service's web page
             docker-registry)          # a real registry for pushing and pulling images
fi
missing=()
for p in "${packages[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  $SUDO apt-get update -q
  # A package this distribution lacks (Ubuntu has no chromium-headless-shell) is named, not fatal:
  # only the tests that need it will say so.
  available=()
  for p in "${missing[@]}"; do
    if apt-cache show "$p" >/dev/null 2>&1; then available+=("$p"); else say "not available here: $p"; fi
  done
  say "installing ${available[*]}"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${available[@]}" >/dev/null
fi

# The Docker engine: use the one running, or start dockerd ourselves when no init system does.
if ! $SUDO docker info >/dev/null 2>&1; then
  if command -v systemctl >/dev/null && systemctl is-system-running >/dev/null 2>&1; then
    say "starting docker with systemd"; $SUDO systemctl start docker
  else
    say "starting dockerd (no init system), log in /var/log/dockerd.log"
    $SUDO sh -c 'nohup dockerd >/var/log/dockerd.log 2>&1 &'
  fi
  for _ in $(seq 60); do $SUDO docker info >/dev/null 2>&1 && break; sleep 1; done
  $SUDO docker info >/dev/null 2>&1 || { say "dockerd did not start: see /var/log/dockerd.log"; exit 1; }
fi

# The virtualenv, with xbuild in it (editable, so targets/ and recipes/ are read from here).
if [ ! -x .venv/bin/python ]; then say "creating .venv"; python3 -m venv .venv; fi
extra=""; [ "$tests" = 1 ] && extra="[test]"
.venv/bin/pip install -q -e ".${extra}"

# binfmt_misc handlers for every architecture a target needs, with the F flag.
$SUDO .venv/bin/xbuild binfmt install
say "ready: $(.venv/bin/xbuild doctor >/dev/null 2>&1 && echo 'xbuild doctor is happy' || echo 'see .venv/bin/xbuild doctor')"

"""The shell script a build container runs: the recipe's steps, then collection into /xbuild/stage.

Steps are the project's own shell (untrusted, but inside the sandbox). Lines starting with
`::xbuild` are progress markers for the terminal, not build output."""

from __future__ import annotations

import shlex

from xbuild.toolchain import ROOT

STAGE = f"{ROOT}/stage"

_COLLECT = r"""
cd "$XBUILD_SRC"
echo "::xbuild collect"
mkdir -p "$XBUILD_OUT" {stage}/files {stage}/meta
# Globs from xbuild.toml `artifacts`, relative to the project root (one per line in the file):
# glob N's matches go to files/N/, by name; xbuild places them by kind or by the glob's dest.
shopt -s globstar nullglob dotglob
n=0
while IFS= read -r pattern; do
  mkdir -p {stage}/files/$n
  IFS=$'\n'
  for f in $pattern; do cp -a "$f" {stage}/files/$n/; done  # unquoted: the glob expands here
  unset IFS
  n=$((n + 1))
done < {root}/artifacts.txt
# No install step and no listed artifacts: take the executables and shared libraries the build
# made (files newer than the stamp written before the first step), placed by kind too.
if [ "$XBUILD_COLLECT_NEW_ELF" = 1 ] && [ -z "$(ls -A "$XBUILD_OUT")" ] &&
   [ -z "$(find {stage}/files -type f -print -quit)" ]; then
  mkdir -p {stage}/files/new
  find . -type f -newer {root}/stamp ! -name '*.o' ! -name '*.a' -print0 | sort -z |
  while IFS= read -r -d '' f; do
    if file -b "$f" | grep -qE '^ELF .*(executable|shared object)'; then cp -a "$f" {stage}/files/new/; fi
  done
fi
{{
  echo "cc: $($CC --version | head -n1)"
  echo "binutils: $(${{AR}} --version | head -n1)"
  # The target's C library: the multiarch package in cross mode, the native one when emulating.
  echo "libc: $(dpkg-query -W -f='${{Version}}' "libc6-dev:$XBUILD_DEBIAN_ARCH" 2>/dev/null ||
                ldd --version | head -n1)"
  echo "make: $(make --version | head -n1)"
  # Only the build system the recipe used: meson --version alone costs a Python start-up.
  case "$XBUILD_RECIPE" in
    cmake) echo "cmake: $(cmake --version | head -n1)" ;;
    meson) echo "meson: $(meson --version)"; echo "ninja: $(ninja --version)" ;;
    autotools) echo "autoconf: $(autoconf --version | head -n1)" ;;
    go) echo "go: $(/opt/go/bin/go env GOVERSION)" ;;
    cargo) echo "rustc: $(rustc --version)"; echo "cargo: $(cargo --version)" ;;
  esac
}} > {stage}/meta/toolchain.txt 2>/dev/null || true
"""


# ccache trims the cache as it writes only now and then (a small cap can stay exceeded after a
# build, measured here with ccache 4.11): past its cap, clean up once, after the build. Both calls
# are bounded: the steps just ran in this cache, and a FIFO they left would block ccache's reads
# (compiler_cache.scrub removes it before the next build; a clean-up cut short is resumed then).
_COMPILER_CACHE_CAP = r"""
if [ -n "${XBUILD_CCACHE:-}" ] && timeout -k 5 30 ccache --print-stats 2>/dev/null |
     awk '$1 == "cache_size_kibibyte" {s = $2} $1 == "max_cache_size_kibibyte" {m = $2}
          END {exit !(m > 0 && s > m)}'; then
  timeout -k 5 300 ccache --cleanup >/dev/null 2>&1 || true
fi
"""


def render(steps: tuple[str, ...], collect_new_elf: bool, src_dir: str = f"{ROOT}/src",
           umask: str = "022", recipe: str = "", finish: str = "") -> str:
    """finish: the toolchain's shell after collection (Toolchain.finish)."""
    lines = ["#!/bin/bash", "set -euo pipefail", f"umask {umask}", f"export XBUILD_SRC={src_dir}",
             f"export XBUILD_RECIPE={shlex.quote(recipe)}",
             f"export XBUILD_COLLECT_NEW_ELF={int(collect_new_elf)}",
             f'touch {ROOT}/stamp', 'sleep 0.01', 'cd "$XBUILD_SRC"']
    for n, step in enumerate(steps, 1):
        # Each step runs in a subshell from the project root, as written in the recipe/xbuild.toml.
        lines.append(f"echo {shlex.quote(f'::xbuild step {n}/{len(steps)}: {step}')}")
        lines += ["(", 'cd "$XBUILD_SRC"', step, ")"]
    lines.append(_COLLECT.format(stage=STAGE, root=ROOT))
    lines.append(finish)
    lines.append(_COMPILER_CACHE_CAP)
    return "\n".join(lines) + "\n"

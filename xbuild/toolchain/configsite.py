"""Autoconf's answers for cross builds: autoconf/<libc>.toml rendered as the CONFIG_SITE file that
a cross build container finds at /xbuild/config.site.

A configure script cannot run its test programs when --build and --host differ, so it guesses,
and old autoconf (2.69) guesses the worst: malloc(0) returns NULL, so the project's malloc becomes
an rpl_malloc it rarely ships. The answers are facts about the board's C library, the same for
every board and release xbuild has (see autoconf/glibc.toml), so they are data, not probes run
under qemu: the same answers whatever the build machine's binfmt handlers, and no qemu-user quirk
(32-bit EOVERFLOW on large inodes) can turn into a wrong answer baked into the artifact.

Each line sets a variable only when it is unset (`${var=value}`): an ac_cv_* from xbuild.toml's
`env` wins, and a CONFIG_SITE there replaces the file altogether (toolchain.environment comes
first, the project's env after it)."""

from __future__ import annotations

import functools
import hashlib
import re
import shlex

from xbuild import schema

# The libc whose answers a cross build gets; musl (--static) has none yet, so it keeps guessing.
GLIBC = "glibc"
PATH = "config.site"  # under /xbuild, beside toolchain.cmake and cross.ini

_ANSWER = schema.text("a configure answer such as yes, no or a short word", r"[A-Za-z0-9_./+-]+")
SITE = schema.Table({
    "description": schema.text(required=True),
    "answers": schema.Names(schema.text("an autoconf cache variable such as ac_cv_func_malloc_0_nonnull",
                                        r"[a-z][a-z0-9]*_cv_\w+"),
                            _ANSWER, required=True, empty=False,
                            convert=lambda d: tuple(sorted(d.items()))),
})


@functools.cache
def answers(libc: str) -> tuple[tuple[str, str], ...]:
    """(cache variable, answer) of autoconf/<libc>.toml, or () when xbuild has none for it."""
    from xbuild import datafiles
    # A site's XBUILD_DATA_DIR may bring its own answers; without them, the installation's.
    path = datafiles.lookup("autoconf", f"{libc}.toml") if re.fullmatch(r"[a-z0-9-]+", libc) else None
    return schema.load(path, SITE, hint="autoconf/glibc.toml shows the form")["answers"] if path else ()


def render(libc: str) -> str:
    """The site file; "" when there are no answers for that libc."""
    found = answers(libc)
    if not found:
        return ""
    lines = [f"# Written by xbuild: what a cross configure cannot run to find out, for {libc} "
             f"(autoconf/{libc}.toml). Each is set only where the environment has not set it."]
    lines += [f"{var}=${{{var}={shlex.quote(value)}}}" for var, value in found]
    return "\n".join(lines) + "\n"


def digest(libc: str) -> str:
    """What the manifest and the cache key record of the answers: a new answer is a new build."""
    text = render(libc)
    return f"{libc}:{hashlib.sha256(text.encode()).hexdigest()[:16]}" if text else ""

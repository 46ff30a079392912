"""The real xbuild CLI, sent a real signal at the moment a named function is entered:

    python -m tests.signal_at MODULE:QUALNAME[#N] SIGNUM xbuild-argument...

A signal from outside lands wherever the process happens to be, and a test hits a moment
(a container being started, the source being copied in) only by luck. Here the process signals
itself when its main thread enters the function (a profile hook; nothing of xbuild is
changed), and the kernel delivers it as it would any other: the handler runs there, in that
function. #N: at its Nth call (default the first). Says `signal-at: sent` on stderr when it did."""

from __future__ import annotations

import os
import sys
import threading


def _signal_at(module: str, qualname: str, signum: int, nth: int) -> None:
    calls = 0

    def profile(frame, event, arg):
        nonlocal calls
        if (event == "call" and frame.f_code.co_qualname == qualname
                and frame.f_globals.get("__name__") == module
                and threading.current_thread() is threading.main_thread()):
            calls += 1
            if calls == nth:
                sys.setprofile(None)
                print("signal-at: sent", file=sys.stderr, flush=True)
                os.kill(os.getpid(), signum)
    sys.setprofile(profile)


def main() -> None:
    where, signum, *args = sys.argv[1:]
    where, _, nth = where.partition("#")
    module, qualname = where.split(":")
    from xbuild.cli import main as xbuild_main
    __import__(module)  # imported before the hook: the signal comes in the function, not an import
    _signal_at(module, qualname, int(signum), int(nth or 1))
    xbuild_main(args)


if __name__ == "__main__":
    main()

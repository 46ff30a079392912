"""Helper threads that a signal may interrupt at any moment.

SIGTERM, SIGHUP and Ctrl-C become exceptions in the main thread (cli.Terminated,
KeyboardInterrupt), raised wherever it happens to be: before a helper thread's start(), or
inside it. The clean-up on the way out then joins a thread that never started, and
Thread.join() raises RuntimeError for that: the signal became an internal error (exit 1) and
the clean-up after the join never ran."""

from __future__ import annotations

import threading


def join_started(thread: threading.Thread | None) -> None:
    """Join `thread` if it is running. Its owner sets the thread's stop flag first: a thread that
    start() launched but that is not running yet sees the flag as soon as it runs, and ends."""
    if thread is not None and thread.is_alive():
        thread.join()

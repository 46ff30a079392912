"""Progress off a terminal: a quiet phase still prints a line, saying what it does and how far."""

from __future__ import annotations

import io
import time

from xbuild.pipeline.progress import Progress


def _watch(monkeypatch, feed, seconds: float = 0.2, wait: float = 0.7) -> list[str]:
    monkeypatch.setenv("XBUILD_PROGRESS_SECONDS", str(seconds))
    stream = io.StringIO()  # not a terminal
    progress = Progress(stream)
    progress.phase("image", "building xbuild/builder:trixie-armhf-cross")
    feed(progress)
    time.sleep(wait)
    progress.done()
    return stream.getvalue().splitlines()


def test_a_quiet_phase_says_it_is_still_running(monkeypatch):
    lines = _watch(monkeypatch, lambda p: p.line("Unpacking gcc-12 (12.2.0-14) ..."))
    still = [line for line in lines if "still image" in line]
    assert still, lines
    assert "building xbuild/builder:trixie-armhf-cross" in still[0]
    assert "last output: Unpacking gcc-12" in still[0]


def test_apt_installs_say_how_far_they_are(monkeypatch):
    def apt(p):
        p.line("0 upgraded, 3 newly installed, 0 to remove and 0 not upgraded.")
        p.line("Setting up libc6:armhf (2.36-9) ...")
        p.line("Setting up gcc (12.2.0) ...")
    still = [line for line in _watch(monkeypatch, apt) if "still" in line]
    assert still and "2/3 packages set up" in still[-1], still


def test_a_phase_with_output_needs_no_heartbeat(monkeypatch):
    lines = _watch(monkeypatch, lambda p: None, seconds=30, wait=0.3)
    assert not [line for line in lines if "still" in line], lines


def test_done_stops_the_heartbeat_and_a_new_phase_starts_it_again(monkeypatch):
    monkeypatch.setenv("XBUILD_PROGRESS_SECONDS", "0.2")
    stream = io.StringIO()
    progress = Progress(stream)
    progress.phase("build", "one")
    progress.done()
    quiet_after_done = stream.getvalue()
    time.sleep(0.5)
    assert stream.getvalue() == quiet_after_done  # nothing printed once done
    progress.phase("build", "two")  # `xbuild verify` builds twice with one Progress
    time.sleep(0.6)
    progress.done()
    assert "still build: two" in stream.getvalue()


def test_a_terminal_gets_its_status_line_instead():
    class Tty(io.StringIO):
        def isatty(self):
            return True
    progress = Progress(Tty())
    progress.phase("build", "x")
    assert progress._heartbeat is None


def test_the_package_count_of_the_image_step_is_not_repeated_in_the_build_step(monkeypatch):
    def apt_then_build(p):
        p.line("0 upgraded, 5 newly installed, 0 to remove and 0 not upgraded.")
        for n in range(5):
            p.line(f"Setting up pkg{n} (1.0) ...")
        p.phase("build", "step 1/2: make")
        p.line("cc -c big.c")
    still = [line for line in _watch(monkeypatch, apt_then_build) if "still build" in line]
    assert still and "packages set up" not in still[-1], still
    assert "last output: cc -c big.c" in still[-1]


def test_output_holding_several_lines_is_shown_as_lines_not_as_control_characters(monkeypatch):
    def chunk(p):
        p.line("0 upgraded, 2 newly installed, 0 to remove.\nSetting up a (1) ...\n")
        p.line("Fetched 6626 kB in 2s (3313 kB/s)\nReading package lists...\n")
    lines = _watch(monkeypatch, chunk)
    still = [line for line in lines if "still image" in line]
    assert still and "last output: Reading package lists..." in still[-1], still
    assert "1/2 packages set up" in still[-1] and not any("^J" in line for line in lines), lines


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_status_line_on_a_terminal_shows_the_last_line_of_a_chunk():
    stream = _Terminal()
    progress = Progress(stream)
    progress.phase("image", "x")
    progress.line("Fetched 6626 kB in 2s (3313 kB/s)\nReading package lists...")
    shown = stream.getvalue()
    assert "image | Reading package lists..." in shown and "^J" not in shown and "Fetched" not in shown
    verbose = io.StringIO()
    Progress(verbose, verbose=True).line("one\ntwo\r\n")
    assert verbose.getvalue() == "one\ntwo\n"

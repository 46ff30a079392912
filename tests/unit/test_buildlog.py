"""build.log's tail, shown with a failed build's error: the build's own lines, not the image's."""

from __future__ import annotations

from xbuild.pipeline.buildlog import MARK, BuildLog
from xbuild.pipeline.observer import NullObserver


def test_tail_leaves_out_the_image_build_before_the_build(tmp_path):
    with BuildLog(tmp_path / "build.log", NullObserver()) as log:
        for n in range(5):
            log.line(f"Setting up libfoo{n} (1.0) ...")  # the deps image, built first
        log.begin_build()
        log.line(MARK + "step 1/1: ./configure")
        log.line("configure: error: libbar not found")
        assert log.tail() == ["configure: error: libbar not found"]
    # The file keeps everything.
    assert "Setting up libfoo0" in (tmp_path / "build.log").read_text()


def test_tail_past_the_lines_held_counts_from_the_right_line(tmp_path):
    with BuildLog(tmp_path / "build.log", NullObserver()) as log:
        log.line("image noise")
        log.begin_build()
        for n in range(3000):  # more than the log holds in memory
            log.line(f"line {n}")
        assert log.tail(2) == ["line 2998", "line 2999"]
        assert len(log.tail(5000)) == 1000 and "image noise" not in log.tail(5000)

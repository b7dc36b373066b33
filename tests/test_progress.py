"""Progress reaches logs: a start line, a line every interval, a done line; silence when disabled."""

from __future__ import annotations

import logging

import pytest

from megastyle import progress


@pytest.fixture
def lines(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Log lines of the ``megastyle`` logger, with stderr reported as not a terminal."""
    monkeypatch.setattr(progress, "is_terminal", lambda: False)
    monkeypatch.setenv("MEGASTYLE_PROGRESS_INTERVAL", "0")  # every update is due
    seen: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    handler = Collect()
    progress.log.addHandler(handler)
    progress.log.setLevel(logging.INFO)
    yield seen
    progress.log.removeHandler(handler)


def test_a_tracked_loop_logs_start_progress_and_done(lines: list[str]) -> None:
    with progress.track("render", 4) as bar:
        bar.advance(2)
        bar.update(3, note="loss 0.5")
    assert lines[0] == "render: started, 4 to do"
    assert lines[1].startswith("render: 2/4 (50%)") and "left" in lines[1]
    assert lines[2].startswith("render: 3/4 (75%)") and lines[2].endswith("loss 0.5")
    assert lines[-1].startswith("render: 3/4 done in 0:0")


def test_resumed_work_says_what_was_done_before(lines: list[str]) -> None:
    with progress.track("caption", 10, completed=6):
        pass
    assert lines[0] == "caption: started, 10 to do (6 already done)"


def test_lines_wait_for_the_interval(lines: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEGASTYLE_PROGRESS_INTERVAL", "3600")
    with progress.track("train", 100) as bar:
        for _ in range(100):
            bar.advance()
    assert len(lines) == 2  # start and done only


def test_disabled_progress_says_nothing(lines: list[str]) -> None:
    with progress.track("quiet", 3, enabled=False) as bar:
        bar.advance(3)
    with progress.step("quiet step", enabled=False):
        pass
    assert lines == []


def test_a_step_logs_start_and_done(lines: list[str]) -> None:
    with progress.step("dedup"):
        pass
    assert lines[0] == "dedup: started" and lines[1].startswith("dedup: done in 0:0")


def test_a_log_file_gets_the_lines(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress, "is_terminal", lambda: False)
    handlers = progress.configure_logging(tmp_path / "run.log", stderr=False)
    try:
        with progress.step("write"):
            pass
    finally:
        progress.remove_handlers(handlers)
    text = (tmp_path / "run.log").read_text()
    assert "write: started" in text and "write: done in" in text

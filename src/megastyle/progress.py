"""Progress of long work: a bar on a terminal, and a log line every few seconds for logs and files.

``track`` is what every long loop uses. Its log lines go to the ``megastyle`` logger, so they reach
whatever handlers are configured: the command line adds stderr when stderr is not a terminal (a CI
log, ``cmd > run.log 2>&1``), and a run can add its own log file (the quickstart writes
``quickstart.log``). With no handler configured, library use stays silent.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

log = logging.getLogger("megastyle")
DEFAULT_INTERVAL_S = 10.0
LOG_FORMAT = "%(asctime)s %(message)s"
_console = Console(stderr=True)


def interval_s() -> float:
    """Seconds between progress log lines (``MEGASTYLE_PROGRESS_INTERVAL`` overrides the default 10)."""
    try:
        return max(0.0, float(os.environ.get("MEGASTYLE_PROGRESS_INTERVAL", DEFAULT_INTERVAL_S)))
    except ValueError:
        return DEFAULT_INTERVAL_S


def is_terminal() -> bool:
    """True when stderr is an interactive terminal (bars are drawn only there)."""
    return sys.stderr.isatty()


def _clock(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 60}:{whole % 60:02d}"


class Tracker:
    """Counts finished work of one task and reports it (see ``track``)."""

    def __init__(self, description: str, total: int, completed: int, bar: Progress | None) -> None:
        self.description = description
        self.total = max(0, total)
        self.completed = completed
        self.note = ""
        self._bar = bar
        self._task = bar.add_task(description, total=self.total, completed=completed) if bar else None
        self._started = time.monotonic()
        self._start_completed = completed
        self._last_line = self._started
        self._interval = interval_s()

    def advance(self, n: int = 1) -> None:
        """Record ``n`` more finished items."""
        self.update(self.completed + n)

    def update(self, completed: int | None = None, note: str | None = None) -> None:
        """Set the finished count and an optional note (a loss, a rate) shown beside it."""
        if completed is not None:
            self.completed = completed
        if note is not None:
            self.note = note
        if self._bar is not None and self._task is not None:
            label = f"{self.description} {self.note}".strip()
            self._bar.update(self._task, completed=self.completed, description=label)
        now = time.monotonic()
        if now - self._last_line >= self._interval:
            self._last_line = now
            log.info(self.line())

    def line(self, done: bool = False) -> str:
        """The progress as one line: count, share, elapsed and remaining time."""
        elapsed = time.monotonic() - self._started
        note = f" {self.note}" if self.note else ""
        if done:
            return f"{self.description}: {self.completed}/{self.total} done in {_clock(elapsed)}{note}"
        share = f" ({100 * self.completed / self.total:.0f}%)" if self.total else ""
        rate_done = self.completed - self._start_completed
        left = ""
        if rate_done > 0 and self.total:
            left = f", about {_clock(elapsed / rate_done * (self.total - self.completed))} left"
        return (
            f"{self.description}: {self.completed}/{self.total}{share}, {_clock(elapsed)} elapsed{left}{note}"
        )


@contextmanager
def track(description: str, total: int, *, enabled: bool = True, completed: int = 0) -> Iterator[Tracker]:
    """Report progress of ``total`` items: a bar on a terminal, log lines every few seconds always.

    ``enabled=False`` reports nothing (tests, or a caller that reports itself).
    """
    if not enabled:
        yield _Silent(description, total, completed)
        return
    bar = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=_console
    ) if is_terminal() else None  # fmt: skip
    tracker = Tracker(description, total, completed, bar)
    log.info(f"{description}: started, {total} to do" + (f" ({completed} already done)" if completed else ""))
    if bar is None:
        yield tracker
    else:
        with bar:
            yield tracker
    log.info(tracker.line(done=True))


class _Silent(Tracker):
    """A tracker that counts but never reports."""

    def __init__(self, description: str, total: int, completed: int) -> None:
        super().__init__(description, total, completed, None)
        self._interval = float("inf")


@contextmanager
def step(description: str, *, enabled: bool = True) -> Iterator[None]:
    """A step without a count: a spinner on a terminal, a start and a finish line in the log."""
    if not enabled:
        yield
        return
    log.info(f"{description}: started")
    started = time.monotonic()
    if is_terminal():
        with _console.status(description):
            yield
    else:
        yield
    log.info(f"{description}: done in {_clock(time.monotonic() - started)}")


def configure_logging(log_file: Path | None = None, *, stderr: bool | None = None) -> list[logging.Handler]:
    """Send ``megastyle`` log lines to stderr (default: when it is not a terminal) and/or to ``log_file``.

    Returns the handlers added, so a run can remove its file handler when it ends.
    """
    log.setLevel(logging.INFO)
    log.propagate = False
    added: list[logging.Handler] = []
    wants_stderr = stderr if stderr is not None else not is_terminal()
    if wants_stderr and not any(getattr(h, "_megastyle_stderr", False) for h in log.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler._megastyle_stderr = True  # type: ignore[attr-defined]
        handler.setFormatter(logging.Formatter(LOG_FORMAT, "%H:%M:%S"))
        log.addHandler(handler)
        added.append(handler)
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(log_file, encoding="utf-8")
        handler.setFormatter(logging.Formatter(LOG_FORMAT, "%Y-%m-%d %H:%M:%S"))
        log.addHandler(handler)
        added.append(handler)
    return added


def remove_handlers(handlers: list[logging.Handler]) -> None:
    """Detach and close handlers that ``configure_logging`` added."""
    for handler in handlers:
        log.removeHandler(handler)
        handler.close()


@contextmanager
def quiet_library_bars() -> Iterator[None]:
    """Silence the progress bars and load reports transformers and diffusers draw while loading or saving
    models: megastyle reports the step itself, so bars of different libraries never tangle."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    modules = (diffusers_logging, transformers_logging)
    saved = [(m, m.is_progress_bar_enabled(), m.get_verbosity()) for m in modules]
    for module in modules:
        module.disable_progress_bar()
        module.set_verbosity_error()
    try:
        yield
    finally:
        for module, bars, verbosity in saved:
            if bars:
                module.enable_progress_bar()
            module.set_verbosity(verbosity)

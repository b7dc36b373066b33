"""Fault injection for engine tests: backends that kill their own worker process on cue.

A real ``SIGKILL`` of the process, not an exception, so the test exercises what a lost machine or
an out-of-memory kill does to a run. A marker file created with ``O_EXCL`` makes exactly one
worker die, however many race for it, so a restarted worker finishes the job.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from PIL import Image

from megastyle.curate.generators.base import GenerationRequest
from megastyle.curate.generators.procedural import ProceduralRenderer


def claim_once(marker: str | Path) -> bool:
    """True for exactly one caller across processes: the one that creates ``marker``."""
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    return True


class ProceduralThatDiesOnce(ProceduralRenderer):
    """The procedural renderer, except that one worker SIGKILLs itself on its ``die_on_call``-th batch."""

    def __init__(self, marker: str, die_on_call: int = 2, default_size: int = 256) -> None:
        super().__init__(default_size)
        self.marker = marker
        self.die_on_call = die_on_call
        self.calls = 0

    def generate(self, requests: list[GenerationRequest]) -> list[Image.Image]:
        """Render, unless this is the chosen call of the chosen worker: then die without a word."""
        self.calls += 1
        if self.calls == self.die_on_call and claim_once(self.marker):
            os.kill(os.getpid(), signal.SIGKILL)
        return super().generate(requests)

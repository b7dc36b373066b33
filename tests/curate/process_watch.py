"""Shared by the kill-and-resume tests: wait for a run's first file of some kind."""

import subprocess
import time
from pathlib import Path


def wait_for_file(folder: Path, pattern: str, process: subprocess.Popen, timeout: float = 120.0) -> bool:
    """True once ``folder`` holds a ``pattern`` match; False if ``process`` ends or time runs out first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        if folder.exists() and any(folder.glob(pattern)):
            return True
        time.sleep(0.02)
    return False

"""Output folders a command may write into: its own, marked by a small file, never a user's folder.

A command that writes a folder claims it first. A missing or empty folder becomes ours (the marker
says which command made it); a folder with our marker of the same kind is ours again (resume or
replace, as the command's options say); anything else — a folder of the user's files, another
command's run, a file — is refused with an error naming the folder and what is in the way.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from megastyle.config import ConfigError
from megastyle.data.atomic import atomic_write_json

MARKER = ".megastyle-run.json"


def owner_of(folder: Path) -> str | None:
    """The kind of megastyle run that made ``folder``, or None when no marker says so."""
    marker = folder / MARKER
    if not marker.is_file():
        return None
    try:
        return str(json.loads(marker.read_text(encoding="utf-8")).get("kind"))
    except (OSError, ValueError):
        return None


def _in_the_way(folder: Path) -> str:
    names = sorted(entry.name for entry in folder.iterdir())
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return shown


def claim_output_dir(
    folder: str | os.PathLike[str], kind: str, *, legacy: Callable[[Path], bool] | None = None
) -> Path:
    """Make ``folder`` this ``kind`` of run's output folder, or raise ``ConfigError`` saying why not.

    ``legacy`` recognises a run of this kind written before markers existed; it is then marked.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{folder}: is a file, not a folder; choose a folder for the {kind} output")
    owner = owner_of(folder)
    if owner is not None and owner != kind:
        raise ConfigError(f"{folder}: holds a megastyle {owner} run, not a {kind} run; choose another folder")
    if owner is None and folder.is_dir() and any(folder.iterdir()) and not (legacy and legacy(folder)):
        raise ConfigError(
            f"{folder}: not empty and not a megastyle {kind} run (holds {_in_the_way(folder)}); "
            "choose a new or empty folder, nothing was written"
        )
    folder.mkdir(parents=True, exist_ok=True)
    if owner is None:
        atomic_write_json(folder / MARKER, {"kind": kind, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    return folder

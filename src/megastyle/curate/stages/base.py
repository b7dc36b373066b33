"""What every curate stage is: a name, the config section it depends on, and its work over the run folder.

A stage reads the files of the stage before it and leaves its own under ``run_dir/stages/NN_name``
(``NN`` is its place in ``pipeline.STAGES``: the folder names are defined there, once). The driver
gives it a ``StageDir`` that is ready to write; the stage returns its stats and rejects, and the
driver records them and writes the manifest that marks the stage complete.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from megastyle.curate.executor import Engine
from megastyle.curate.runstate import StageDir
from megastyle.data import Reject
from megastyle.progress import Tracker, track

if TYPE_CHECKING:
    from megastyle.curate.config import CurateConfig

console = Console(stderr=True)
KINDS = ("style", "content")
# Worker counts and reservations decide where work runs, not what it produces: not in stage keys.
PLACEMENT = {"workers", "num_cpus", "num_gpus"}


class CurateStateError(RuntimeError):
    """The run folder holds state that this invocation must not silently overwrite."""


@dataclass(frozen=True)
class StageResult:
    """What a stage hands back to the driver: its stats (into the manifest and summary) and rejects."""

    stats: dict[str, Any]
    rejects: Sequence[Reject] = ()


@dataclass(frozen=True)
class Stage:
    """One step of ``megastyle curate``.

    ``section`` picks the config that decides the stage's output (it goes into the stage key, with
    the key of the stage before it), ``run`` does the work, ``outputs_present`` says whether a
    finished stage's outputs outside its folder still exist, and ``draws_progress`` stages draw
    their own progress bars.
    """

    name: str
    section: Callable[[CurateConfig], Any]
    run: Callable[[RunContext, StageDir], StageResult]
    outputs_present: Callable[[RunContext], bool] = lambda ctx: True
    draws_progress: bool = False


@dataclass
class RunContext:
    """What every stage needs: the config, the run folder, the engine, and what finished stages recorded."""

    cfg: CurateConfig
    run_dir: Path
    engine: Engine
    folders: dict[str, str] = field(default_factory=dict)  # stage name -> folder name, set by the driver
    stats: dict[str, dict[str, Any]] = field(default_factory=dict)

    def output_of(self, stage: str) -> Path:
        """The folder that stage ``stage`` writes."""
        return self.run_dir / "stages" / self.folders[stage]

    def track(self, description: str, total: int, completed: int = 0) -> AbstractContextManager[Tracker]:
        """Progress of one stage's items: a bar on a terminal, a log line every few seconds."""
        return track(description, total, enabled=self.cfg.progress, completed=completed)


def section_payload(section: Any) -> Any:
    """A config section as JSON-able data without the placement fields."""
    if hasattr(section, "model_dump"):
        return section.model_dump(mode="json", exclude=PLACEMENT)
    return section

"""Modules that moved when the package was reorganised by job: their old import paths keep working.

Importing an old path gives a stand-in module that reads every name from the new home (the first
of the new modules that defines it) and warns once, naming the new path. Nothing is loaded until
an old path is imported.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
import warnings
from collections.abc import Sequence
from typing import Any

# old module -> the modules that now hold its names, searched in order
MOVED: dict[str, tuple[str, ...]] = {
    "megastyle.quickstart_encoder": ("megastyle.quickstart.encoder",),
    "megastyle.quickstart_transfer": ("megastyle.quickstart.transfer",),
    "megastyle.curate.synthetic_pools": ("megastyle.quickstart.pools",),
    "megastyle.curate.embedding": ("megastyle.prompts.embedding", "megastyle.curate.stages.embedding"),
    "megastyle.curate.engine": ("megastyle.curate.executor",),
    "megastyle.curate.ray_engine": ("megastyle.curate.executor.ray",),
    "megastyle.curate.filter_stage": ("megastyle.curate.stages.filter",),
    "megastyle.curate.pipeline_gallery": (
        "megastyle.curate.stages.dedup",
        "megastyle.curate.stages.balance",
        "megastyle.curate.stages.combine",
    ),
    "megastyle.curate.pipeline_output": (
        "megastyle.curate.stages.generate",
        "megastyle.curate.stages.filter",
        "megastyle.curate.stages.write",
    ),
    "megastyle.curate.caption.stage": ("megastyle.curate.caption.batch",),
    "megastyle.curate.balance.stage": ("megastyle.curate.balance.driver",),
    "megastyle.curate.balance.kmeans": ("megastyle.curate.balance.clustering",),
    "megastyle.curate.dedup.stage": ("megastyle.curate.dedup.steps",),
    "megastyle.transfer.sheet": ("megastyle.report.transfer_sheet",),
    "megastyle.bench.retrieval_eval": ("megastyle.bench.retrieval",),
    "megastyle.bench.transfer_inputs": (
        "megastyle.transfer.generate",
        "megastyle.bench.transfer",
        "megastyle.bench.clip",
    ),
    "megastyle.cli.bench_commands": (
        "megastyle.bench.commands",
        "megastyle.bench.encoders",
        "megastyle.encode.commands",
    ),
    "megastyle.cli.encoder_commands": ("megastyle.encode.commands", "megastyle.encode.source"),
    "megastyle.cli.train_encoder_command": ("megastyle.encode.commands",),
    "megastyle.cli.transfer_commands": (
        "megastyle.transfer.commands",
        "megastyle.transfer.loading",
        "megastyle.bench.commands",
    ),
    "megastyle.cli.transfer_train_command": ("megastyle.transfer.commands",),
    "megastyle.cli.dataset_commands": ("megastyle.curate.commands", "megastyle.data.commands"),
    "megastyle.cli.curate_command": ("megastyle.curate.commands",),
    "megastyle.cli.quickstart_command": ("megastyle.quickstart.config",),
}
# names that were renamed in their move: old module -> {old name: new name}
RENAMED: dict[str, dict[str, str]] = {
    "megastyle.curate.caption.stage": {"caption_stage": "caption_batch"},
    "megastyle.cli.encoder_commands": {"EncoderSourceMixin": "EncoderSource"},
    "megastyle.cli.bench_commands": {"_default_encoders": "default_encoders"},
}


def _stand_in(old: str, new: Sequence[str]) -> types.ModuleType:
    """A module named ``old`` whose attributes are read from the modules ``new``."""
    module = types.ModuleType(old, f"Moved to {', '.join(new)}.")
    renamed = RENAMED.get(old, {})

    def __getattr__(name: str) -> Any:
        name = renamed.get(name, name)
        for target in new:
            value = getattr(importlib.import_module(target), name, module)
            if value is not module:
                return value
        raise AttributeError(f"{old} moved to {' / '.join(new)}, which define no {name!r}")

    def __dir__() -> list[str]:
        return sorted({n for target in new for n in dir(importlib.import_module(target))})

    module.__getattr__ = __getattr__  # type: ignore[method-assign]
    module.__dir__ = __dir__  # type: ignore[method-assign]
    module.__all__ = __dir__()  # `from old import *` keeps working
    return module


class _MovedLoader(importlib.abc.Loader):
    def __init__(self, new: Sequence[str]) -> None:
        self.new = new

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        warnings.warn(
            f"{spec.name} moved to {' / '.join(self.new)}; import from there",
            DeprecationWarning,
            stacklevel=2,
        )
        return _stand_in(spec.name, self.new)

    def exec_module(self, module: types.ModuleType) -> None:
        """Nothing to run: the stand-in reads from the new modules on demand."""


class MovedModuleFinder(importlib.abc.MetaPathFinder):
    """Finds the old paths of moved modules (and only those)."""

    def find_spec(
        self, fullname: str, path: Any = None, target: Any = None
    ) -> importlib.machinery.ModuleSpec | None:
        """A spec for a moved module's old path; None for every other name."""
        new = MOVED.get(fullname)
        if new is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, _MovedLoader(new))


def install() -> None:
    """Put the finder on ``sys.meta_path`` once."""
    if not any(isinstance(finder, MovedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.append(MovedModuleFinder())

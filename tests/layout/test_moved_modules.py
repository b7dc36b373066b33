"""Old import paths of reorganised modules keep working and name their new home."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator

import pytest

from megastyle._moved import MOVED


def _forget_old_paths() -> None:
    for old in MOVED:
        stand_in = sys.modules.pop(old, None)
        parent, _, child = old.rpartition(".")
        # Importing a submodule binds it on its package: unbind the stand-in so the package's own
        # name (megastyle.curate.balance.kmeans, the function) is what later imports see.
        if stand_in is not None and getattr(sys.modules.get(parent), child, None) is stand_in:
            delattr(sys.modules[parent], child)


@pytest.fixture(autouse=True)
def fresh_old_paths() -> Iterator[None]:
    """Each test imports the old paths anew (a cached stand-in would not warn again), and leaves none."""
    _forget_old_paths()
    yield
    _forget_old_paths()


@pytest.mark.parametrize("old", sorted(MOVED))
def test_an_old_path_imports_with_a_warning_naming_the_new_one(old: str) -> None:
    with pytest.warns(DeprecationWarning, match=MOVED[old][0].replace(".", r"\.")):
        module = importlib.import_module(old)
    assert dir(module), f"{old} exposes no names"


def test_names_resolve_to_the_objects_of_their_new_home() -> None:
    from megastyle.quickstart.encoder import train_and_benchmark
    from megastyle.transfer.commands import TransferConfig, run_transfer

    with pytest.warns(DeprecationWarning):
        from megastyle.cli.transfer_commands import TransferConfig as OldConfig
        from megastyle.cli.transfer_commands import run_transfer as old_run
        from megastyle.quickstart_encoder import train_and_benchmark as old_train
    assert (OldConfig, old_run, old_train) == (TransferConfig, run_transfer, train_and_benchmark)


def test_a_renamed_name_is_found_under_its_old_name() -> None:
    from megastyle.curate.caption.batch import caption_batch

    with pytest.warns(DeprecationWarning):
        from megastyle.curate.caption.stage import caption_stage
    assert caption_stage is caption_batch


def test_a_name_that_no_new_home_defines_says_where_the_module_went() -> None:
    with pytest.warns(DeprecationWarning):
        module = importlib.import_module("megastyle.curate.engine")
    with pytest.raises(
        AttributeError, match=r"megastyle\.curate\.engine moved to megastyle\.curate\.executor"
    ):
        module.no_such_name  # noqa: B018


def test_every_new_home_exists() -> None:
    for homes in MOVED.values():
        for home in homes:
            importlib.import_module(home)

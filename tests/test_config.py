"""Typed configs: defaults, TOML files, command-line overrides and clear errors."""

import tomllib
from pathlib import Path
from typing import ClassVar

import pytest
from pydantic import Field

from megastyle.config import CommandConfig, ConfigError, load_config, parse_overrides
from megastyle.quickstart.config import QuickstartConfig

ROOT = Path(__file__).resolve().parents[1]


class Inner(CommandConfig):
    lr: float = 1e-4
    names: list[str] = Field(default_factory=list)


class Outer(CommandConfig):
    toml_section: ClassVar[str] = "outer"
    name: str = "x"
    steps: int = 3
    flag: bool = False
    inner: Inner = Field(default_factory=Inner)


def test_overrides_parse_values_and_nesting():
    parsed = parse_overrides(["--steps", "7", "--inner.lr=0.5", "--flag", "--inner.names", '["a", "b"]'])
    assert parsed == {"steps": 7, "inner": {"lr": 0.5, "names": ["a", "b"]}, "flag": True}


def test_precedence_defaults_then_file_then_overrides(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[outer]\nname = "from-file"\nsteps = 5\n[outer.inner]\nlr = 0.25\n')
    cfg = load_config(Outer, path, ["--steps", "9", "--name", "12"])
    assert (cfg.name, cfg.steps, cfg.inner.lr) == ("12", 9, 0.25)
    assert cfg.flag is False


def test_unknown_and_invalid_keys_are_named(tmp_path):
    with pytest.raises(ConfigError, match="stepz"):
        load_config(Outer, None, ["--stepz", "1"])
    with pytest.raises(ConfigError, match="steps"):
        load_config(Outer, None, ["--steps", "many"])
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(Outer, tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("name = [")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(Outer, bad)


def test_single_value_fills_a_list_field():
    cfg = load_config(Outer, None, ["--inner.names", "solo"])
    assert cfg.inner.names == ["solo"]


def test_to_toml_round_trips(tmp_path):
    cfg = load_config(Outer, None, ["--steps", "4", "--inner.names", '["p", "q"]'])
    path = tmp_path / "out.toml"
    path.write_text(cfg.to_toml())
    assert load_config(Outer, path) == cfg


def test_shipped_configs_are_valid():
    cfg = load_config(QuickstartConfig, ROOT / "configs" / "quickstart.toml")
    assert cfg.backend == "procedural"
    recipe = tomllib.loads((ROOT / "configs" / "megastyle_full.toml").read_text())
    models = " ".join(recipe["models"].values())
    for name in ("Qwen3-VL", "Qwen-Image", "siglip-so400m", "FLUX.1-dev"):
        assert name in models


def test_full_recipe_curate_table_is_valid_and_names_real_backend_options():
    import inspect

    from megastyle.curate.caption.hf_transformers import TransformersCaptioner
    from megastyle.curate.config import CurateConfig
    from megastyle.curate.generators.diffusers_backend import DiffusersBackend

    cfg = load_config(CurateConfig, ROOT / "configs" / "megastyle_full.toml")
    assert (cfg.balance.style.target, cfg.balance.content.target) == (170_000, 400_000)
    assert cfg.combine.contents_per_style == 8 and cfg.generate.image_size == 512
    for options, cls in (
        (cfg.caption.options, TransformersCaptioner),
        (cfg.generate.options, DiffusersBackend),
    ):
        accepted = set(inspect.signature(cls.__init__).parameters)
        assert set(options) <= accepted, (cls.__name__, set(options) - accepted)


def test_a_repeated_list_option_adds_to_the_list_and_a_repeated_scalar_is_refused() -> None:
    from megastyle.config import ConfigError, load_config
    from megastyle.transfer.commands import TransferConfig

    cfg = load_config(TransferConfig, None, ["--style", "a.png", "--style", "b.png", "--prompt", "A car"])
    assert [str(p) for p in cfg.style] == ["a.png", "b.png"] and cfg.prompt == ["A car"]
    spread = load_config(TransferConfig, None, ["--prompt", '["A", "B"]', "--prompt", "C"])
    assert spread.prompt == ["A", "B", "C"]
    with pytest.raises(ConfigError, match="--seed was given 2 times"):
        load_config(TransferConfig, None, ["--seed", "1", "--seed", "2"])


def test_an_old_field_name_still_works_and_names_clash_is_refused() -> None:
    from typing import ClassVar

    from pydantic import Field

    from megastyle.config import CommandConfig, ConfigError, describe_fields, load_config

    class Renamed(CommandConfig):
        aliases: ClassVar[dict[str, str]] = {"data_dirs": "source"}
        source: list[str] = Field(default_factory=list, description="Input.")

    assert load_config(Renamed, None, ["--data-dirs", "x"]).source == ["x"]
    with pytest.raises(ConfigError, match="same option"):
        load_config(Renamed, None, ["--data-dirs", "x", "--source", "y"])
    assert describe_fields(Renamed)[0][0] == "--source (or --data-dirs)"


def test_defaults_read_as_values_in_help() -> None:
    from pathlib import Path

    from megastyle.config import format_default

    assert format_default(Path("runs/x")) == "runs/x"
    assert format_default(None) == "none" and format_default(True) == "true"
    assert format_default(["A bench", "A car"]) == '["A bench", "A car"]'

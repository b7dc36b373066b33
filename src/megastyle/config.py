"""Typed command configuration: pydantic models loadable from TOML with command-line overrides."""

from __future__ import annotations

import tomllib
import types
import typing
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import tomli_w
from pydantic import BaseModel, ConfigDict, ValidationError

ConfigT = TypeVar("ConfigT", bound="CommandConfig")


class ConfigError(ValueError):
    """A configuration file or override that cannot be applied; the message names the key."""


class CommandConfig(BaseModel):
    """Base of every command's configuration: unknown keys are errors, never silently ignored."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())
    # The TOML table this command reads from a shared recipe file (e.g. ``[quickstart]``).
    toml_section: ClassVar[str | None] = None

    def to_toml(self) -> str:
        """The configuration as TOML text that ``load_config`` reads back to an equal object."""
        return tomli_w.dumps(_drop_none(self.model_dump(mode="json")))


def _drop_none(value: Any) -> Any:
    # TOML has no null: a missing key means "use the default", which is None for optional fields.
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


def parse_override_value(raw: str) -> Any:
    """Read an override value as a TOML literal (numbers, booleans, lists); anything else is a string."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def parse_overrides(args: list[str]) -> dict[str, Any]:
    """Turn ``--a.b value``, ``--a-b=value`` and bare ``--flag`` tokens into a nested dict."""
    overrides: dict[str, Any] = {}
    i = 0
    while i < len(args):
        token = args[i]
        if not token.startswith("--") or token == "--":
            raise ConfigError(f"unexpected argument {token!r}: overrides look like --field value")
        key, sep, value = token[2:].partition("=")
        if not sep:
            if i + 1 < len(args) and not args[i + 1].startswith("--"):
                value = args[i + 1]
                i += 1
            else:
                value = "true"
        path = [part.replace("-", "_") for part in key.split(".")]
        node = overrides
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override --{key}: {part!r} is both a value and a section")
        node[path[-1]] = parse_override_value(value)
        i += 1
    return overrides


def merge_config_data(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra`` laid over it; nested tables merge key by key instead of being replaced."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_config_data(merged[key], value)
        else:
            merged[key] = value
    return merged


def _coerce_strings(model: type[BaseModel], data: dict[str, Any]) -> dict[str, Any]:
    """Let ``--names a`` fill a list field and ``--x 3`` fill a str field, as a user would expect."""
    out = dict(data)
    for name, value in data.items():
        field = model.model_fields.get(name)
        if field is None:
            continue
        annotation = field.annotation
        origin = typing.get_origin(annotation)
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if origin in (typing.Union, types.UnionType) and len(args) == 1:
            annotation, origin = args[0], typing.get_origin(args[0])
        if isinstance(value, dict) and isinstance(annotation, type) and issubclass(annotation, BaseModel):
            out[name] = _coerce_strings(annotation, value)
        elif origin in (list, tuple) and not isinstance(value, list):
            out[name] = [value]
        elif annotation in (str, Path) and isinstance(value, int | float) and not isinstance(value, bool):
            out[name] = str(value)
    return out


def load_config(
    config_cls: type[ConfigT],
    path: str | Path | None = None,
    overrides: dict[str, Any] | list[str] | None = None,
) -> ConfigT:
    """Build ``config_cls`` from defaults, then a TOML file, then command-line overrides."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"config file {path} is not valid TOML: {err}") from err
        # A recipe may keep one table per command; take ours when present.
        section = config_cls.toml_section
        if section and isinstance(data.get(section), dict):
            data = data[section]
    if overrides:
        extra = parse_overrides(overrides) if isinstance(overrides, list) else overrides
        data = merge_config_data(data, extra)
    try:
        return config_cls.model_validate(_coerce_strings(config_cls, data))
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in err.errors()
        )
        source = f" (from {path})" if path else ""
        raise ConfigError(f"invalid {config_cls.__name__}{source}: {problems}") from err


def describe_fields(config_cls: type[BaseModel], prefix: str = "") -> list[tuple[str, str, str]]:
    """(option, default, description) for every field, nested sections flattened with dots."""
    rows: list[tuple[str, str, str]] = []
    for name, field in config_cls.model_fields.items():
        option = f"{prefix}{name.replace('_', '-')}"
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            rows.extend(describe_fields(annotation, prefix=f"{option}."))
            continue
        default = field.get_default(call_default_factory=True)
        rows.append((f"--{option}", repr(default), field.description or ""))
    return rows

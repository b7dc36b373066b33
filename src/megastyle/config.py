"""Typed command configuration: pydantic models loadable from TOML with command-line overrides."""

from __future__ import annotations

import json
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import tomli_w
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

ConfigT = TypeVar("ConfigT", bound="CommandConfig")


class ConfigError(ValueError):
    """A configuration file or override that cannot be applied; the message names the key."""


class CommandConfig(BaseModel):
    """Base of every command's configuration: unknown keys are errors, never silently ignored."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())
    # The TOML table this command reads from a shared recipe file (e.g. ``[quickstart]``).
    toml_section: ClassVar[str | None] = None
    # Old field names that still work (old name -> field), so renamed options keep their scripts.
    aliases: ClassVar[dict[str, str]] = {}

    @model_validator(mode="before")
    @classmethod
    def _old_names(cls, data: Any) -> Any:
        """A config built in Python takes the old field names too, as the command line does."""
        return apply_aliases(cls, data) if isinstance(data, dict) and cls.aliases else data

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


class Repeated(list[Any]):
    """The values of an option given more than once on the command line, in order."""


def parse_overrides(args: list[str]) -> dict[str, Any]:
    """Turn ``--a.b value``, ``--a-b=value`` and bare ``--flag`` tokens into a nested dict.

    An option given twice keeps both values (a ``Repeated``): a list field takes them all, any
    other field refuses them.
    """
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
        parsed = parse_override_value(value)
        if path[-1] in node:
            before = node[path[-1]]
            node[path[-1]] = Repeated([*(before if isinstance(before, Repeated) else [before]), parsed])
        else:
            node[path[-1]] = parsed
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
        if isinstance(value, Repeated):
            if origin not in (list, tuple):
                raise ConfigError(
                    f"--{name.replace('_', '-')} was given {len(value)} times; it takes one value"
                )
            # `--style a.png --style b.png` adds to the list; a value that is itself a list is spread.
            out[name] = [item for part in value for item in (part if isinstance(part, list) else [part])]
            continue
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
            raise ConfigError(f"{path}: config file does not exist")
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError as err:
            raise ConfigError(f"{path}: not a text file (a TOML config was expected)") from err
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"{path}: not valid TOML: {err}") from err
        # A recipe may keep one table per command; take ours when present.
        section = config_cls.toml_section
        if section and isinstance(data.get(section), dict):
            data = data[section]
    data = apply_aliases(config_cls, data, source=f" in {path}" if path else "")
    if overrides:
        extra = parse_overrides(overrides) if isinstance(overrides, list) else overrides
        data = merge_config_data(data, apply_aliases(config_cls, extra, source=" on the command line"))
    try:
        return config_cls.model_validate(_coerce_strings(config_cls, data))
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in err.errors()
        )
        source = f" (from {path})" if path else ""
        raise ConfigError(f"invalid {config_cls.__name__}{source}: {problems}") from err


def apply_aliases(config_cls: type[BaseModel], data: dict[str, Any], source: str = "") -> dict[str, Any]:
    """Rename old keys to their fields (``aliases``); an old and a new name for one field is an error."""
    aliases: dict[str, str] = getattr(config_cls, "aliases", {})
    out = dict(data)
    for old, new in aliases.items():
        if old in out:
            if new in out:
                raise ConfigError(
                    f"--{old.replace('_', '-')} and --{new.replace('_', '-')} are the same option{source}; give one"
                )
            out[new] = out.pop(old)
    return out


def format_default(value: Any) -> str:
    """A default as a user would type it: paths and strings plain, lists and tables in TOML."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    if isinstance(value, list | tuple | dict):
        return json.dumps(_drop_none(_plain(value)), ensure_ascii=False)  # one line; lists read as TOML
    return str(value)


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def describe_fields(config_cls: type[BaseModel], prefix: str = "") -> list[tuple[str, str, str]]:
    """(option, default, description) for every field, nested sections flattened with dots."""
    rows: list[tuple[str, str, str]] = []
    old_names = {new: old for old, new in getattr(config_cls, "aliases", {}).items()}
    for name, field in config_cls.model_fields.items():
        option = f"{prefix}{name.replace('_', '-')}"
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            rows.extend(describe_fields(annotation, prefix=f"{option}."))
            continue
        default = field.get_default(call_default_factory=True)
        flag = f"--{option}"
        if name in old_names:
            flag += f" (or --{prefix}{old_names[name].replace('_', '-')})"
        rows.append((flag, format_default(default), field.description or ""))
    return rows

"""Lazy package exports: a module ``__getattr__``/``__dir__`` pair importing a name's submodule on first use.

Packages such as ``megastyle.encode`` and ``megastyle.testing`` re-export names from submodules that pull in
torch or transformers; importing the package itself must stay cheap, so each name is imported only when it
is first read (PEP 562) and then cached in the package namespace.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str], namespace: dict[str, Any], public: Iterable[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: ``exports`` maps each name to its submodule (relative)."""
    names = frozenset(public)

    def __getattr__(name: str) -> Any:
        """Import the defining submodule on first access to an exported name."""
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        namespace[name] = value  # later reads skip __getattr__ entirely
        return value

    def __dir__() -> list[str]:
        """Module attributes plus the lazily exported names."""
        return sorted(set(namespace) | names)

    return __getattr__, __dir__

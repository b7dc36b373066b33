"""``megastyle._lazy.lazy_exports`` and the packages built on it (``megastyle.encode``, ``megastyle.testing``)."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from types import ModuleType
from typing import Any

import pytest

from megastyle._lazy import lazy_exports

PACKAGES = ("megastyle.encode", "megastyle.testing")


@pytest.mark.parametrize("name", PACKAGES)
def test_exports_match_all_and_resolve_to_their_submodule(name: str) -> None:
    package: ModuleType = importlib.import_module(name)
    exports: dict[str, str] = package._EXPORTS  # type: ignore[attr-defined]
    assert sorted(exports) == sorted(package.__all__)
    assert set(package.__all__) <= set(dir(package))
    for export, module in exports.items():
        value = getattr(package, export)
        assert value is getattr(importlib.import_module(f"{name}.{module}"), export)
        assert vars(package)[export] is value  # cached: later reads skip __getattr__
    with pytest.raises(AttributeError, match=f"{name}.*no_such_name"):
        _ = package.no_such_name


def test_helper_imports_on_first_use_only() -> None:
    namespace: dict[str, Any] = {"__name__": "fake"}
    getattr_, dir_ = lazy_exports(
        "megastyle.testing", {"random_images": "images"}, namespace, ["random_images"]
    )
    assert dir_() == ["__name__", "random_images"] and "random_images" not in namespace
    from megastyle.testing.images import random_images

    assert getattr_("random_images") is random_images and namespace["random_images"] is random_images
    with pytest.raises(
        AttributeError, match=re.escape("'megastyle.testing' has no attribute 'build_tiny_siglip'")
    ):
        getattr_("build_tiny_siglip")


def test_importing_the_packages_stays_free_of_torch() -> None:
    code = "import sys, megastyle.encode, megastyle.testing; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"

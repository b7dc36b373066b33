"""The package keeps its layers: a room imports only rooms below it, never a sibling or a higher one, and no
module imports itself back through others. ``docs/architecture.md`` describes the same table in words.

Every import counts, also those inside functions and ``TYPE_CHECKING`` blocks: a deferred import is still
a dependency.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"

FOUNDATION = {"megastyle", "config", "_lazy", "_moved", "plugins", "checkpoints", "devices", "progress"}
# Each layer may import the layers listed before it; rooms in one layer are siblings.
LAYERS: list[set[str]] = [
    FOUNDATION,
    {"data", "prompts", "report"},  # shared layers: formats, prompts, report pages
    {"curate", "encode", "transfer"},  # three of the four parts; they never import each other
    {"bench", "testing"},  # benchmarks measure the parts; the test kit builds tiny models from them
    {"quickstart", "app"},  # the main job end to end; the web page over every part
    {"cli"},  # parses and registers commands
]


def room_of(module: str) -> str:
    """The top-level room of a dotted module name under ``megastyle``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "megastyle"


def layer_of(room: str) -> int:
    """Index of the layer holding ``room``."""
    for index, rooms in enumerate(LAYERS):
        if room in rooms:
            return index
    raise AssertionError(f"room {room!r} is in no layer: add it to LAYERS and to docs/architecture.md")


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name."""
    found = {}
    for file in (SRC / "megastyle").rglob("*.py"):
        parts = list(file.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = file
    return found


def imports(file: Path, known: dict[str, Path]) -> Iterator[tuple[int, str]]:
    """(line, imported module) for every ``megastyle`` import in ``file``, wherever it stands."""
    for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] != "megastyle":
                continue
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                yield node.lineno, sub if sub in known else node.module
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "megastyle":
                    yield node.lineno, alias.name


def allowed(src_room: str, dst_room: str) -> bool:
    """Whether room ``src_room`` may import room ``dst_room``."""
    if src_room == dst_room or {src_room, dst_room} <= FOUNDATION:  # foundation modules are small helpers
        return True
    return layer_of(dst_room) < layer_of(src_room)


def test_every_import_goes_down_a_layer() -> None:
    known = modules()
    wrong = []
    for module, file in sorted(known.items()):
        src_room = room_of(module)
        for line, target in imports(file, known):
            dst_room = room_of(target)
            if not allowed(src_room, dst_room):
                wrong.append(f"{file.relative_to(SRC)}:{line} imports {target} ({src_room} → {dst_room})")
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def test_no_module_imports_itself_back() -> None:
    known = modules()
    graph = {module: {t for _, t in imports(file, known) if t in known} for module, file in known.items()}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(" → ".join(c) for c in cycles)


def test_every_room_has_a_layer() -> None:
    rooms = {room_of(m) for m in modules()} - {"megastyle"}
    for room in rooms:
        layer_of(room)


@pytest.mark.parametrize(
    ("src", "dst", "ok"),
    [("encode", "data", True), ("encode", "bench", False), ("transfer", "encode", False), ("data", "data", True),
     ("cli", "quickstart", True), ("data", "prompts", False), ("megastyle", "curate", False),
     ("checkpoints", "config", True), ("config", "data", False)],
)  # fmt: skip
def test_the_rule_itself(src: str, dst: str, ok: bool) -> None:
    assert allowed(src, dst) is ok

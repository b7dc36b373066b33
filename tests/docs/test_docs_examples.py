"""Every example of README.md and docs/*.md runs: Python blocks as written, ``megastyle`` lines through the CLI.

- ```python blocks are executed one by one, each in a fresh namespace, in the workspace of ``conftest``
  (the paths the docs name, built from tiny offline models), in document order with the shell blocks.
  A block right after ``<!-- not run: reason -->`` is skipped; such blocks must say why and stay rare.
- In ```bash blocks, every line that starts with ``megastyle `` goes through the real CLI (typer's
  ``CliRunner`` on ``megastyle.cli.app.app``): for real where that is cheap on the tiny stand-ins
  (``REAL_COMMANDS``), otherwise with ``--print-config`` appended, which validates every option name and
  value against the command's typed config. Other lines (``make``, ``pip``, ``hf``, ``ray``) are not run.
- ```toml blocks must parse; one right after ``<!-- file: NAME -->`` is written to the workspace as NAME,
  so the commands that read it validate it too.
- Examples import only current module paths: none of the old paths that still import with a warning.
- Every local link resolves, every command is listed in docs/commands.md, and the backend ``options``
  of the docs' curate configs name real constructor arguments.

The runner must be able to fail: the last tests feed it a misspelt option, a refused value and broken
Python, and expect each to be caught.
"""

from __future__ import annotations

import ast
import re
import shlex
import tomllib
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SHELL_LANGUAGES = {"bash", "sh", "shell", "console"}
# Commands run for real on the tiny stand-ins; every other command runs with --print-config.
# (``score`` has no --print-config: it always runs.)
REAL_COMMANDS = {"score", "transfer", "embed", "search", "inspect"}
MAX_SKIPPED = 3

_FENCE = re.compile(r"^```\s*([\w+-]*)\s*$")
_MARKER = re.compile(r"^<!--\s*(not run|file)\s*:\s*(.*?)\s*-->$")


@dataclass(frozen=True)
class Block:
    """One fenced code block of a document."""

    doc: Path
    line: int  # line number of the block's first code line
    lang: str
    code: str
    skip: str | None = None  # reason given by <!-- not run: reason -->
    file: str | None = None  # name given by <!-- file: NAME -->

    @property
    def where(self) -> str:
        """``doc:line`` for messages and test ids."""
        try:
            name = self.doc.relative_to(REPO)
        except ValueError:
            name = self.doc
        return f"{name}:{self.line}"


def extract_blocks(doc: Path, text: str | None = None) -> list[Block]:
    """Every fenced block of ``doc`` (or of ``text``), with the marker comment right before it, if any."""
    lines = (doc.read_text(encoding="utf-8") if text is None else text).splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i].strip())
        if opening is None:
            i += 1
            continue
        previous = next((lines[j].strip() for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        marker = _MARKER.match(previous)
        end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == "```"), None)
        if end is None:
            raise AssertionError(f"{doc}:{i + 1}: code block is never closed")
        kind, value = marker.groups() if marker else (None, None)
        if kind == "not run" and not value:
            raise AssertionError(f"{doc}:{i}: <!-- not run: ... --> must say why")
        blocks.append(
            Block(
                doc,
                i + 2,
                opening.group(1).lower(),
                "\n".join(lines[i + 1 : end]) + "\n",
                skip=value if kind == "not run" else None,
                file=value if kind == "file" else None,
            )
        )
        i = end + 1
    return blocks


def cli_lines(block: Block) -> list[tuple[int, str]]:
    """(line number, command) of each ``megastyle`` command in a shell block; ``\\`` continues a line."""
    commands: list[tuple[int, str]] = []
    pending, start = "", 0
    for offset, raw in enumerate(block.code.splitlines()):
        if not pending:
            start = block.line + offset
        line = raw.strip()
        if line.endswith("\\"):
            pending += line[:-1].rstrip() + " "
            continue
        line, pending = pending + line, ""
        if line.startswith("megastyle "):
            commands.append((start, line))
    return commands


def cli_args(line: str) -> list[str]:
    """The arguments a command line passes to ``megastyle``, with --print-config where it is not run."""
    tokens = shlex.split(line, comments=True)
    if not tokens or tokens[0] != "megastyle":
        raise ValueError(f"not a megastyle command: {line!r}")
    args = tokens[1:]
    command = " ".join(args[:2]) if args[:1] == ["bench"] else (args[0] if args else "")
    if "--help" in args or "--print-config" in args or command in REAL_COMMANDS:
        return args
    return [*args, "--print-config"]


def run_cli_line(line: str, where: str = "") -> Any:
    """Run one documented command line through the CLI; fail with its output unless it exits 0."""
    from megastyle.cli.app import app

    args = cli_args(line)
    result = CliRunner().invoke(app, args)
    if result.exit_code != 0:
        trace = ""
        if result.exc_info and not isinstance(result.exception, SystemExit):
            trace = "".join(traceback.format_exception(*result.exc_info))
        raise AssertionError(f"{where}: `{line}` exited with {result.exit_code}:\n{result.output}{trace}")
    if "--print-config" in args:
        tomllib.loads(result.stdout)  # the resolved config is TOML
    return result


def moved_imports(code: str) -> list[str]:
    """Modules ``code`` imports through an old path (``megastyle._moved``), which warns."""
    from megastyle._moved import MOVED

    found = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        else:
            continue
        found += [name for name in names if name in MOVED]
    return found


def run_python_block(code: str, doc: Path | str = "<doc>", line: int = 1) -> dict[str, Any]:
    """Execute one documented Python block in a fresh namespace (tracebacks point into the document)."""
    old = moved_imports(code)
    if old:
        raise AssertionError(f"{doc}:{line}: imports old module paths {old}; use their new homes")
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(compile("\n" * (line - 1) + code, str(doc), "exec"), namespace)
    return namespace


BLOCKS = [block for doc in DOCS for block in extract_blocks(doc)]
PYTHON = [b for b in BLOCKS if b.lang == "python" and b.skip is None]
SHELL = [b for b in BLOCKS if b.lang in SHELL_LANGUAGES and b.skip is None and cli_lines(b)]
TOML = [b for b in BLOCKS if b.lang == "toml"]
EXAMPLES = [b for b in BLOCKS if b in PYTHON or b in SHELL]  # document order


def _ids(blocks: list[Block]) -> list[str]:
    return [block.where for block in blocks]


@pytest.fixture(scope="session")
def doc_files() -> dict[str, str]:
    """Files the docs define (a block after ``<!-- file: NAME -->``); the workspace holds them."""
    files: dict[str, str] = {}
    for block in BLOCKS:
        if block.file is None:
            continue
        if files.get(block.file, block.code) != block.code:
            raise AssertionError(f"{block.where}: {block.file} is defined twice, with different contents")
        files[block.file] = block.code
    return files


@pytest.mark.parametrize("block", EXAMPLES, ids=_ids(EXAMPLES))
def test_example_runs(block: Block, in_workspace: Path) -> None:
    """Blocks run in document order, so an example may use what an earlier one of its page wrote."""
    if block.lang == "python":
        run_python_block(block.code, block.doc, block.line)
        return
    for line_number, line in cli_lines(block):
        run_cli_line(line, f"{block.where.rsplit(':', 1)[0]}:{line_number}")


@pytest.mark.parametrize("block", TOML, ids=_ids(TOML))
def test_toml_example_parses(block: Block) -> None:
    tomllib.loads(block.code)


def test_the_docs_have_examples_and_skip_few() -> None:
    readme = [b for b in BLOCKS if b.doc.name == "README.md"]
    assert sum(b.lang == "python" for b in readme) >= 3
    assert sum(len(cli_lines(b)) for b in readme if b.lang in SHELL_LANGUAGES) >= 10
    for name in ("curation.md", "encoder.md", "retrieval.md", "transfer.md"):
        assert any(b.doc.name == name and b in PYTHON for b in BLOCKS), f"docs/{name} runs no Python example"
    skipped = [b.where for b in BLOCKS if b.skip is not None]
    assert len(skipped) <= MAX_SKIPPED, f"too many blocks marked not run: {skipped}"


def test_the_docs_name_no_old_module_path() -> None:
    from megastyle._moved import MOVED

    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        old = sorted(name for name in MOVED if re.search(rf"\b{re.escape(name)}\b", text))
        assert not old, f"{doc.relative_to(REPO)} names old module paths {old}"


# Backend names of the curate stages → the class whose constructor takes ``options``.
BACKEND_CLASSES = {
    ("caption", "heuristic"): "megastyle.curate.caption.heuristic:HeuristicCaptioner",
    ("caption", "transformers"): "megastyle.curate.caption.hf_transformers:TransformersCaptioner",
    ("caption", "openai"): "megastyle.curate.caption.openai_compat:OpenAICaptioner",
    ("generate", "procedural"): "megastyle.curate.generators.procedural:ProceduralRenderer",
    ("generate", "diffusers"): "megastyle.curate.generators.diffusers_backend:DiffusersBackend",
}


def test_backend_options_in_the_docs_exist(doc_files: dict[str, str]) -> None:
    """``options`` tables are free-form for the config (the backend takes them): check them by name here."""
    import importlib
    import inspect

    from megastyle.curate.config import CurateConfig

    checked = 0
    for name, text in doc_files.items():
        curate = tomllib.loads(text).get("curate")
        if not isinstance(curate, dict):
            continue
        for stage in ("caption", "generate"):
            table = curate.get(stage, {})
            default = CurateConfig.model_fields[stage].default_factory().backend  # type: ignore[misc]
            module, _, cls = BACKEND_CLASSES[(stage, table.get("backend", default))].partition(":")
            parameters = inspect.signature(getattr(importlib.import_module(module), cls)).parameters
            unknown = sorted(set(table.get("options", {})) - set(parameters))
            assert not unknown, f"{name}: [curate.{stage}.options] has no such option {unknown}"
            checked += 1
    assert checked >= 4


def test_the_commands_page_lists_every_command() -> None:
    from megastyle.cli.app import COMMANDS, bench_app

    text = (REPO / "docs" / "commands.md").read_text(encoding="utf-8")
    names = [f"bench {name}" if parent is bench_app else name for parent, name, *_ in COMMANDS]
    missing = [name for name in [*names, "score"] if f"`megastyle {name}" not in text]
    assert not missing, f"docs/commands.md does not list {missing}"


def _anchors(doc: Path) -> set[str]:
    """GitHub's anchors of a document's headings."""
    anchors = set()
    for line in doc.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


def test_local_links_resolve() -> None:
    for doc in DOCS:
        text = re.sub(r"```.*?```", "", doc.read_text(encoding="utf-8"), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if "://" in target or target.startswith("mailto:"):
                continue
            path, _, anchor = target.partition("#")
            file = (doc.parent / path).resolve() if path else doc
            assert file.exists(), f"{doc.relative_to(REPO)} links to a missing {target}"
            if anchor and file.suffix == ".md":
                assert anchor in _anchors(file), (
                    f"{doc.relative_to(REPO)}: no heading for #{anchor} in {path}"
                )


# ----- the runner itself must be able to fail ---------------------------------------------------------------
def test_the_runner_catches_wrong_options_and_values(in_workspace: Path) -> None:
    with pytest.raises(AssertionError, match="exited with 2"):  # a misspelt option of a command run for real
        run_cli_line('megastyle transfer --stlye style.png --prompt "A bench"')
    with pytest.raises(AssertionError, match="exited with 2"):  # ... and of one checked with --print-config
        run_cli_line("megastyle curate --config my.toml --balance.style.targett 5")
    with pytest.raises(AssertionError, match="exited with 2"):  # a value the config refuses (K ≥ 2)
        run_cli_line("megastyle train-encoder --images-per-style 1")
    assert cli_args("megastyle bench retrieval --source x") == [
        "bench",
        "retrieval",
        "--source",
        "x",
        "--print-config",
    ]


def test_the_runner_catches_broken_python(in_workspace: Path) -> None:
    with pytest.raises(ImportError):
        run_python_block("from megastyle.encode import load_offical_encoder\n")
    with pytest.raises(FileNotFoundError):
        run_python_block('from megastyle.data import ShardReader\nShardReader("runs/no-such-dataset")\n')
    with pytest.raises(AssertionError, match="old module paths"):
        run_python_block("from megastyle.curate.engine import make_engine\n")


def test_extraction_reads_markers_and_continued_lines() -> None:
    text = "\n".join(
        [
            "Intro.",
            "<!-- not run: needs a GPU -->",
            "```python",
            "raise SystemExit",
            "```",
            "<!-- file: a.toml -->",
            "```toml",
            "[curate]",
            "```",
            "```bash",
            "make test",
            "megastyle curate \\",
            "  --config a.toml   # a comment",
            "```",
        ]
    )
    python, toml, bash = extract_blocks(Path("x.md"), text)
    assert (python.skip, python.line, python.code) == ("needs a GPU", 4, "raise SystemExit\n")
    assert (toml.file, toml.skip) == ("a.toml", None)
    assert cli_lines(bash) == [(12, "megastyle curate --config a.toml   # a comment")]
    assert cli_args(cli_lines(bash)[0][1]) == ["curate", "--config", "a.toml", "--print-config"]
    with pytest.raises(AssertionError, match="must say why"):
        extract_blocks(Path("x.md"), "<!-- not run: -->\n```python\npass\n```\n")

"""Mutation score of the modules that carry the paper's formulas and the run-state logic (``make mutation``).

    python tools/mutation.py [GROUP ...] [--only MODULE ...] [--jobs 2] [--out build/mutation]
                             [--report-only] [--docs docs/testing.md]

Each group is a set of modules and the tests that should catch a change to them. For each group this
copies ``src/``, ``tests/`` and ``pyproject.toml`` to ``OUT/GROUP``, adds a ``[tool.mutmut]`` section
(those modules, those tests) and runs ``mutmut run`` there, so the working tree is never touched and
groups run independently. Mutants are run in forkserver workers (torch is not fork-safe). A run of some
of a group's modules (``--only``) has its own copy, ``OUT/GROUP--STEMS``; ``--report-only`` scores each
module from the newest finished run that mutated it, so a large group can be measured module by module.

A surviving mutant is either a gap in the tests or equivalent (it cannot change any result: a
``float("-INF")`` for ``float("-inf")``, a device argument that is already the default on every
device a test can reach…). Equivalent ones are listed with their reason in ``tools/mutation_equivalent.toml``,
matched by module, function and the changed line, so renumbering does not lose them. The score is
killed / (all − equivalent); ``OUT/report.md`` and ``OUT/report.json`` hold the per-module table and
every other survivor with its diff; ``--docs`` writes the same between the file's markers (a group whose
own ``<!-- mutation report GROUP: start -->`` markers are there gets its own section). The exit code is 1
when a module is under ``--goal`` (0.9).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EQUIVALENT_FILE = ROOT / "tools" / "mutation_equivalent.toml"

# Group → (modules to mutate, tests that should kill their mutants). In-process tests only: a test
# that trains in a subprocess imports the unmutated package and cannot see a mutant.
GROUPS: dict[str, tuple[list[str], list[str]]] = {
    "losses": (
        ["encode/losses.py"],
        ["tests/encode/test_losses_sscl.py", "tests/encode/test_gradcache_equivalence.py"],
    ),
    "metrics": (
        ["bench/metrics.py"],
        [
            "tests/bench/test_metrics_retrieval.py",
            "tests/bench/test_metrics_edges.py",
            "tests/bench/test_compare_paired.py",
        ],
    ),
    "gradcache": (
        ["encode/gradcache.py"],
        ["tests/encode/test_gradcache_equivalence.py", "tests/encode/test_train_distributed.py"],
    ),
    "sampler": (
        ["encode/sampler.py"],
        [
            "tests/encode/test_sampler_pk.py",
            "tests/encode/test_sampler_neighbours.py",
            "tests/encode/test_sampler_edges.py",
        ],
    ),
    "latents": (
        ["transfer/latents.py"],
        ["tests/transfer/test_latents_ids.py", "tests/transfer/test_reference_oracle.py"],
    ),
    "schedule": (
        ["transfer/schedule.py"],
        [
            "tests/transfer/test_schedule_official.py",
            "tests/transfer/test_schedule_edges.py",
            "tests/transfer/test_sigma_distribution.py",
        ],
    ),
    "kohya": (
        ["transfer/kohya.py"],
        [
            "tests/transfer/test_lora_kohya.py",
            "tests/transfer/test_kohya_edges.py",
            "tests/transfer/test_lora_oracle_flux_dev.py",
            "tests/transfer/test_lora_formats.py",
        ],
    ),
    "official": (
        ["encode/official.py", "encode/state_dict.py"],
        [
            "tests/encode/test_model_official.py",
            "tests/encode/test_official_edges.py",
            "tests/encode/test_score_official.py",
        ],
    ),
    "runstate": (
        ["curate/runstate.py", "checkpoints.py", "encode/checkpoint.py"],
        [
            "tests/curate/test_runstate_files.py",
            "tests/training/test_checkpoint_files.py",
            "tests/encode/test_train_resume.py",
            "tests/curate/test_pipeline_resume.py",
        ],
    ),
    "dedup": (
        [
            "curate/dedup/__init__.py",
            "curate/dedup/exact.py",
            "curate/dedup/fuzzy.py",
            "curate/dedup/minhash.py",
            "curate/dedup/pairs.py",
            "curate/dedup/semantic.py",
            "curate/dedup/shingles.py",
            "curate/dedup/steps.py",
        ],
        [
            "tests/curate/test_dedup_fuzzy_edges.py",  # first: its deadline fails a hanging union-find fast
            "tests/curate/test_dedup_shingles_edges.py",
            "tests/curate/test_dedup_semantic_edges.py",
            "tests/curate/test_dedup_edges.py",
            "tests/curate/test_dedup_exact.py",
            "tests/curate/test_dedup_fuzzy.py",
            "tests/curate/test_dedup_minhash.py",
            "tests/curate/test_dedup_minhash_edges.py",
            "tests/curate/test_dedup_semantic.py",
            "tests/curate/test_dedup_stage.py",
        ],
    ),
}
DOCS_START, DOCS_END = "<!-- mutation report: start -->", "<!-- mutation report: end -->"
PYTEST_ARGS = ["-p", "no:cacheprovider", "-q", "-x", "-m", ""]
ORDER_HOOK = """

_MUTATION_TEST_ORDER = {order!r}


def pytest_collection_modifyitems(config, items):
    rank = {{name: i for i, name in enumerate(_MUTATION_TEST_ORDER)}}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
"""
STATUS = re.compile(r"^\s*(\S+): (\S.*)$")


@dataclass
class Survivor:
    name: str
    module: str
    function: str
    removed: list[str]
    added: list[str]
    status: str  # survived, timeout, no tests, …
    reason: str | None = None  # set when listed as equivalent

    def as_dict(self) -> dict[str, object]:
        return self.__dict__.copy()


@dataclass
class ModuleScore:
    module: str
    total: int = 0
    killed: int = 0
    equivalent: int = 0
    other: dict[str, int] = field(default_factory=dict)  # survived, timeout, no tests, …

    @property
    def score(self) -> float:
        counted = self.total - self.equivalent
        return self.killed / counted if counted else 1.0


def module_of(mutant: str) -> tuple[str, str]:
    """``megastyle.encode.losses.x_supcon_loss__mutmut_3`` → (``encode/losses.py``, ``supcon_loss``)."""
    dotted, _, last = mutant.rpartition(".")
    function = re.sub(r"__mutmut_\d+$", "", last)
    # Functions are x_NAME, methods xǁCLASSǁNAME.
    function = function.removeprefix("x_") if function.startswith("x_") else function.removeprefix("x")
    function = function.replace("ǁ", ".").strip(".")
    parts = dotted.split(".")[1:]
    for candidate in ("/".join(parts) + ".py", "/".join(parts) + "/__init__.py"):
        if (ROOT / "src" / "megastyle" / candidate).is_file():
            return candidate, function
    return "/".join(parts) + ".py", function


def load_equivalent() -> list[dict[str, str]]:
    if not EQUIVALENT_FILE.is_file():
        return []
    return list(tomllib.loads(EQUIVALENT_FILE.read_text())["equivalent"])


def matches(entry: dict[str, str], survivor: Survivor) -> bool:
    squash = lambda lines: " ".join(" ".join(lines).split())  # noqa: E731
    return (
        entry["module"] == survivor.module
        and entry["function"] == survivor.function
        and " ".join(entry["before"].split()) == squash(survivor.removed)
        and " ".join(entry["after"].split()) == squash(survivor.added)
    )


def selected_modules(group: str, only: list[str] | None) -> list[str]:
    """The group's modules, or those of them that ``--only`` names."""
    return [m for m in GROUPS[group][0] if not only or m in only]


def run_folder(group: str, out: Path, modules: list[str]) -> Path:
    """``OUT/GROUP`` for a whole group; ``OUT/GROUP--STEMS`` for a run of some of its modules (``--only``)."""
    if modules == GROUPS[group][0]:
        return out / group
    return out / f"{group}--{'+'.join(Path(m).stem for m in modules)}"


def finished_runs(group: str, out: Path) -> list[Path]:
    """The group's finished runs in ``out``, whole or per module, oldest first."""
    runs = [out / group, *out.glob(f"{group}--*")]
    done = [r for r in runs if (r / "seconds.txt").is_file()]
    return sorted(done, key=lambda r: (r / "seconds.txt").stat().st_mtime)


def prepare(group: str, out: Path, only: list[str] | None = None) -> Path:
    tests = GROUPS[group][1]
    modules = selected_modules(group, only)
    work = run_folder(group, out, modules)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    shutil.copytree(ROOT / "src", work / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copytree(ROOT / "tests", work / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    missing = [t for t in tests if not (ROOT / t).is_file()]
    if missing:
        raise SystemExit(f"{group}: no such test file {missing}")
    section = {
        "source_paths": ["src"],
        "only_mutate": [f"src/megastyle/{m}" for m in modules],
        "pytest_add_cli_args_test_selection": tests,
        "pytest_add_cli_args": PYTEST_ARGS,
        "process_isolation": "forkserver",
    }
    # Only in this copy: the group's test files run in the order listed (direct, fast tests first), so a
    # mutant is usually caught before the slow end-to-end tests start (mutmut hands pytest a set).
    with (work / "tests" / "conftest.py").open("a") as conftest:
        conftest.write(ORDER_HOOK.format(order=[Path(t).name for t in tests]))
    lines = ["", "[tool.mutmut]"] + [f"{k} = {json.dumps(v)}" for k, v in section.items()]
    (work / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text() + "\n".join(lines) + "\n")
    return work


def run_group(
    group: str, out: Path, jobs: int, mutmut: str, only: list[str] | None = None
) -> tuple[list[ModuleScore], list[Survivor], float]:
    work = prepare(group, out, only)
    started = time.perf_counter()
    with (work / "mutmut.log").open("w") as log:
        subprocess.run(
            [mutmut, "run", "--max-children", str(jobs)], cwd=work, stdout=log, stderr=log, check=False
        )
    seconds = time.perf_counter() - started
    (work / "seconds.txt").write_text(f"{seconds:.1f}\n")
    return score_group(work, mutmut, seconds)


def score_group(work: Path, mutmut: str, seconds: float) -> tuple[list[ModuleScore], list[Survivor], float]:
    """Read a finished group's results and match its survivors against the equivalent list."""
    listing = subprocess.run(
        [mutmut, "results", "--all", "true"], cwd=work, capture_output=True, text=True, check=True
    ).stdout
    equivalent = load_equivalent()
    scores: dict[str, ModuleScore] = {}
    survivors: list[Survivor] = []
    for line in listing.splitlines():
        found = STATUS.match(line)
        if not found:
            continue
        name, status = found[1], found[2].strip()
        module, function = module_of(name)
        score = scores.setdefault(module, ModuleScore(module))
        score.total += 1
        if status == "killed":
            score.killed += 1
            continue
        diff = subprocess.run([mutmut, "show", name], cwd=work, capture_output=True, text=True).stdout
        removed = [x[1:].strip() for x in diff.splitlines() if x.startswith("-") and not x.startswith("---")]
        added = [x[1:].strip() for x in diff.splitlines() if x.startswith("+") and not x.startswith("+++")]
        survivor = Survivor(name, module, function, removed, added, status)
        entry = next((e for e in equivalent if matches(e, survivor)), None) if status == "survived" else None
        if entry is not None:
            survivor.reason = entry["reason"]
            score.equivalent += 1
        else:
            score.other[status] = score.other.get(status, 0) + 1
        survivors.append(survivor)
    return list(scores.values()), survivors, seconds


def run_modules(work: Path) -> list[str]:
    """The modules a run mutated, as its copy's ``[tool.mutmut] only_mutate`` names them."""
    section = tomllib.loads((work / "pyproject.toml").read_text())["tool"]["mutmut"]
    return [m.removeprefix("src/megastyle/") for m in section["only_mutate"]]


def score_runs(
    runs: list[Path], mutmut: str, modules: list[str]
) -> tuple[list[ModuleScore], list[Survivor], float]:
    """Score several finished runs of one group as one: each module from the newest run that mutated it.
    Only the runs that supply a module are read (the seconds are theirs)."""
    newest = {module: work for work in runs for module in run_modules(work)}  # oldest first: newer wins
    chosen = {module: newest[module] for module in modules if module in newest}
    scored: dict[str, tuple[ModuleScore, list[Survivor]]] = {}
    seconds = 0.0
    for work in [r for r in runs if r in chosen.values()]:
        run_seconds = float((work / "seconds.txt").read_text())
        scores, survivors, _ = score_group(work, mutmut, run_seconds)
        seconds += run_seconds
        for score in scores:
            if chosen.get(score.module) == work:
                scored[score.module] = (score, [v for v in survivors if v.module == score.module])
    picked = [scored[m] for m in modules if m in scored]
    return [score for score, _ in picked], [v for _, survivors in picked for v in survivors], seconds


def report_section(
    results: dict[str, tuple[list[ModuleScore], list[Survivor], float]], heading: str = "###"
) -> tuple[list[str], list[str]]:
    """(the score table's rows, the whole section: table, survivors not killed, equivalent ones)."""
    rows = [
        "| module | mutants | killed | equivalent | not killed | score |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for scores, _survivors, _seconds in results.values():
        for s in sorted(scores, key=lambda s: s.module):
            missed = sum(s.other.values())
            rows.append(
                f"| `{s.module}` | {s.total} | {s.killed} | {s.equivalent} | {missed} | {s.score:.1%} |"
            )
    section = [*rows, "", f"{heading} Not killed and not listed as equivalent", ""]
    equivalent: dict[str, list[str]] = {}
    for _scores, survivors, _seconds in results.values():
        for v in survivors:
            change = f"`{' '.join(v.removed)}` → `{' '.join(v.added)}`"
            if v.reason is None:
                section.append(f"- `{v.module}` `{v.function}` ({v.status}): {change}")
            else:
                equivalent.setdefault(v.module, []).append(f"- `{v.function}`: {change}. {v.reason}")
    if section[-1] == "":
        section.append("None.")
    section += ["", f"{heading} Equivalent survivors, with the reason each cannot change a result"]
    for module, entries in sorted(equivalent.items()):
        section += ["", f"`{module}`:", "", *entries]
    return rows, section


def write_report(
    out: Path,
    results: dict[str, tuple[list[ModuleScore], list[Survivor], float]],
    goal: float,
    docs: Path | None = None,
) -> bool:
    """``OUT/report.md`` and ``report.json``, and with ``docs`` its sections: a group whose own markers
    are there (``<!-- mutation report GROUP: start -->``) goes there, the rest between the shared ones."""
    rows, section = report_section(results)
    payload = {
        group: {
            "seconds": round(seconds, 1),
            "modules": [s.__dict__ | {"score": s.score} for s in scores],
            "survivors": [v.as_dict() for v in survivors],
        }
        for group, (scores, survivors, seconds) in results.items()
    }
    (out / "report.md").write_text("\n".join(["# Mutation score", "", *section]) + "\n")
    (out / "report.json").write_text(json.dumps(payload, indent=2))
    if docs is not None:
        text = docs.read_text()
        own = {g for g in results if group_markers(g)[0] in text}
        for group in sorted(own):
            write_docs_section(docs, "\n".join(report_section({group: results[group]}, "####")[1]), group)
        shared = {g: r for g, r in results.items() if g not in own}
        if shared:
            write_docs_section(docs, "\n".join(report_section(shared)[1]))
    print("\n".join(rows))
    return all(s.score >= goal for scores, _, _ in results.values() for s in scores)


def group_markers(group: str | None) -> tuple[str, str]:
    """The docs markers of one group's own report (``None``: the shared report of the other groups)."""
    if group is None:
        return DOCS_START, DOCS_END
    return f"<!-- mutation report {group}: start -->", f"<!-- mutation report {group}: end -->"


def write_docs_section(docs: Path, section: str, group: str | None = None) -> None:
    """Replace the text between the report markers of ``docs`` (docs/testing.md) with ``section``."""
    start, end = group_markers(group)
    text = docs.read_text()
    if start not in text or end not in text:
        raise SystemExit(f"{docs}: no {start} … {end} markers to write the report between")
    head, _, rest = text.partition(start)
    _, _, tail = rest.partition(end)
    docs.write_text(f"{head}{start}\n{section}\n{end}{tail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("groups", nargs="*", help=f"Groups to run (default: all): {', '.join(GROUPS)}.")
    parser.add_argument("--jobs", type=int, default=2, help="Mutants run at once.")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "mutation")
    parser.add_argument("--goal", type=float, default=0.9, help="Least score per module for exit code 0.")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="Score finished runs in OUT again (after editing the equivalent list), without mutating.",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="MODULE",
        help="Mutate only these modules of the groups (e.g. curate/dedup/steps.py).",
    )
    parser.add_argument(
        "--docs", type=Path, help="Also write the report between the markers of this file (docs/testing.md)."
    )
    args = parser.parse_args()
    mutmut = shutil.which("mutmut", path=str(Path(sys.executable).parent)) or shutil.which("mutmut")
    if mutmut is None:
        raise SystemExit("mutmut is not installed: pip install -e '.[mutation]'")
    unknown = sorted(set(args.groups) - set(GROUPS))
    if unknown:
        raise SystemExit(f"no such group {unknown}; groups: {', '.join(GROUPS)}")
    known = {m for modules, _ in GROUPS.values() for m in modules}
    if args.only and set(args.only) - known:
        raise SystemExit(f"no group mutates {sorted(set(args.only) - known)}")
    args.out.mkdir(parents=True, exist_ok=True)
    results = {}
    for group in args.groups or list(GROUPS):
        action = "scoring" if args.report_only else "mutating"
        modules = selected_modules(group, args.only)
        if not modules:  # --only names none of this group's modules (an empty list would mutate everything)
            continue
        print(f"{group}: {action} {', '.join(modules)}", flush=True)
        if args.report_only:
            runs = finished_runs(group, args.out)
            if not runs:
                raise SystemExit(f"{group}: no finished run in {args.out}")
            results[group] = score_runs(runs, mutmut, modules)
        else:
            results[group] = run_group(group, args.out, args.jobs, mutmut, args.only)
        scores, _, seconds = results[group]
        for s in scores:
            print(
                f"  {s.module}: {s.killed}/{s.total - s.equivalent} killed ({s.score:.1%}) in {seconds:.0f} s",
                flush=True,
            )
    ok = write_report(args.out, results, args.goal, args.docs)
    print(f"report: {args.out / 'report.md'}")
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()

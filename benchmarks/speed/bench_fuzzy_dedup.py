"""Fuzzy dedup throughput and agreement: megastyle's vectorised MinHash + LSH against datasketch.

    python benchmarks/speed/bench_fuzzy_dedup.py [--n 200000] [--ngram 24] [--unit char] [--threads 2]

A script, not a test: it prints, never asserts. The corpus is sampled style and content prompts plus
planted near-duplicates (case, punctuation, a prefix, a word swapped, a synonym, a trailing clause).
Every run starts from the raw texts and ends at the connected components, timed end to end:

- megastyle: ``fuzzy_edges`` (normalise + shingle + MinHash signatures; LSH band buckets; MinHash
  pre-filter + exact-Jaccard verification of candidates) then ``connected_components``; once on one
  thread (the headline) and once on ``--threads``.
- datasketch, same hash family: normalise (``prepare_texts``) + our 32-bit shingle hashes (our
  vectorised code, timed here) fed to ``MinHash(hashfunc=identity, permutations=<our (a, b)>,
  scheme="legacy")``, one per prompt; ``MinHashLSH(params=(bands, rows))`` insert + query of every
  prompt; then the same verification (its own ``MinHash.jaccard`` for the estimate pre-filter, our
  vectorised exact Jaccard) and the same union-find. Signatures must be identical, so any
  disagreement is an implementation difference (stacking its signatures to compare is not timed).
- datasketch, independent family (its defaults: ``affine32`` scheme, ``sha1_hash32`` of each UTF-8
  shingle, its own seeded permutations): same normalisation, LSH, verification and union-find.
  Its disagreement with megastyle is MinHash sampling noise near the LSH threshold, both sides alike.

The speed-up headline is megastyle on one thread against the faster of the two datasketch runs
(datasketch is single-threaded). Times are wall-clock on a possibly shared machine (the load average
is printed); CPU seconds of this process are printed alongside.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402

import numpy as np  # noqa: E402

from megastyle.curate.dedup import MinHasher, connected_components, shingle_strings  # noqa: E402
from megastyle.curate.dedup.fuzzy import ShingleSetTable, fuzzy_edges, verify_candidates  # noqa: E402
from megastyle.curate.dedup.shingles import prepare_texts, shingle_hash32, shingle_hashes  # noqa: E402
from megastyle.prompts import sample_content_prompts, sample_style_prompts  # noqa: E402

SYNONYMS = {
    " lighting": " light",
    " surface": " finish",
    " edges": " edge",
    " beside ": " next to ",
    " under ": " below ",
}
EDITS: list[tuple[str, Callable[[str, random.Random], str]]] = [
    ("case+punctuation", lambda t, r: t.upper().rstrip(".") + " !"),
    ("prefix", lambda t, r: "Artwork: " + t),
    ("trailing clause", lambda t, r: t.rstrip(".") + ", highly detailed."),
    ("comma→semicolon", lambda t, r: t.replace(", ", "; ", 1)),
    ("synonym", lambda t, r: next((t.replace(a, b, 1) for a, b in SYNONYMS.items() if a in t), t + " again")),
    ("word swap", lambda t, r: _swap_words(t, r)),
]


def _swap_words(text: str, rng: random.Random) -> str:
    words = text.split()
    if len(words) < 3:
        return text + " again"
    i = rng.randrange(len(words) - 1)
    words[i], words[i + 1] = words[i + 1], words[i]
    return " ".join(words)


def make_corpus(n: int, dup_rate: float, seed: int) -> tuple[list[str], dict[int, int]]:
    """``n`` prompts: distinct sampled style/content prompts, then planted near-duplicates, shuffled."""
    rng = random.Random(seed)
    planted_count = int(n * dup_rate)
    distinct = n - planted_count
    base = sample_style_prompts(distinct // 2, seed=seed) + sample_content_prompts(
        distinct - distinct // 2, seed=seed + 1
    )
    copies = []
    for _ in range(planted_count):
        source = rng.randrange(len(base))
        _, edit = rng.choice(EDITS)
        copies.append((edit(base[source], rng), source))
    texts = base + [text for text, _ in copies]
    order = list(range(len(texts)))
    rng.shuffle(order)
    position = {old: new for new, old in enumerate(order)}
    planted = {position[len(base) + k]: position[source] for k, (_, source) in enumerate(copies)}
    return [texts[i] for i in order], planted


@dataclass
class Run:
    """One side's outcome: wall and CPU seconds, per-step seconds, candidates, edges, component labels."""

    name: str
    wall: float = 0.0
    cpu: float = 0.0
    steps: dict[str, float] = field(default_factory=dict)
    signatures: np.ndarray | None = None
    candidates: set[tuple[int, int]] = field(default_factory=set)
    edges: set[tuple[int, int]] = field(default_factory=set)
    labels: np.ndarray | None = None

    @property
    def removed(self) -> set[int]:
        """Everything but the smallest index of each component."""
        assert self.labels is not None
        return set(np.flatnonzero(self.labels != np.arange(len(self.labels))).tolist())


class _Clock:
    """Marks step boundaries: wall seconds per step, and totals (wall and this process's CPU)."""

    def __init__(self) -> None:
        self.start, self.cpu_start = time.perf_counter(), time.process_time()
        self.mark = self.start
        self.steps: dict[str, float] = {}

    def step(self, name: str) -> None:
        now = time.perf_counter()
        self.steps[name] = self.steps.get(name, 0.0) + now - self.mark
        self.mark = now

    def finish(self, run: Run) -> Run:
        run.wall, run.cpu = time.perf_counter() - self.start, time.process_time() - self.cpu_start
        run.steps = self.steps
        return run


def run_megastyle(texts: list[str], args: argparse.Namespace, threads: int) -> Run:
    """``fuzzy_edges`` then union-find, exactly as ``fuzzy_duplicates`` runs them."""
    clock = _Clock()
    found = fuzzy_edges(
        texts,
        bands=args.bands,
        rows=args.rows,
        ngram=args.ngram,
        unit=args.unit,
        seed=args.seed,
        threshold=args.threshold,
        max_bucket_size=args.max_bucket_size,
        threads=threads,
    )
    clock.steps.update(found.seconds)
    clock.mark = time.perf_counter()
    labels = connected_components(len(texts), found.edges)
    clock.step("union-find")
    run = Run(f"megastyle, {threads} thread{'s' if threads > 1 else ''}", signatures=found.signatures)
    run.edges, run.labels = {tuple(p) for p in found.edges.tolist()}, labels
    run.candidates = {tuple(p) for p in found.candidates.tolist()}
    return clock.finish(run)


def _identity(value: int) -> int:
    return value


def run_datasketch(texts: list[str], args: argparse.Namespace, hasher: MinHasher, same_family: bool) -> Run:
    """datasketch's MinHash + MinHashLSH, then the same verification and union-find as megastyle."""
    from datasketch import MinHash, MinHashLSH

    num_perm = args.bands * args.rows
    clock = _Clock()
    prepared = prepare_texts(texts, normalize=True)
    clock.step("normalise")
    if same_family:
        hashes, offsets = shingle_hashes(prepared, args.ngram, args.unit, normalize=False)
        values = shingle_hash32(hashes).tolist()
        inputs = [values[offsets[i] : offsets[i + 1]] for i in range(len(texts))]
        clock.step("our shingle hashes")
        options = {"hashfunc": _identity, "permutations": hasher.permutations, "scheme": "legacy"}
    else:
        inputs = [
            [s.encode("utf-8") for s in shingle_strings(t, args.ngram, args.unit, False)] for t in prepared
        ]
        clock.step("shingle strings")
        template = MinHash(num_perm=num_perm, seed=args.seed + 1)  # datasketch's default scheme and hash
        options = {"permutations": template.permutations, "scheme": template.scheme}
    minhashes = []
    for doc in inputs:
        m = MinHash(num_perm=num_perm, seed=args.seed, **options)
        m.update_batch(doc)
        minhashes.append(m)
    clock.step("MinHash")
    lsh = MinHashLSH(num_perm=num_perm, params=(args.bands, args.rows))
    for i, m in enumerate(minhashes):
        lsh.insert(i, m, check_duplication=False)
    candidates = {(min(i, j), max(i, j)) for i, m in enumerate(minhashes) for j in lsh.query(m) if j != i}
    clock.step("LSH insert+query")
    pairs = np.array(sorted(candidates), dtype=np.int64).reshape(-1, 2)
    estimates = np.array([minhashes[i].jaccard(minhashes[j]) for i, j in pairs.tolist()])
    edges, _ = verify_candidates(texts, None, pairs, args.threshold, hasher, estimates=estimates)
    clock.step("verify")
    labels = connected_components(len(texts), edges)
    clock.step("union-find")
    name = (
        "same family (legacy, our hashes and (a, b))"
        if same_family
        else "independent family (affine32, sha1_hash32)"
    )
    run = clock.finish(Run(f"datasketch, {name}", candidates=candidates, labels=labels))
    run.edges = {tuple(p) for p in edges.tolist()}
    run.signatures = np.stack([m.hashvalues for m in minhashes])  # for the comparison, not timed
    return run


def _jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a | b else 1.0


def _print_run(run: Run, n: int) -> None:
    steps = ", ".join(f"{k} {v:.2f}" for k, v in run.steps.items())
    print(
        f"  {run.name}: {run.wall:7.2f} s wall ({n / run.wall:,.0f} prompts/s), cpu {run.cpu:.2f} s  [{steps}]"
    )


def _print_agreement(label: str, ours: Run, theirs: Run, texts: list[str], hasher: MinHasher, args) -> None:
    removed_ours, removed_theirs = ours.removed, theirs.removed
    print(f"{label}:")
    print(
        f"  duplicate sets (removed prompts): megastyle {len(removed_ours)}, datasketch {len(removed_theirs)}, "
        f"both {len(removed_ours & removed_theirs)} → agreement (Jaccard) {_jaccard(removed_ours, removed_theirs):.4f}"
    )
    assert ours.labels is not None and theirs.labels is not None
    same_group = (ours.labels == theirs.labels).mean()
    print(
        f"  verified edges Jaccard {_jaccard(ours.edges, theirs.edges):.4f}; "
        f"prompts with the same component {same_group:.4%}"
    )
    union = np.array(sorted(ours.edges | theirs.edges), dtype=np.int64).reshape(-1, 2)
    if len(union) and ours.edges != theirs.edges:
        sims = ShingleSetTable.build(texts, np.unique(union), hasher).jaccard(union)
        for low, high in ((args.threshold, 0.9), (0.9, 1.01)):
            band = {tuple(p) for p, sim in zip(union.tolist(), sims, strict=True) if low <= sim < high}
            print(
                f"    edges with exact Jaccard in [{low:.2f}, {min(high, 1.0):.2f}]: {len(band)}, "
                f"agreement {_jaccard(band & ours.edges, band & theirs.edges):.4f}"
            )


def main() -> None:
    """Generate the corpus, time every side, print times, ratios and agreement."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--dup-rate", type=float, default=0.1)
    parser.add_argument("--ngram", type=int, default=24)
    parser.add_argument("--unit", choices=["char", "word"], default="char")
    parser.add_argument("--bands", type=int, default=20)
    parser.add_argument("--rows", type=int, default=13)
    parser.add_argument("--threshold", type=float, default=0.8)
    parser.add_argument("--max-bucket-size", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2, help="megastyle's second run (1 skips it)")
    parser.add_argument("--no-independent", dest="independent", action="store_false")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    print(
        f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cpus, "
        f"numpy {np.__version__}, load average {os.getloadavg()[0]:.2f}"
    )
    mark = time.perf_counter()
    texts, planted = make_corpus(args.n, args.dup_rate, args.seed)
    print(
        f"corpus: {len(texts)} prompts ({len(planted)} planted near-duplicates) in {time.perf_counter() - mark:.1f}s"
    )
    print(
        f"settings: {args.unit} {args.ngram}-grams, {args.bands} bands × {args.rows} rows, "
        f"exact-Jaccard verification at {args.threshold}, max bucket {args.max_bucket_size}"
    )
    hasher = MinHasher(args.bands * args.rows, args.ngram, args.unit, args.seed)
    runs = [run_megastyle(texts, args, threads=1)]
    if args.threads > 1:
        runs.append(run_megastyle(texts, args, threads=args.threads))
    same = run_datasketch(texts, args, hasher, same_family=True)
    runs.append(same)
    independent = run_datasketch(texts, args, hasher, same_family=False) if args.independent else None
    if independent:
        runs.append(independent)
    print("times (wall seconds per step in brackets):")
    for run in runs:
        _print_run(run, len(texts))
    ours = runs[0]
    references = [same] + ([independent] if independent else [])
    fastest = min(references, key=lambda r: r.wall)
    print(
        f"speed-up, megastyle 1 thread vs the faster datasketch run ({fastest.name}): {fastest.wall / ours.wall:.1f}×"
    )
    for ref in references:
        print(f"  vs {ref.name}: {ref.wall / ours.wall:.1f}× wall, {ref.cpu / ours.cpu:.1f}× cpu")
    if args.threads > 1:
        print(
            f"  megastyle {args.threads} threads vs {fastest.name}: {fastest.wall / runs[1].wall:.1f}× wall"
        )
        print(
            f"  megastyle {args.threads} threads: edges identical to 1 thread: {runs[1].edges == ours.edges}"
        )
    assert ours.signatures is not None and same.signatures is not None
    equal_rows = (ours.signatures == same.signatures).all(axis=1).sum()
    print(f"same hash family: identical signatures for {equal_rows} of {len(texts)} prompts")
    print(
        f"  LSH candidate pairs: megastyle {len(ours.candidates)}, datasketch {len(same.candidates)}, "
        f"Jaccard {_jaccard(ours.candidates, same.candidates):.4f}"
    )
    _print_agreement(
        "agreement at the same hash family (tests the implementation)", ours, same, texts, hasher, args
    )
    if independent:
        _print_agreement(
            "agreement with datasketch's own hash family (MinHash sampling noise, both sides alike)",
            ours,
            independent,
            texts,
            hasher,
            args,
        )
    copies, bases = np.array(list(planted)), np.array(list(planted.values()))
    for run in [ours, *references]:
        assert run.labels is not None
        grouped = run.labels[copies] == run.labels[bases]
        print(f"{run.name}: planted near-duplicates grouped with their original {grouped.mean():.3f}")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

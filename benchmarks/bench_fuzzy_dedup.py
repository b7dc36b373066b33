"""Fuzzy dedup throughput and agreement: megastyle's vectorised MinHash + LSH against datasketch.

    python benchmarks/bench_fuzzy_dedup.py [--n 200000] [--ngram 24] [--unit char] [--dup-rate 0.1]

A script, not a test: it prints, never asserts. The corpus is sampled style and content prompts plus
planted near-duplicates (case, punctuation, a prefix, a word swapped, a synonym, a trailing clause).
Both sides start from the raw texts and end at the set of removed items, with the same shingles
(``shingle_strings``: normalised text, character or word n-grams), the same num_perm/bands/rows, the
same exact-Jaccard verification of candidate pairs and the same keep-first rule over connected
components; they differ only in hashing (datasketch: SHA-1 per shingle and a MinHash object per
document; megastyle: batch-vectorised). Agreement is the Jaccard of the two removed sets and of the
two verified edge sets; recall of the planted near-duplicates is printed for each side. Two
independent MinHash families disagree only on pairs near the LSH threshold.
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

import numpy as np  # noqa: E402

from megastyle.curate.dedup import MinHasher, connected_components, shingle_strings  # noqa: E402
from megastyle.curate.dedup.fuzzy import fuzzy_edges, shingle_sets_by_index, verify_pairs  # noqa: E402
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


def removed_from_components(n: int, edges: np.ndarray) -> tuple[set[int], np.ndarray]:
    """Keep the smallest index of every component; everything else is removed. Also the labels."""
    labels = connected_components(n, edges)
    return set(np.flatnonzero(labels != np.arange(n)).tolist()), labels


def run_megastyle(
    texts: list[str], args: argparse.Namespace
) -> tuple[float, dict[str, float], set[int], np.ndarray, set[tuple[int, int]]]:
    """The megastyle fuzzy step: ``fuzzy_edges`` then union-find, exactly as ``fuzzy_duplicates`` runs them."""
    start = time.perf_counter()
    found = fuzzy_edges(
        texts,
        bands=args.bands,
        rows=args.rows,
        ngram=args.ngram,
        unit=args.unit,
        seed=args.seed,
        verify=args.verify,
        threshold=args.threshold,
    )
    removed, labels = removed_from_components(len(texts), found.edges)
    total = time.perf_counter() - start
    return total, {}, removed, labels, {tuple(p) for p in found.edges.tolist()}


def run_datasketch(
    texts: list[str], args: argparse.Namespace
) -> tuple[float, dict[str, float], set[int], set[tuple[int, int]]]:
    """datasketch's MinHash + MinHashLSH on the same shingles, verification and keep rule."""
    from datasketch import MinHash, MinHashLSH

    num_perm = args.bands * args.rows
    times = {}
    start = time.perf_counter()
    # One permutation draw shared by every document (datasketch's fast path).
    template = MinHash(num_perm=num_perm, seed=args.seed, scheme=args.scheme)
    shingles, minhashes = [], []
    for text in texts:
        doc = shingle_strings(text, args.ngram, args.unit)
        shingles.append(doc)
        m = MinHash(
            num_perm=num_perm, seed=args.seed, permutations=template.permutations, scheme=template.scheme
        )
        m.update_batch([s.encode("utf-8") for s in doc])
        minhashes.append(m)
    times["signatures"] = time.perf_counter() - start
    mark = time.perf_counter()
    lsh = MinHashLSH(num_perm=num_perm, params=(args.bands, args.rows))
    for i, m in enumerate(minhashes):
        lsh.insert(i, m, check_duplication=False)
    candidates = {(min(i, j), max(i, j)) for i, m in enumerate(minhashes) for j in lsh.query(m) if j != i}
    times["lsh"] = time.perf_counter() - mark
    mark = time.perf_counter()
    if args.verify:
        sets = {}
        kept = set()
        for i, j in candidates:
            a = sets.setdefault(i, set(shingles[i]))
            b = sets.setdefault(j, set(shingles[j]))
            if len(a & b) / len(a | b) >= args.threshold:
                kept.add((i, j))
        candidates = kept
    times["verify"] = time.perf_counter() - mark
    edges = np.array(sorted(candidates), dtype=np.int64).reshape(-1, 2)
    removed, labels = removed_from_components(len(texts), edges)
    return time.perf_counter() - start, times, removed, labels, candidates


def _jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a | b else 1.0


def main() -> None:
    """Generate the corpus, time both sides, print times, the ratio and the agreement."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--dup-rate", type=float, default=0.1)
    parser.add_argument("--ngram", type=int, default=24)
    parser.add_argument("--unit", choices=["char", "word"], default="char")
    parser.add_argument("--bands", type=int, default=20)
    parser.add_argument("--rows", type=int, default=13)
    parser.add_argument("--threshold", type=float, default=0.8)
    parser.add_argument("--no-verify", dest="verify", action="store_false")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--scheme",
        choices=["affine32", "affine64", "legacy"],
        default="affine32",
        help="datasketch permutation scheme: affine32 is its default; legacy is the mod-(2^61 − 1) formula",
    )
    args = parser.parse_args()

    print(
        f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cpus, numpy {np.__version__}"
    )
    mark = time.perf_counter()
    texts, planted = make_corpus(args.n, args.dup_rate, args.seed)
    print(
        f"corpus: {len(texts)} prompts ({len(planted)} planted near-duplicates) in {time.perf_counter() - mark:.1f}s"
    )
    print(
        f"settings: {args.unit} {args.ngram}-grams, {args.bands} bands × {args.rows} rows, verify={args.verify} (threshold {args.threshold})"
    )

    ours, our_times, our_removed, our_labels, our_edges = run_megastyle(texts, args)
    theirs, their_times, their_removed, their_labels, their_edges = run_datasketch(texts, args)

    def fmt(times: dict[str, float]) -> str:
        return "; " + ", ".join(f"{k} {v:.1f}s" for k, v in times.items()) if times else ""

    print(f"megastyle:  {ours:8.2f}s  ({len(texts) / ours:,.0f} prompts/s{fmt(our_times)})")
    print(
        f"datasketch ({args.scheme}): {theirs:8.2f}s  ({len(texts) / theirs:,.0f} prompts/s{fmt(their_times)})"
    )
    print(f"speed-up: {theirs / ours:.1f}× (datasketch time / megastyle time, same run, one core each)")
    print(
        f"removed: megastyle {len(our_removed)}, datasketch {len(their_removed)}, both {len(our_removed & their_removed)}"
    )
    print(
        f"agreement: removed sets Jaccard {_jaccard(our_removed, their_removed):.4f}; verified edge sets Jaccard {_jaccard(our_edges, their_edges):.4f}"
    )
    # Where the two disagree: verified edges by their exact Jaccard (same shingle sets on both sides).
    union = np.array(sorted(our_edges | their_edges), dtype=np.int64).reshape(-1, 2)
    hasher = MinHasher(args.bands * args.rows, args.ngram, args.unit)
    sims = (
        verify_pairs(shingle_sets_by_index(texts, np.unique(union), hasher), union)
        if len(union)
        else np.zeros(0)
    )
    for low, high in ((args.threshold, 0.9), (0.9, 1.01)):
        band = {tuple(p) for p, sim in zip(union.tolist(), sims, strict=True) if low <= sim < high}
        print(
            f"  edges with Jaccard in [{low:.2f}, {min(high, 1.0):.2f}]: {len(band)}, "
            f"agreement {_jaccard(band & our_edges, band & their_edges):.4f}"
        )
    copies, bases = np.array(list(planted)), np.array(list(planted.values()))
    for name, labels in (("megastyle", our_labels), ("datasketch", their_labels)):
        grouped = labels[copies] == labels[bases]
        print(
            f"{name}: planted near-duplicates grouped with their original {grouped.mean():.3f}; "
            f"removed items that are no planted pair's member {len(set(np.flatnonzero(labels != np.arange(len(labels))).tolist()) - set(planted) - set(planted.values()))}"
        )


if __name__ == "__main__":
    main()

"""Prompt deduplication: exact (normalised MD5), fuzzy (MinHash + LSH + union-find), semantic (SemDeDup)."""

from megastyle.curate.dedup.exact import exact_duplicates, exact_groups, exact_hash, normalize_text
from megastyle.curate.dedup.fuzzy import (
    connected_components,
    fuzzy_duplicates,
    lsh_candidate_pairs,
    minhash_jaccard,
    verify_pairs,
)
from megastyle.curate.dedup.minhash import MERSENNE_61, MinHasher, mersenne_permute
from megastyle.curate.dedup.pairs import DuplicatePair, StepResult
from megastyle.curate.dedup.semantic import kmeans, semantic_duplicates
from megastyle.curate.dedup.shingles import jaccard, shingle_hashes, shingle_sets, shingle_strings
from megastyle.curate.dedup.steps import (
    DedupConfig,
    DedupReport,
    ExactDedupConfig,
    FuzzyDedupConfig,
    RemovedPair,
    SemanticDedupConfig,
    deduplicate,
    kept_mask,
    write_removed_pairs,
)

__all__ = [
    "MERSENNE_61",
    "DedupConfig",
    "DedupReport",
    "DuplicatePair",
    "ExactDedupConfig",
    "FuzzyDedupConfig",
    "MinHasher",
    "RemovedPair",
    "SemanticDedupConfig",
    "StepResult",
    "connected_components",
    "deduplicate",
    "exact_duplicates",
    "exact_groups",
    "exact_hash",
    "fuzzy_duplicates",
    "jaccard",
    "kept_mask",
    "kmeans",
    "lsh_candidate_pairs",
    "mersenne_permute",
    "minhash_jaccard",
    "normalize_text",
    "semantic_duplicates",
    "shingle_hashes",
    "shingle_sets",
    "shingle_strings",
    "verify_pairs",
    "write_removed_pairs",
]

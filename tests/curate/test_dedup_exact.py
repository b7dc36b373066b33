"""Exact dedup: normalisation, MD5 groups, keep-first, pairs."""

import hashlib

import pytest

from megastyle.curate.dedup import exact_duplicates, exact_groups, exact_hash, normalize_text
from megastyle.prompts import sample_content_prompts, sample_style_prompts


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  A  Red\tCat. ", "a red cat"),
        ("«Ｆｕｌｌ width»!!", "full width"),  # NFKC folds full-width letters
        ("Straße, ok", "strasse, ok"),  # case-folding, interior punctuation kept
        ("...", ""),
        ("a,\n b", "a, b"),
    ],
)
def test_normalize_text(raw, expected):
    assert normalize_text(raw) == expected


def test_exact_hash_is_md5_of_the_normalised_text():
    assert exact_hash(" A cat. ") == hashlib.md5(b"a cat").hexdigest()
    assert exact_hash(" A cat. ", normalize=False) == hashlib.md5(b" A cat. ").hexdigest()
    with pytest.raises(TypeError, match="needs a str"):
        exact_hash(None)  # type: ignore[arg-type]


def test_exact_duplicates_find_planted_copies_and_keep_the_first():
    pool = sample_style_prompts(40, seed=3) + sample_content_prompts(40, seed=4)
    planted = {
        len(pool): 5,  # upper-cased
        len(pool) + 1: 50,  # extra spaces and end punctuation
        len(pool) + 2: 5,  # a second copy of the same prompt
    }
    texts = [*pool, pool[5].upper(), f"  {pool[50]} !", pool[5] + "..."]
    result = exact_duplicates(texts)
    assert result.removed_count == 3
    assert {p.removed: p.kept for p in result.pairs} == planted
    assert all(p.score == 1.0 for p in result.pairs)
    assert result.kept.tolist() == list(range(len(pool)))


def test_exact_groups_without_normalisation_and_bad_items():
    assert exact_groups(["a", "A", "a"], normalize=False) == [[0, 2], [1]]
    with pytest.raises(TypeError, match="text 1 is a int"):
        exact_groups(["a", 3])  # type: ignore[list-item]

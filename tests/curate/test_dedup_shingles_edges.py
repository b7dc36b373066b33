"""The shingle layer's edges: set lists as long as the text list, empty texts, and the exact hashes."""

from __future__ import annotations

import numpy as np

from megastyle.curate.dedup.shingles import shingle_sets


def test_shingle_sets_give_one_set_per_text_none_for_no_texts() -> None:
    assert shingle_sets([], 3) == []
    sets = shingle_sets(["abcd", "", "xyz"], 3)
    assert [len(s) for s in sets] == [2, 0, 1]  # abc, bcd; nothing; a text shorter than n is one shingle
    assert all(s.dtype == np.uint64 for s in sets)

"""Water-filling: exact sums, caps, small clusters taken whole, fair shares within 1."""

from __future__ import annotations

import numpy as np
import pytest

from megastyle.curate.balance import water_fill


@pytest.mark.parametrize(
    ("sizes", "target", "expected"),
    [
        ([10, 10, 10], 9, [3, 3, 3]),
        ([1, 100, 100], 21, [1, 10, 10]),  # the small cluster gives all, the rest share the leftover
        ([2, 3, 100, 100], 25, [2, 3, 10, 10]),  # leftover recomputed after each small cluster
        ([5, 5], 3, [2, 1]),  # one unit left over: equal sizes, so the lower index gets it
        ([0, 4, 7], 6, [0, 3, 3]),
        ([3, 1, 8], 12, [3, 1, 8]),  # target = total: everything
        ([3, 1, 8], 50, [3, 1, 8]),  # target over total: everything, never more
        ([3, 1, 8], 0, [0, 0, 0]),
        ([], 5, []),
    ],
)
def test_water_fill_hand_cases(sizes: list[int], target: int, expected: list[int]) -> None:
    assert water_fill(sizes, target).tolist() == expected


def test_extra_units_go_to_the_largest_clusters() -> None:
    # Share of 10 over 3 clusters of size > 3 is 3 each with one unit left: the biggest cluster gets it.
    assert water_fill([50, 90, 70], 10).tolist() == [3, 4, 3]


@pytest.mark.parametrize("seed", range(20))
def test_water_fill_properties_on_random_inputs(seed: int) -> None:
    rng = np.random.default_rng(seed)
    sizes = rng.integers(0, 60, size=rng.integers(1, 40))
    sizes[rng.random(sizes.size) < 0.2] = rng.integers(200, 1000)  # a few dense clusters
    target = int(rng.integers(0, sizes.sum() + 10))
    alloc = water_fill(sizes, target)
    assert alloc.sum() == min(target, sizes.sum())
    assert (alloc >= 0).all() and (alloc <= sizes).all()
    partial = alloc < sizes
    if partial.any():
        # Clusters not taken whole share evenly (±1), and every cluster taken whole is no bigger than
        # that share: a cluster below the fair share is never cut.
        shares = alloc[partial]
        assert shares.max() - shares.min() <= 1
        assert (sizes[~partial] <= shares.max()).all()


def test_water_fill_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="negative size"):
        water_fill([3, -1], 2)
    with pytest.raises(ValueError, match="target must be >= 0"):
        water_fill([3, 1], -2)
    with pytest.raises(ValueError, match="1-D"):
        water_fill(np.ones((2, 2), dtype=int), 2)

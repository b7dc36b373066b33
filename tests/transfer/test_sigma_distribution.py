"""The training σ sampler against each mode's analytic distribution (Kolmogorov–Smirnov), not one statistic.

logit-normal: Φ((logit σ − m) / s); uniform: σ; static shift s (σ = sU / (1 + (s − 1)U)): σ / (s − (s − 1)σ);
FLUX's dynamic shift μ (σ = e^μ / (e^μ + 1/U − 1)): 1 / (e^μ (1/σ − 1) + 1).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from megastyle.transfer.train import sample_sigmas
from megastyle.transfer.train_config import TrainTransferConfig

N = 20_000


def _logit_normal_cdf(mean: float, std: float):
    return lambda s: stats.norm.cdf((np.log(s) - np.log1p(-s) - mean) / std)


CASES = [
    ("logit_normal", {}, None, _logit_normal_cdf(0.0, 1.0)),
    ("logit_normal", {"logit_mean": 0.5, "logit_std": 0.8}, None, _logit_normal_cdf(0.5, 0.8)),
    ("uniform", {}, None, lambda s: s),
    ("shift", {"timestep_shift": 3.0}, None, lambda s: s / (3.0 - 2.0 * s)),
    ("dynamic_shift", {}, 1.15, lambda s: 1.0 / (math.exp(1.15) * (1.0 / s - 1.0) + 1.0)),
]


@pytest.mark.parametrize(("mode", "options", "mu", "cdf"), CASES, ids=[f"{c[0]}{c[1] or ''}" for c in CASES])
def test_sigmas_follow_their_distribution(mode: str, options: dict, mu: float | None, cdf) -> None:
    cfg = TrainTransferConfig(timestep_sampling=mode, **options)
    sigmas = sample_sigmas(N, torch.Generator().manual_seed(3), cfg, mu).double().numpy()
    assert ((sigmas > 0) & (sigmas < 1)).all()
    result = stats.kstest(sigmas, cdf)
    assert result.pvalue > 1e-3, f"{mode}: KS D = {result.statistic:.4f}, p = {result.pvalue:.2e}"


def test_the_check_tells_logit_normal_from_uniform() -> None:
    """Same median (0.5), other distribution: the KS check must see the difference."""
    sigmas = sample_sigmas(
        N, torch.Generator().manual_seed(3), TrainTransferConfig(timestep_sampling="logit_normal")
    )
    assert abs(float(np.median(sigmas.numpy())) - 0.5) < 0.02
    assert stats.kstest(sigmas.double().numpy(), lambda s: s).pvalue < 1e-6

"""SSCL losses of MegaStyle-Encoder: supervised contrastive (style labels) + SigLIP sigmoid image–text.

Each loss is written as its formula. Shapes: ``N`` images in the (global) batch, ``d`` feature width.

SupCon (Khosla et al. 2020, reference semantics of HobbitLong/SupContrast, one view per image)::

    s_ij  = f_i · f_j / T                                  (f L2-normalised)
    P(i)  = {j ≠ i : y_j = y_i}                            positives of anchor i, self excluded
    A(i)  = {j ≠ i}                                        the denominator never holds self
    ℓ_i   = −(T / T_base) · 1/|P(i)| · Σ_{p∈P(i)} [ s_ip − log Σ_{a∈A(i)} exp(s_ia) ]
    L     = mean of ℓ_i over anchors with |P(i)| ≥ 1

Anchors without any positive are *excluded* from the mean (the reference divides their zero sum
by 1 and still averages them in, which only rescales the loss by the share of such anchors; a
P×K batch with K ≥ 2 has none).

SigLIP (Zhai et al. 2023)::

    logits_ij = exp(log t) · x_i · y_j + b                 (x, y L2-normalised; init t = 10, b = −10)
    z_ij      = +1 on matching pairs, −1 elsewhere
    L         = −1/N · Σ_ij log σ(z_ij · logits_ij)

Multi-positive SigLIP for SSCL batches (K images per style): text row ``j`` is the style prompt of
image ``j`` (so the text matrix is ``N × d`` with K identical rows per style), and
``z_ij = +1`` whenever image ``i`` and text row ``j`` share the style label — the image's own row
and the other rows of the same prompt alike. Marking only the diagonal would push an image *away*
from the K−1 duplicate rows of its own prompt, which is contradictory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

SUPCON_TEMPERATURE = 0.07
SIGLIP_INIT_SCALE = 10.0  # t; stored as log t
SIGLIP_INIT_BIAS = -10.0


def _at_least_fp32(tensor: torch.Tensor) -> torch.Tensor:
    # bf16/fp16 features (autocast) are upcast: exp/log-sum-exp over N² logits need the range.
    return tensor.to(torch.promote_types(tensor.dtype, torch.float32))


def supcon_loss(
    features: torch.Tensor,
    labels: torch.Tensor,
    temperature: float = SUPCON_TEMPERATURE,
    base_temperature: float = SUPCON_TEMPERATURE,
) -> torch.Tensor:
    """Supervised contrastive loss of L2-normalised ``features (N, d)`` under ``labels (N,)``."""
    if features.ndim != 2 or labels.ndim != 1 or features.shape[0] != labels.shape[0]:
        raise ValueError(
            f"supcon_loss wants features (N, d) and labels (N,), got {tuple(features.shape)} "
            f"and {tuple(labels.shape)}"
        )
    n = features.shape[0]
    features = _at_least_fp32(features)
    self_mask = torch.eye(n, dtype=torch.bool, device=features.device)
    positive_mask = (labels[:, None] == labels[None, :]) & ~self_mask

    similarity = features @ features.T / temperature
    # Stable as it stands: nothing is exponentiated outside logsumexp, which shifts by the row max itself.
    log_denominator = torch.logsumexp(similarity.masked_fill(self_mask, float("-inf")), dim=1, keepdim=True)
    log_prob = similarity - log_denominator

    # Anchors without a positive are left out of the mean; written without a branch on their count, so
    # the step never waits for the device (no tensor → bool) and a batch with no positive gives 0.
    num_positives = positive_mask.sum(dim=1)
    has_positive = num_positives > 0
    mean_log_prob_positives = (log_prob * positive_mask).sum(dim=1) / num_positives.clamp(min=1)
    anchors = has_positive.sum().clamp(min=1)
    return -(temperature / base_temperature) * (mean_log_prob_positives * has_positive).sum() / anchors


def siglip_positive_mask(labels: torch.Tensor) -> torch.Tensor:
    """``(N, N)`` bool: image ``i`` and text row ``j`` (the prompt of image ``j``) share a style."""
    return labels[:, None] == labels[None, :]


def siglip_loss(
    image_features: torch.Tensor,
    text_features: torch.Tensor,
    logit_scale: torch.Tensor,
    logit_bias: torch.Tensor,
    positive_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Sigmoid image–text loss; ``positive_mask`` (N, M) marks z = +1 (default: the diagonal)."""
    n, m = image_features.shape[0], text_features.shape[0]
    if positive_mask is None:
        if n != m:
            raise ValueError(f"{n} images and {m} texts: pass positive_mask for non-square pairings")
        positive_mask = torch.eye(n, dtype=torch.bool, device=image_features.device)
    if positive_mask.shape != (n, m):
        raise ValueError(f"positive_mask has shape {tuple(positive_mask.shape)}, expected {(n, m)}")
    logits = logit_scale.exp() * _at_least_fp32(image_features) @ _at_least_fp32(text_features).T + logit_bias
    z = positive_mask.to(logits.dtype) * 2.0 - 1.0
    return -F.logsigmoid(z * logits).sum() / n


@dataclass
class SSCLLossOutput:
    """The weighted total and its two parts (parts are detached, for logging)."""

    loss: torch.Tensor
    supcon: torch.Tensor
    siglip: torch.Tensor


class SSCLLoss(nn.Module):
    """``supcon_weight · SupCon + siglip_weight · SigLIP`` with SigLIP's learnable log-scale and bias.

    When the text tower's width differs from the image embedding's (e.g. CLIP towers), a learnable
    linear map ``text_projection`` (text dim → image dim) is applied to the text features *inside
    this loss only*; the encoder's embedding stays the tower's pooled output (no projection head).
    """

    def __init__(
        self,
        *,
        supcon_weight: float = 1.0,
        siglip_weight: float = 1.0,
        temperature: float = SUPCON_TEMPERATURE,
        base_temperature: float = SUPCON_TEMPERATURE,
        init_logit_scale: float = SIGLIP_INIT_SCALE,
        init_logit_bias: float = SIGLIP_INIT_BIAS,
        image_dim: int | None = None,
        text_dim: int | None = None,
    ) -> None:
        super().__init__()
        if supcon_weight < 0 or siglip_weight < 0 or supcon_weight + siglip_weight == 0:
            raise ValueError(f"loss weights must be ≥ 0 and not both 0, got {supcon_weight}, {siglip_weight}")
        self.supcon_weight = supcon_weight
        self.siglip_weight = siglip_weight
        self.temperature = temperature
        self.base_temperature = base_temperature
        self.logit_scale = nn.Parameter(torch.tensor(math.log(init_logit_scale)))
        self.logit_bias = nn.Parameter(torch.tensor(float(init_logit_bias)))
        self.text_projection: nn.Linear | None = None
        if image_dim is not None and text_dim is not None and image_dim != text_dim:
            self.text_projection = nn.Linear(text_dim, image_dim, bias=False)

    def forward(
        self, image_features: torch.Tensor, labels: torch.Tensor, text_features: torch.Tensor | None
    ) -> SSCLLossOutput:
        """Loss of normalised ``image_features (N, d)``; ``text_features (N, d_t)`` = each image's prompt."""
        zero = image_features.new_zeros((), dtype=torch.float32)
        supcon = zero
        siglip = zero
        if self.supcon_weight > 0:
            supcon = supcon_loss(image_features, labels, self.temperature, self.base_temperature)
        if self.siglip_weight > 0:
            if text_features is None:
                raise ValueError("siglip_weight > 0 needs the style prompts' text features")
            text = _at_least_fp32(text_features)
            if self.text_projection is not None:
                text = F.normalize(self.text_projection(text), dim=-1)
            siglip = siglip_loss(
                image_features, text, self.logit_scale, self.logit_bias, siglip_positive_mask(labels)
            )
        total = self.supcon_weight * supcon + self.siglip_weight * siglip
        return SSCLLossOutput(loss=total, supcon=supcon.detach(), siglip=siglip.detach())

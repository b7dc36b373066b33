"""SSCL losses against hand-computed values, loop references and invariances."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from megastyle.encode.losses import SSCLLoss, siglip_loss, siglip_positive_mask, supcon_loss


def _normalized(n: int, d: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(n, d, generator=generator, dtype=torch.float64), dim=1)


def _supcon_loop(features: torch.Tensor, labels: list[int], t: float, base_t: float) -> float:
    """SupCon by its definition, one anchor and one positive at a time, in python floats."""
    n = len(labels)
    dots = (features @ features.T).tolist()
    per_anchor = []
    for i in range(n):
        positives = [j for j in range(n) if j != i and labels[j] == labels[i]]
        if not positives:
            continue
        denominator = sum(math.exp(dots[i][a] / t) for a in range(n) if a != i)
        log_probs = [dots[i][p] / t - math.log(denominator) for p in positives]
        per_anchor.append(-(t / base_t) * sum(log_probs) / len(positives))
    return sum(per_anchor) / len(per_anchor)


def test_supcon_hand_computed_value() -> None:
    # f0 ⟂ f1, f2 = -f0; anchors 0 and 1 are each other's only positive, anchor 2 has none.
    features = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    labels = torch.tensor([0, 0, 1])
    # T = 1: anchor 0: log(1 + e^-1); anchor 1: log 2; anchor 2 excluded.
    expected = (math.log(1 + math.exp(-1)) + math.log(2)) / 2
    assert supcon_loss(features, labels, temperature=1.0, base_temperature=1.0).item() == pytest.approx(
        expected, rel=1e-6
    )
    # T = 0.5, base 1: logits double and the loss is scaled by T / base = 0.5.
    expected_half = 0.5 * (math.log(1 + math.exp(-2)) + math.log(2)) / 2
    assert supcon_loss(features, labels, temperature=0.5, base_temperature=1.0).item() == pytest.approx(
        expected_half, rel=1e-6
    )


def test_supcon_matches_loop_reference_with_several_positives() -> None:
    features = _normalized(12, 5, seed=1)
    labels = [0, 0, 0, 1, 1, 2, 2, 2, 2, 3, 4, 4]  # style 3 has a single image: excluded anchor
    got = supcon_loss(features, torch.tensor(labels), temperature=0.1, base_temperature=0.07)
    assert got.item() == pytest.approx(_supcon_loop(features, labels, 0.1, 0.07), rel=1e-10)


def test_supcon_one_positive_per_anchor_equals_infonce() -> None:
    features = _normalized(10, 6, seed=2)
    labels = torch.arange(5).repeat_interleave(2)  # pairs (0,1), (2,3), ...
    t = 0.07
    logits = (features @ features.T / t).masked_fill(torch.eye(10, dtype=torch.bool), float("-inf"))
    partner = torch.arange(10) ^ 1  # 0↔1, 2↔3, ...
    infonce = F.cross_entropy(logits, partner)
    assert supcon_loss(features, labels, t, t).item() == pytest.approx(infonce.item(), rel=1e-10)


def test_supcon_is_permutation_and_relabel_invariant() -> None:
    features = _normalized(16, 8, seed=3)
    labels = torch.tensor([3, 3, 1, 1, 1, 7, 7, 0, 0, 0, 0, 5, 5, 9, 9, 9])
    base = supcon_loss(features, labels)
    perm = torch.randperm(16, generator=torch.Generator().manual_seed(0))
    assert supcon_loss(features[perm], labels[perm]).item() == pytest.approx(base.item(), rel=1e-10)
    relabeled = labels * 11 + 4  # label values carry no meaning beyond equality
    assert supcon_loss(features, relabeled).item() == pytest.approx(base.item(), rel=1e-10)


def test_supcon_is_stable_at_small_temperature() -> None:
    features = _normalized(8, 4, seed=4)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    got = supcon_loss(features.float(), labels, temperature=0.005, base_temperature=0.005)
    # exp(1/0.005) overflows float32 without the max subtraction; compare with float64.
    reference = supcon_loss(features, labels, temperature=0.005, base_temperature=0.005)
    assert torch.isfinite(got)
    assert got.item() == pytest.approx(reference.item(), rel=1e-4)


def test_supcon_without_positives_is_zero_and_differentiable() -> None:
    features = _normalized(4, 3, seed=5).requires_grad_(True)
    loss = supcon_loss(features, torch.arange(4))
    loss.backward()
    assert loss.item() == 0.0
    assert features.grad is not None


def test_supcon_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="labels"):
        supcon_loss(torch.zeros(4, 3), torch.zeros(5, dtype=torch.long))


def test_siglip_hand_computed_value() -> None:
    eye = torch.eye(2)
    loss = siglip_loss(eye, eye, torch.tensor(math.log(10.0)), torch.tensor(-10.0))
    # matching logits 10·1 − 10 = 0 → −log σ(0) = log 2; others 0 − 10 → −log σ(10), twice each.
    expected = (2 * math.log(2) + 2 * math.log(1 + math.exp(-10))) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def _siglip_loop(images: torch.Tensor, texts: torch.Tensor, scale: float, bias: float, pos) -> float:
    total = 0.0
    for i in range(images.shape[0]):
        for j in range(texts.shape[0]):
            logit = math.exp(scale) * float(images[i] @ texts[j]) + bias
            z = 1.0 if pos(i, j) else -1.0
            total += -math.log(1.0 / (1.0 + math.exp(-z * logit)))
    return total / images.shape[0]


def test_siglip_matches_double_loop_reference() -> None:
    images, texts = _normalized(6, 4, seed=6), _normalized(6, 4, seed=7)
    scale, bias = 1.3, -2.5
    got = siglip_loss(images, texts, torch.tensor(scale, dtype=torch.float64), torch.tensor(bias))
    assert got.item() == pytest.approx(
        _siglip_loop(images, texts, scale, bias, lambda i, j: i == j), rel=1e-10
    )


def test_multi_positive_siglip_marks_every_row_of_the_same_prompt() -> None:
    labels = torch.tensor([0, 0, 1, 1, 1, 2])
    images, prompts = _normalized(6, 4, seed=8), _normalized(3, 4, seed=9)
    texts = prompts[labels]  # row j = the style prompt of image j
    mask = siglip_positive_mask(labels)
    got = siglip_loss(images, texts, torch.tensor(0.5, dtype=torch.float64), torch.tensor(-1.0), mask)
    expected = _siglip_loop(images, texts, 0.5, -1.0, lambda i, j: bool(labels[i] == labels[j]))
    assert got.item() == pytest.approx(expected, rel=1e-10)
    diagonal_only = siglip_loss(images, texts, torch.tensor(0.5), torch.tensor(-1.0))
    assert diagonal_only.item() != pytest.approx(got.item())


def test_sscl_loss_initialisation_weights_and_gradients() -> None:
    loss_fn = SSCLLoss(supcon_weight=0.7, siglip_weight=0.3)
    assert loss_fn.logit_scale.exp().item() == pytest.approx(10.0)
    assert loss_fn.logit_bias.item() == pytest.approx(-10.0)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    images = _normalized(6, 8, seed=10).float()
    texts = _normalized(3, 8, seed=11).float()[labels]
    out = loss_fn(images, labels, texts)
    supcon = supcon_loss(images, labels)
    siglip = siglip_loss(images, texts, loss_fn.logit_scale, loss_fn.logit_bias, siglip_positive_mask(labels))
    assert out.supcon.item() == pytest.approx(supcon.item())
    assert out.siglip.item() == pytest.approx(siglip.item())
    assert out.loss.item() == pytest.approx(0.7 * supcon.item() + 0.3 * siglip.item(), rel=1e-6)
    out.loss.backward()
    assert loss_fn.logit_scale.grad is not None and loss_fn.logit_bias.grad is not None


def test_sscl_loss_bridges_different_text_width_inside_the_loss_only() -> None:
    loss_fn = SSCLLoss(image_dim=8, text_dim=5)
    assert loss_fn.text_projection is not None
    labels = torch.tensor([0, 0, 1, 1])
    images = _normalized(4, 8, seed=12).float().requires_grad_(True)
    out = loss_fn(images, labels, _normalized(4, 5, seed=13).float())
    out.loss.backward()
    assert loss_fn.text_projection.weight.grad is not None
    assert SSCLLoss(image_dim=8, text_dim=8).text_projection is None
    with pytest.raises(ValueError, match=r"^siglip_weight > 0 needs the style prompts' text features$"):
        loss_fn(images, labels, None)


# ----- dtypes, devices, validation and the module's wiring ---------------------------------------
def test_half_precision_features_are_upcast_to_float32() -> None:
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    half = _normalized(6, 8, seed=20).bfloat16()
    texts = _normalized(6, 8, seed=21).bfloat16()
    scale, bias = torch.tensor(math.log(10.0)), torch.tensor(-10.0)
    supcon = supcon_loss(half, labels)
    siglip = siglip_loss(half, texts, scale, bias)
    assert supcon.dtype == torch.float32 and siglip.dtype == torch.float32
    assert supcon.item() == pytest.approx(supcon_loss(half.float(), labels).item(), rel=1e-6)
    assert siglip.item() == pytest.approx(
        siglip_loss(half.float(), texts.float(), scale, bias).item(), rel=1e-6
    )


def test_every_tensor_stays_on_the_features_device() -> None:
    # The meta device stands in for a GPU: a mask made on the default device would meet meta tensors.
    labels = torch.tensor([0, 0, 1, 1], device="meta")
    features = torch.empty(4, 8, device="meta")
    assert supcon_loss(features, labels).device.type == "meta"
    scale, bias = torch.zeros((), device="meta"), torch.zeros((), device="meta")
    assert siglip_loss(features, features, scale, bias).device.type == "meta"
    assert siglip_loss(features, features, scale, bias, siglip_positive_mask(labels)).device.type == "meta"


@pytest.mark.parametrize(
    ("features", "labels"),
    [((4, 3), (5,)), ((4, 3, 1), (4,)), ((4, 3), (4, 1)), ((4,), (4,))],
)
def test_supcon_names_the_shapes_it_wants(features: tuple[int, ...], labels: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=r"wants features \(N, d\) and labels \(N,\), got"):
        supcon_loss(torch.zeros(features), torch.zeros(labels, dtype=torch.long))


def test_siglip_names_a_pairing_it_cannot_guess() -> None:
    scale, bias = torch.zeros(()), torch.zeros(())
    with pytest.raises(ValueError, match="4 images and 3 texts: pass positive_mask"):
        siglip_loss(torch.zeros(4, 2), torch.zeros(3, 2), scale, bias)
    with pytest.raises(ValueError, match=r"positive_mask has shape \(4, 4\), expected \(4, 3\)"):
        siglip_loss(torch.zeros(4, 2), torch.zeros(3, 2), scale, bias, torch.ones(4, 4, dtype=torch.bool))


def test_default_loss_is_supcon_plus_siglip_with_equal_weights() -> None:
    labels = torch.tensor([0, 0, 1, 1])
    images, texts = _normalized(4, 8, seed=22).float(), _normalized(4, 8, seed=23).float()
    loss_fn = SSCLLoss()
    out = loss_fn(images, labels, texts)
    assert out.loss.item() == pytest.approx(out.supcon.item() + out.siglip.item(), rel=1e-6)


def test_weights_must_be_non_negative_and_not_both_zero() -> None:
    for supcon, siglip in [(-0.1, 1.0), (1.0, -0.1), (0.0, 0.0), (-1.0, -1.0)]:
        with pytest.raises(
            ValueError, match=f"loss weights must be ≥ 0 and not both 0, got {supcon}, {siglip}"
        ):
            SSCLLoss(supcon_weight=supcon, siglip_weight=siglip)
    SSCLLoss(supcon_weight=0.0, siglip_weight=1.0)
    SSCLLoss(supcon_weight=1.0, siglip_weight=0.0)


@pytest.mark.parametrize(("supcon_weight", "siglip_weight"), [(0.0, 1.0), (1.0, 0.0)])
def test_a_zero_weight_part_is_not_computed_and_reads_zero(
    supcon_weight: float, siglip_weight: float
) -> None:
    labels = torch.tensor([0, 0, 1, 1])
    images = _normalized(4, 8, seed=24).bfloat16()
    loss_fn = SSCLLoss(supcon_weight=supcon_weight, siglip_weight=siglip_weight)
    out = loss_fn(images, labels, None if siglip_weight == 0 else _normalized(4, 8, seed=25).float())
    zero = out.supcon if supcon_weight == 0 else out.siglip
    assert zero.item() == 0.0 and zero.dtype == torch.float32
    computed = out.siglip if supcon_weight == 0 else out.supcon
    assert computed.item() > 0 and out.loss.item() == pytest.approx(computed.item(), rel=1e-6)


def test_temperature_and_base_temperature_reach_supcon_separately() -> None:
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    images = _normalized(6, 8, seed=26).float()
    out = SSCLLoss(siglip_weight=0.0, temperature=0.2, base_temperature=0.05)(images, labels, None)
    assert out.supcon.item() == pytest.approx(supcon_loss(images, labels, 0.2, 0.05).item(), rel=1e-6)
    assert out.supcon.item() != pytest.approx(supcon_loss(images, labels, 0.05, 0.2).item(), rel=1e-3)


def test_the_text_bridge_is_a_bias_free_map_whose_outputs_are_normalised() -> None:
    loss_fn = SSCLLoss(supcon_weight=0.0, image_dim=8, text_dim=5)
    assert set(loss_fn.state_dict()) == {"logit_scale", "logit_bias", "text_projection.weight"}
    assert set(SSCLLoss().state_dict()) == {"logit_scale", "logit_bias"}
    labels = torch.tensor([0, 0, 1, 1])
    images, texts = _normalized(4, 8, seed=27).float(), 3.0 * _normalized(4, 5, seed=28).float()
    assert loss_fn.text_projection is not None
    bridged = F.normalize(texts @ loss_fn.text_projection.weight.T, dim=-1)
    expected = siglip_loss(
        images, bridged, loss_fn.logit_scale, loss_fn.logit_bias, siglip_positive_mask(labels)
    )
    assert loss_fn(images, labels, texts).siglip.item() == pytest.approx(expected.item(), rel=1e-6)

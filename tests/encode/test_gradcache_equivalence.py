"""GradCache gives the gradients of one full-batch backward, dropout included (RNG replay)."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from megastyle.encode.gradcache import GradCache
from megastyle.encode.losses import SSCLLoss
from megastyle.encode.model import StyleEncoder

BATCH = 12
LABELS = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3])


class DropoutEncoder(nn.Module):
    """A small MLP encoder whose dropout draws from the global RNG."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Linear(8, 16), nn.GELU(), nn.Dropout(0.3), nn.Linear(16, 6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.body(x), dim=-1)


def _tiny_siglip(dropout: float) -> StyleEncoder:
    config = {
        "hidden_size": 16,
        "intermediate_size": 24,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "patch_size": 8,
        "attention_dropout": dropout,
    }
    return StyleEncoder.from_vision_config("siglip", config, image_size=16, seed=0).train()


def _text_features(dim: int) -> torch.Tensor:
    prompts = F.normalize(torch.randn(4, dim, generator=torch.Generator().manual_seed(1)), dim=-1)
    return prompts[LABELS]


def _reference_grads(
    encoder: nn.Module, loss_fn: SSCLLoss, inputs: torch.Tensor, chunk: int | None, seed: int
) -> tuple[list[torch.Tensor], list[torch.Tensor], float]:
    """One backward through a single graph (chunk=None: one forward of the whole batch)."""
    torch.manual_seed(seed)
    pieces = [inputs] if chunk is None else list(inputs.split(chunk))
    features = torch.cat([encoder(piece) for piece in pieces])
    loss = loss_fn(features, LABELS, _text_features(features.shape[1])).loss
    loss.backward()
    return (
        [p.grad.clone() for p in encoder.parameters()],
        [p.grad.clone() for p in loss_fn.parameters()],
        loss.item(),
    )


def _gradcache_grads(
    encoder: nn.Module, loss_fn: SSCLLoss, inputs: torch.Tensor, chunk: int, seed: int
) -> tuple[list[torch.Tensor], list[torch.Tensor], float]:
    torch.manual_seed(seed)
    result = GradCache(encoder, chunk).step(
        inputs, lambda features: loss_fn(features, LABELS, _text_features(features.shape[1]))
    )
    return (
        [p.grad.clone() for p in encoder.parameters()],
        [p.grad.clone() for p in loss_fn.parameters()],
        result.loss.item(),
    )


def _assert_close(a: list[torch.Tensor], b: list[torch.Tensor]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-6)


def _compare(build: Callable[[], nn.Module], inputs: torch.Tensor, chunk: int, full_batch: bool) -> None:
    encoder_ref, loss_ref = build(), SSCLLoss(supcon_weight=1.0, siglip_weight=0.5)
    encoder_gc, loss_gc = copy.deepcopy(encoder_ref), copy.deepcopy(loss_ref)
    ref = _reference_grads(encoder_ref, loss_ref, inputs, None if full_batch else chunk, seed=7)
    got = _gradcache_grads(encoder_gc, loss_gc, inputs, chunk, seed=7)
    assert got[2] == pytest.approx(ref[2], rel=1e-5)
    _assert_close(got[0], ref[0])
    _assert_close(got[1], ref[1])


@pytest.mark.parametrize("chunk", [4, 5, 20])
def test_gradcache_equals_full_batch_backward_on_a_siglip_tower(chunk: int) -> None:
    images = torch.randn(BATCH, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    _compare(lambda: _tiny_siglip(0.0), images, chunk, full_batch=True)


@pytest.mark.parametrize("chunk", [5])
def test_gradcache_replays_dropout_of_a_siglip_tower(chunk: int) -> None:
    images = torch.randn(BATCH, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    _compare(lambda: _tiny_siglip(0.5), images, chunk, full_batch=False)


@pytest.mark.parametrize("chunk", [1, 5, 6])
def test_gradcache_replays_dropout_masks(chunk: int) -> None:
    inputs = torch.randn(BATCH, 8, generator=torch.Generator().manual_seed(4))
    _compare(DropoutEncoder, inputs, chunk, full_batch=False)


def test_dropout_test_is_sensitive_to_the_masks() -> None:
    # Guard for the test above: other dropout masks give other gradients, so matching means replay.
    inputs = torch.randn(BATCH, 8, generator=torch.Generator().manual_seed(4))
    encoder, loss_fn = DropoutEncoder(), SSCLLoss()
    first = _reference_grads(copy.deepcopy(encoder), copy.deepcopy(loss_fn), inputs, 5, seed=7)[0]
    other = _reference_grads(copy.deepcopy(encoder), copy.deepcopy(loss_fn), inputs, 5, seed=8)[0]
    assert not torch.allclose(first[0], other[0], rtol=1e-3)


def test_rng_continues_as_after_one_pass() -> None:
    inputs = torch.randn(BATCH, 8, generator=torch.Generator().manual_seed(5))
    encoder = DropoutEncoder()
    torch.manual_seed(11)
    with torch.no_grad():
        for piece in inputs.split(5):
            encoder(piece)
    expected = torch.rand(3)
    torch.manual_seed(11)
    GradCache(encoder, 5).step(inputs, lambda f: supcon_like(f))
    torch.testing.assert_close(torch.rand(3), expected)


def supcon_like(features: torch.Tensor) -> torch.Tensor:
    """A loss that needs every feature."""
    return SSCLLoss(siglip_weight=0.0)(features, LABELS, None).loss


def test_no_sync_wraps_every_chunk_but_the_last() -> None:
    inside = False
    replays: list[tuple[int, bool]] = []  # (chunk rows, inside no_sync) of each forward with grad

    @contextlib.contextmanager
    def no_sync() -> Iterator[None]:
        nonlocal inside
        inside = True
        yield
        inside = False

    model = DropoutEncoder()

    def encoder(chunk: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():
            replays.append((chunk.shape[0], inside))
        return model(chunk)

    inputs = torch.randn(BATCH, 8)
    GradCache(encoder, 5, no_sync=no_sync).step(inputs, supcon_like)  # chunks 5, 5, 2
    assert replays == [(5, True), (5, True), (2, False)]  # DDP syncs once, on the last chunk


def test_the_result_holds_the_loss_output_and_the_features() -> None:
    encoder = DropoutEncoder().eval()
    inputs = torch.randn(BATCH, 8, generator=torch.Generator().manual_seed(6))
    outputs: list[object] = []

    def loss_fn(features: torch.Tensor) -> object:
        outputs.append(SSCLLoss(siglip_weight=0.0)(features, LABELS, None))
        return outputs[-1]

    result = GradCache(encoder, 5).step(inputs, loss_fn)
    assert result.loss_output is outputs[0]
    assert result.loss.item() == outputs[0].loss.item() and not result.loss.requires_grad  # type: ignore[attr-defined]
    with torch.no_grad():
        torch.testing.assert_close(result.features, encoder(inputs))
    assert not result.features.requires_grad


@pytest.mark.parametrize("output", [None, torch.zeros(2, requires_grad=True), object()])
def test_a_loss_function_must_return_a_scalar_or_an_object_with_one(output: object) -> None:
    with pytest.raises(
        TypeError, match=r"^the loss function must return a scalar tensor or an object with a scalar \.loss$"
    ):
        GradCache(DropoutEncoder(), 4).step(torch.randn(8, 8), lambda f: output)


def test_cuda_generators_are_captured_only_once_cuda_is_initialised(monkeypatch: pytest.MonkeyPatch) -> None:
    from megastyle.encode import gradcache

    states = [torch.tensor([1], dtype=torch.uint8), torch.tensor([2], dtype=torch.uint8)]
    restored: list[list[torch.Tensor]] = []
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: list(states))
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", restored.append)
    for available, initialised in [(False, False), (True, False), (False, True)]:
        monkeypatch.setattr(torch.cuda, "is_available", lambda a=available: a)
        monkeypatch.setattr(torch.cuda, "is_initialized", lambda i=initialised: i)
        captured = gradcache.RandomState.capture()
        assert captured.cuda == []  # asking would initialise CUDA in a process that never used it
        captured.restore()
        assert restored == []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    captured = gradcache.RandomState.capture()
    assert captured.cuda == states
    captured.restore()
    assert restored == [states]


def test_loss_that_ignores_features_is_an_error() -> None:
    encoder = DropoutEncoder()
    with pytest.raises(
        RuntimeError, match=r"^the loss does not depend on the features: nothing to back-propagate$"
    ):
        GradCache(encoder, 4).step(torch.randn(8, 8), lambda f: (f.detach() * 0).sum().requires_grad_())
    with pytest.raises(ValueError, match="chunk_size"):
        GradCache(encoder, 0)

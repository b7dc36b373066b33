"""Gradient caching (Gao et al. 2021, "GradCache"): a big-batch contrastive step in one chunk's memory.

A contrastive loss couples every pair in the batch, so the batch cannot simply be split into
micro-batches with accumulated gradients. GradCache splits the *encoder* work instead:

1. forward every chunk without grad, keeping only the features ``(N, d)``;
2. compute the loss on the detached, concatenated features (``requires_grad``) and backward it:
   this yields ``g = ∂L/∂features`` and the gradients of the loss' own parameters (scale, bias);
3. re-forward each chunk *with* grad and back-propagate ``g``'s slice (``features.backward(g_chunk)``);
   the parameter gradients accumulate chunk by chunk to exactly ∂L/∂θ of the full batch (chain rule).

Peak memory is one chunk's activation graph plus the ``N × d`` features and the loss' ``N × N``
logits, instead of N images' activations. The price is a second forward per chunk (~+30% compute
for a ViT, where backward ≈ 2× forward).

Step 3 must reproduce step 1's forward bit for bit, so the RNG state (dropout, drop-path) is
captured before each chunk's first forward and restored before its re-forward; the state after
the whole step is the one left by step 1, as if each chunk had run once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

LossFn = Callable[[torch.Tensor], Any]


@dataclass
class RandomState:
    """CPU and CUDA generator states, captured and restored together."""

    cpu: torch.Tensor
    cuda: list[torch.Tensor]

    @classmethod
    def capture(cls) -> RandomState:
        """The current states of the CPU generator and every initialised CUDA device's generator."""
        cuda = (
            torch.cuda.get_rng_state_all()
            if torch.cuda.is_available() and torch.cuda.is_initialized()
            else []
        )
        return cls(cpu=torch.get_rng_state(), cuda=cuda)

    def restore(self) -> None:
        """Put the generators back into this state."""
        torch.set_rng_state(self.cpu)
        if self.cuda:
            torch.cuda.set_rng_state_all(self.cuda)


@dataclass
class GradCacheResult:
    """What one cached step produced: the loss value (detached), its output and the features."""

    loss: torch.Tensor
    loss_output: Any
    features: torch.Tensor  # (N, d) detached, in the encoder's output dtype


def _loss_tensor(output: Any) -> torch.Tensor:
    # The loss function may return a bare tensor or an object with a ``loss`` field (SSCLLossOutput).
    loss = output if isinstance(output, torch.Tensor) else getattr(output, "loss", None)
    if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
        raise TypeError("the loss function must return a scalar tensor or an object with a scalar .loss")
    return loss


class GradCache:
    """Run ``encoder`` over a batch in chunks of ``chunk_size`` with full-batch gradients.

    ``no_sync`` (e.g. ``lambda: accelerator.no_sync(model)``) wraps every chunk's backward except
    the last, so DDP all-reduces the accumulated gradients once per step instead of once per chunk.
    """

    def __init__(
        self,
        encoder: Callable[[torch.Tensor], torch.Tensor],
        chunk_size: int,
        *,
        no_sync: Callable[[], contextlib.AbstractContextManager[Any]] | None = None,
    ) -> None:
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
        self.encoder = encoder
        self.chunk_size = chunk_size
        self.no_sync = no_sync

    def chunks(self, inputs: torch.Tensor) -> list[torch.Tensor]:
        """``inputs`` split along dim 0 into chunks of ``chunk_size`` (the last may be smaller)."""
        return list(inputs.split(self.chunk_size))

    def step(self, inputs: torch.Tensor, loss_fn: LossFn) -> GradCacheResult:
        """Forward, loss and backward of the whole batch; gradients land in ``.grad`` as usual."""
        chunks = self.chunks(inputs)
        # 1. Forward without grad; remember each chunk's RNG state for the replay.
        states: list[RandomState] = []
        features: list[torch.Tensor] = []
        with torch.no_grad():
            for chunk in chunks:
                states.append(RandomState.capture())
                features.append(self.encoder(chunk))
        state_after = RandomState.capture()

        # 2. Loss on the detached features: their gradient, plus the loss parameters' gradients.
        cached = torch.cat(features).detach().requires_grad_(True)
        output = loss_fn(cached)
        loss = _loss_tensor(output)
        loss.backward()
        if cached.grad is None:
            raise RuntimeError("the loss does not depend on the features: nothing to back-propagate")
        feature_grads = cached.grad.split(self.chunk_size)

        # 3. Re-forward each chunk with grad under its saved RNG state and push its cached gradient.
        for index, (chunk, state, grad) in enumerate(zip(chunks, states, feature_grads, strict=True)):
            last = index == len(chunks) - 1
            state.restore()
            with self._sync_context(last):
                chunk_features = self.encoder(chunk)
                chunk_features.backward(grad)  # the cached features' dtype: this chunk's own
        state_after.restore()
        return GradCacheResult(loss=loss.detach(), loss_output=output, features=cached.detach())

    def _sync_context(self, last: bool) -> contextlib.AbstractContextManager[Any]:
        if last or self.no_sync is None:
            return contextlib.nullcontext()
        return self.no_sync()

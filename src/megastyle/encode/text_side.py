"""The frozen text side of SSCL: style-prompt embeddings for the SigLIP image–text loss.

Two towers, both frozen (eval mode, no grad, never in the optimizer):

* ``HFTextTower`` — the text model of the *same* SigLIP (or CLIP) checkpoint the image tower starts
  from: ``SiglipTextModel(...).pooler_output`` (what ``SiglipModel.get_text_features`` returns in
  transformers 5, as an output object), prompts padded to ``max_length`` 64 as SigLIP was trained;
  CLIP uses ``CLIPTextModelWithProjection(...).text_embeds``.
* ``SentenceTextTower`` — the offline default: the packaged all-MiniLM-L6-v2 through
  ``megastyle.prompts.embedding.TextEmbedder`` (384-d).

Widths: SigLIP's text and vision widths agree (so400m: 1152 both); the offline tiny tower is built
with hidden size 384 = MiniLM's width. Any other pairing (e.g. CLIP ViT-L: 1024 vision vs 768 text)
is bridged by ``SSCLLoss.text_projection``, a learnable linear map used only inside the loss.

Prompts are embedded once per *unique* style (``TextBank``), and cached on disk keyed by the tower
and the exact prompt list, so a resumed or repeated run does not re-embed them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

import torch
import torch.nn.functional as F

TextTowerKind = Literal["auto", "hf", "sentence"]
SIGLIP_TEXT_LENGTH = 64


class TextTower(Protocol):
    """A frozen text encoder: ``encode(texts)`` → L2-normalised float32 ``(n, dim)`` on CPU."""

    name: str

    @property
    def dim(self) -> int:
        """Embedding width."""
        ...

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        """Embed ``texts`` without grad."""
        ...


class SentenceTextTower:
    """A sentence-transformers model (default: the packaged all-MiniLM-L6-v2)."""

    def __init__(self, model_path: str | Path | None = None, *, device: str | None = None) -> None:
        from megastyle.prompts.embedding import TextEmbedder

        self.embedder = TextEmbedder(model_path, device=device, normalize=True)
        self.name = f"sentence:{self.embedder.model_path}"

    @property
    def dim(self) -> int:
        """Embedding width (384 for MiniLM)."""
        return self.embedder.dim

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        """Normalised float32 embeddings ``(n, dim)``."""
        return torch.from_numpy(self.embedder.encode(list(texts))).float()


@contextlib.contextmanager
def _transformers_errors_only() -> Iterator[None]:
    # Loading a text model from a full SigLIP folder lists every vision key as "unexpected".
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


class HFTextTower:
    """The text model of a local SigLIP or CLIP folder, frozen."""

    def __init__(self, path: str | Path, *, device: str | None = None, batch_size: int = 64) -> None:
        from transformers import AutoTokenizer, CLIPTextModelWithProjection, SiglipTextModel

        folder = Path(path).expanduser()
        config_path = folder / "config.json"
        if not config_path.is_file():
            raise FileNotFoundError(
                f"text tower folder {folder} has no config.json (only local folders are read)"
            )
        model_type = json.loads(config_path.read_text(encoding="utf-8")).get("model_type")
        if model_type not in ("siglip", "clip"):
            raise ValueError(
                f"{folder}: model_type {model_type!r} has no text tower; use a full SigLIP/CLIP folder "
                "or text_tower = 'sentence'"
            )
        self.kind = str(model_type)
        model_cls: Any = SiglipTextModel if self.kind == "siglip" else CLIPTextModelWithProjection
        with _transformers_errors_only():
            model, info = model_cls.from_pretrained(folder, local_files_only=True, output_loading_info=True)
        if info.get("missing_keys"):
            missing = sorted(info["missing_keys"])
            raise ValueError(f"{folder}: text weights missing ({missing[:6]}): is this a vision-only folder?")
        self.model = model.to(device or "cpu").eval().requires_grad_(False)
        self.tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        self.batch_size = batch_size
        self.device = device or "cpu"
        self.name = f"hf:{folder.resolve()}"

    @property
    def dim(self) -> int:
        """Embedding width (SigLIP: the text hidden size; CLIP: its projection size)."""
        config = self.model.config
        return int(config.projection_dim if self.kind == "clip" else config.hidden_size)

    @torch.no_grad()
    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        """Normalised float32 embeddings ``(n, dim)`` on CPU."""
        rows = []
        for start in range(0, len(texts), self.batch_size):
            batch = list(texts[start : start + self.batch_size])
            if self.kind == "siglip":
                # SigLIP was trained on max_length-padded text and pools the last position.
                tokens = self.tokenizer(
                    batch,
                    padding="max_length",
                    max_length=SIGLIP_TEXT_LENGTH,
                    truncation=True,
                    return_tensors="pt",
                )
                output = self.model(input_ids=tokens["input_ids"].to(self.device))
                rows.append(output.pooler_output)
            else:
                tokens = self.tokenizer(batch, padding=True, truncation=True, return_tensors="pt")
                output = self.model(**{k: v.to(self.device) for k, v in tokens.items()})
                rows.append(output.text_embeds)
        if not rows:
            return torch.zeros((0, self.dim))
        return F.normalize(torch.cat(rows).float(), dim=-1).cpu()


def is_hf_text_folder(path: str | Path | None) -> bool:
    """True for a local full SigLIP/CLIP folder (one that has a text tower)."""
    if path is None:
        return False
    config = Path(path) / "config.json"
    if not config.is_file():
        return False
    return json.loads(config.read_text(encoding="utf-8")).get("model_type") in ("siglip", "clip")


def load_text_tower(
    kind: TextTowerKind,
    *,
    text_model_path: str | Path | None = None,
    init_path: str | Path | None = None,
    device: str | None = None,
) -> TextTower:
    """``hf``: the text model of ``text_model_path`` (else ``init_path``); ``sentence``: MiniLM or a
    local sentence-transformers folder; ``auto``: ``hf`` when the init folder is a full SigLIP/CLIP."""
    if kind == "auto":
        kind = "hf" if is_hf_text_folder(text_model_path or init_path) else "sentence"
    if kind == "hf":
        folder = text_model_path or init_path
        if folder is None:
            raise ValueError("text_tower = 'hf' needs text_model_path or a SigLIP/CLIP init folder")
        return HFTextTower(folder, device=device)
    if kind == "sentence":
        return SentenceTextTower(text_model_path, device=device)
    raise ValueError(f"unknown text tower {kind!r}; expected 'auto', 'hf' or 'sentence'")


class TextBank:
    """Frozen prompt embeddings ``(num_styles, dim)``, row = dense style label."""

    def __init__(self, embeddings: torch.Tensor, tower_name: str) -> None:
        self.embeddings = embeddings.float().contiguous()
        self.tower_name = tower_name

    @property
    def dim(self) -> int:
        """Embedding width."""
        return int(self.embeddings.shape[1])

    def __len__(self) -> int:
        return int(self.embeddings.shape[0])

    def to(self, device: torch.device | str) -> TextBank:
        """The bank on ``device`` (moved once, not per step)."""
        return TextBank(self.embeddings.to(device), self.tower_name)

    def lookup(self, labels: torch.Tensor) -> torch.Tensor:
        """Each image's prompt embedding (rows of ``labels``)."""
        return self.embeddings[labels.to(self.embeddings.device)]


def _bank_key(tower_name: str, texts: Sequence[str]) -> str:
    digest = hashlib.sha256(tower_name.encode())
    for text in texts:
        digest.update(b"\0" + text.encode())
    return digest.hexdigest()


def build_text_bank(tower: TextTower, texts: Sequence[str], cache_dir: str | Path | None = None) -> TextBank:
    """Embed each of ``texts`` (the unique style prompts, label order) once; reuse a matching cache."""
    from safetensors.torch import load_file, save_file

    key = _bank_key(tower.name, texts)
    path = Path(cache_dir) / f"text_bank-{key[:16]}.safetensors" if cache_dir is not None else None
    if path is not None and path.is_file():
        stored = load_file(str(path))
        embeddings = stored["embeddings"]
        if embeddings.shape[0] == len(texts):
            return TextBank(embeddings, tower.name)
    embeddings = tower.encode(list(texts)) if texts else torch.zeros((0, tower.dim))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file(
            {"embeddings": embeddings.contiguous()}, str(path), metadata={"tower": tower.name, "key": key}
        )
    return TextBank(embeddings, tower.name)

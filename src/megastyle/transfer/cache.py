"""Training inputs: encoders, an on-disk cache of VAE latents and text embeddings (epochs never re-encode), loaders.

Layout: ``cache_dir/<spec key>/<shard stem>-<shard hash>-rg<group>.safetensors``, one file per shard row
group. The spec key hashes the encoders' fingerprint (component configs, tokenizer files, weight file names
and sizes), the training size, the T5 length, the reference augmentation and its seed, and the number of
cached reference variants; the shard hash covers the shard's path, size and mtime. Inside a file, tensors are
named by row id: ``{id}/target`` (packed target latents), ``{id}/reference/{k}`` (packed latents of the k-th
augmented version of the row used as a reference), ``{id}/prompt_embeds`` and ``{id}/pooled``; the header
lists the row ids in order and the rows whose image could not be decoded. Files are written atomically.

Random augmentation and a cache meet through variants: each row's reference is encoded ``reference_variants``
times, each with an augmentation drawn once from ``(seed, row id, k)``; training picks one variant per pair.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from megastyle.data import ImageDecodeError, atomic_write, decode_image
from megastyle.transfer.data import (
    PairDataset,
    ReferenceAugment,
    RowImages,
    collate_pairs,
    fit_reference,
    fit_target,
    local_batch,
    plan_epoch,
    stream_seed,
    to_tensor,
)
from megastyle.transfer.train_config import TrainTransferConfig

logger = logging.getLogger(__name__)

_ENCODER_PARTS = ("vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2")


class FluxEncoders:
    """VAE latents and CLIP + T5 prompt embeddings through the pipeline's own encode functions."""

    def __init__(
        self,
        pipeline: Any,
        height: int,
        width: int,
        max_sequence_length: int,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        self.pipeline = pipeline
        self.height, self.width, self.max_sequence_length = height, width, max_sequence_length
        self.dtype = dtype  # of the returned tensors (and so of the cache files)

    @torch.no_grad()
    def latents(self, pixels: torch.Tensor, device: torch.device) -> torch.Tensor:
        """(B, 3, H, W) pixels in [0, 1] → packed clean latents (B, tokens, 4C), as inference encodes references."""
        return self.pipeline.encode_reference(
            pixels, self.height, self.width, dtype=self.dtype, device=device, resize_mode="default"
        )

    @torch.no_grad()
    def text(self, prompts: list[str], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Content prompts → (T5 embeddings (B, L, D), pooled CLIP (B, P))."""
        embeds, pooled, _ = self.pipeline.encode_prompt(
            prompt=prompts, prompt_2=None, device=device, max_sequence_length=self.max_sequence_length
        )
        return embeds.to(self.dtype), pooled.to(self.dtype)


def _file_digest(path: Path) -> dict[str, Any]:
    stat = path.stat()
    entry: dict[str, Any] = {"name": path.name, "size": stat.st_size}
    if stat.st_size < 4 << 20:  # configs and tokenizer files: by content; weights: by name and size
        entry["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    return entry


def model_fingerprint(model_dir: str | os.PathLike[str]) -> str:
    """A hash of the encoding components of a FLUX folder (VAE, text encoders, tokenizers)."""
    root = Path(model_dir)
    parts: dict[str, list[dict[str, Any]]] = {}
    for part in _ENCODER_PARTS:
        folder = root / part
        if folder.is_dir():
            parts[part] = [_file_digest(p) for p in sorted(folder.rglob("*")) if p.is_file()]
    if not parts:
        raise FileNotFoundError(f"{root} has none of {_ENCODER_PARTS}: not a FLUX pipeline folder")
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class CacheSpec:
    """Everything the cached tensors depend on besides the rows themselves."""

    model_fingerprint: str
    height: int
    width: int
    max_sequence_length: int
    flip_p: float
    crop_p: float
    crop_scale: tuple[float, float]
    reference_variants: int
    seed: int
    dtype: str = "float32"
    version: int = 1

    def key(self) -> str:
        """Short hash naming this spec's cache folder."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]

    @classmethod
    def for_run(cls, cfg: TrainTransferConfig, pipeline: Any, dtype: torch.dtype) -> CacheSpec:
        """The spec of a training run (model folder fingerprint, or the in-memory encoders')."""
        fingerprint = (
            model_fingerprint(cfg.model) if cfg.model is not None else pipeline_fingerprint(pipeline)
        )
        return cls(
            model_fingerprint=fingerprint,
            height=cfg.height,
            width=cfg.width,
            max_sequence_length=cfg.max_sequence_length,
            flip_p=cfg.flip_p,
            crop_p=cfg.crop_p,
            crop_scale=(cfg.crop_scale_min, 1.0),
            reference_variants=cfg.reference_variants,
            seed=cfg.seed,
            dtype=str(dtype).removeprefix("torch."),
        )

    @property
    def augment(self) -> ReferenceAugment:
        """The reference augmentation the variants are drawn from."""
        return ReferenceAugment(self.flip_p, self.crop_p, self.crop_scale)


def variant_seed(seed: int, row_id: str, variant: int) -> int:
    """Seed of reference variant ``variant`` of row ``row_id``."""
    digest = int.from_bytes(hashlib.sha256(row_id.encode()).digest()[:8], "little")
    return stream_seed(seed, digest, digest >> 32, variant, 0xCAC4E)


class LatentCache:
    """Read and fill the per-row-group cache files of one ``CacheSpec``."""

    def __init__(self, root: str | os.PathLike[str], spec: CacheSpec, open_files: int = 8) -> None:
        self.spec = spec
        self.folder = Path(root) / spec.key()
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "spec.json").write_text(json.dumps(asdict(spec), indent=2))
        self._handles: OrderedDict[Path, tuple[Any, dict[str, int]]] = OrderedDict()
        self._open_files = open_files

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_handles"] = OrderedDict()
        return state

    @staticmethod
    def locate(images: RowImages, index: int) -> tuple[Path, int, int]:
        """(shard file, row group, offset in group) of dataset row ``index``."""
        source, row = (int(v) for v in images.data.rows[index])
        reader = images.reader(source)
        shard, group, offset = reader.locate(row)
        return reader.shards[shard], group, offset

    def file_for(self, shard: Path, group: int) -> Path:
        """The cache file of row group ``group`` of ``shard``."""
        stat = shard.stat()
        tag = f"{shard.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
        digest = hashlib.sha256(tag.encode()).hexdigest()[:10]
        return self.folder / f"{shard.stem}-{digest}-rg{group:05d}.safetensors"

    def missing(self, images: RowImages, rows: list[int]) -> dict[tuple[Path, int], list[int]]:
        """Row groups (shard, group) holding ``rows`` with no complete cache file yet → their dataset rows."""
        todo: dict[tuple[Path, int], list[int]] = {}
        for index in rows:
            shard, group, _ = self.locate(images, index)
            if not self.file_for(shard, group).is_file():
                todo.setdefault((shard, group), []).append(index)
        return todo

    def fill(
        self,
        images: RowImages,
        encoders: FluxEncoders,
        rows: list[int],
        device: torch.device,
        batch_size: int,
        *,
        rank: int = 0,
        world: int = 1,
    ) -> int:
        """Encode the missing row groups holding ``rows`` (this process' share); returns files written."""
        mine = sorted(self.missing(images, rows))[rank::world]
        for shard, group in mine:
            self.write_group(images, encoders, shard, group, device, batch_size)
        return len(mine)

    def write_group(
        self,
        images: RowImages,
        encoders: FluxEncoders,
        shard: Path,
        group: int,
        device: torch.device,
        batch: int,
    ) -> None:
        import pyarrow.parquet as pq
        from safetensors.torch import save_file

        table = pq.ParquetFile(shard).read_row_group(group, columns=["id", "image", "content"]).to_pylist()
        ids = [row["id"] for row in table]
        tensors: dict[str, torch.Tensor] = {}
        bad: dict[str, str] = {}
        decoded = []
        for row in table:
            try:
                image = decode_image((row["image"] or {}).get("bytes") or b"", item=row["id"])
                decoded.append((row["id"], image, row["content"] or ""))
            except ImageDecodeError as error:
                bad[row["id"]] = str(error)
                logger.warning("cache: skipping undecodable image: %s", error)
        spec, augment = self.spec, self.spec.augment
        for start in range(0, len(decoded), batch):
            chunk = decoded[start : start + batch]
            targets = torch.stack(
                [to_tensor(fit_target(img, spec.width, spec.height)) for _, img, _ in chunk]
            )
            refs = [
                to_tensor(
                    fit_reference(augment(img, variant_seed(spec.seed, rid, k)), spec.width, spec.height)
                )
                for rid, img, _ in chunk
                for k in range(spec.reference_variants)
            ]
            target_latents = encoders.latents(targets, device).cpu()
            ref_latents = encoders.latents(torch.stack(refs), device).cpu()
            embeds, pooled = encoders.text([prompt for _, _, prompt in chunk], device)
            for i, (rid, _, _) in enumerate(chunk):
                tensors[f"{rid}/target"] = target_latents[i].contiguous()
                for k in range(spec.reference_variants):
                    tensors[f"{rid}/reference/{k}"] = ref_latents[
                        i * spec.reference_variants + k
                    ].contiguous()
                tensors[f"{rid}/prompt_embeds"] = embeds[i].cpu().contiguous()
                tensors[f"{rid}/pooled"] = pooled[i].cpu().contiguous()
        path = self.file_for(shard, group)
        metadata = {"ids": json.dumps(ids), "bad": json.dumps(bad)}
        # A file either is complete or does not exist.
        atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))

    def _open(self, path: Path) -> tuple[Any, dict[str, Any]]:
        from safetensors import safe_open

        if path in self._handles:
            self._handles.move_to_end(path)
            return self._handles[path]
        handle = safe_open(str(path), framework="pt")
        meta = handle.metadata() or {}
        info = {"ids": json.loads(meta.get("ids", "[]")), "bad": json.loads(meta.get("bad", "{}"))}
        self._handles[path] = (handle, info)
        while len(self._handles) > self._open_files:
            self._handles.popitem(last=False)
        return handle, info

    def row_id(self, images: RowImages, index: int) -> tuple[Path, str, bool]:
        """(cache file, row id, usable) of dataset row ``index``; raises if the file is stale."""
        shard, group, offset = self.locate(images, index)
        path = self.file_for(shard, group)
        _, info = self._open(path)
        if offset >= len(info["ids"]):
            raise RuntimeError(f"{path}: no row {offset}; delete the cache folder {self.folder}")
        row_id = info["ids"][offset]
        return path, row_id, row_id not in info["bad"]

    def bad_rows(self, images: RowImages, rows: list[int]) -> list[int]:
        """Dataset rows whose image could not be decoded while caching."""
        return [index for index in rows if not self.row_id(images, index)[2]]

    def read(self, images: RowImages, index: int, part: str) -> torch.Tensor:
        """Tensor ``part`` ("target", "reference/{k}", "prompt_embeds", "pooled") of dataset row ``index``."""
        path, row_id, usable = self.row_id(images, index)
        if not usable:
            raise KeyError(f"row {row_id} of {path.name} has no cached tensors (undecodable image)")
        handle, _ = self._open(path)
        return handle.get_tensor(f"{row_id}/{part}")


class CachedPairDataset(torch.utils.data.Dataset[dict[str, Any]]):
    """``dataset[position]`` → cached target/reference latents and text embeddings of one planned pair."""

    def __init__(self, cache: LatentCache, images: RowImages, plan: Any, *, seed: int, epoch: int) -> None:
        self.cache, self.images, self.plan = cache, images, plan
        self.seed, self.epoch = seed, epoch

    def __len__(self) -> int:
        return len(self.plan)

    def __getitem__(self, position: int) -> dict[str, Any]:
        target, reference = int(self.plan.targets[position]), int(self.plan.references[position])
        variant = stream_seed(self.seed, self.epoch, position, 0xA1) % self.cache.spec.reference_variants
        return {
            "target_latents": self.cache.read(self.images, target, "target"),
            "reference_latents": self.cache.read(self.images, reference, f"reference/{variant}"),
            "prompt_embeds": self.cache.read(self.images, target, "prompt_embeds"),
            "pooled": self.cache.read(self.images, target, "pooled"),
        }


def collate_cached(items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Stack cached pair items."""
    return {key: torch.stack([item[key] for item in items]) for key in items[0]}


def pipeline_fingerprint(pipeline: Any) -> str:
    """Cache fingerprint of an in-memory pipeline: a hash of its encoders' configs and weights."""
    digest = hashlib.sha256()
    for part in ("vae", "text_encoder", "text_encoder_2"):
        module = getattr(pipeline, part)
        config = module.config.to_dict() if hasattr(module.config, "to_dict") else dict(module.config)
        digest.update(json.dumps(config, sort_keys=True, default=str).encode())
        for name, tensor in sorted(module.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def epoch_loader(
    cfg: TrainTransferConfig,
    images: RowImages,
    rows: np.ndarray,
    cache: LatentCache | None,
    epoch: int,
    batch_range: range,
    rank: int,
    world: int,
) -> torch.utils.data.DataLoader[Any]:
    """This process' share of the global batches ``batch_range`` of ``epoch`` (cached latents or pixels)."""
    plan = plan_epoch(images.data, rows, epoch, cfg.seed)
    batches = [local_batch(plan, b, cfg.batch_size, world, rank) for b in batch_range]
    if cache is not None:
        dataset: Any = CachedPairDataset(cache, images, plan, seed=cfg.seed, epoch=epoch)
        loader_kwargs: dict[str, Any] = {"collate_fn": collate_cached}
    else:
        augment = ReferenceAugment(cfg.flip_p, cfg.crop_p, (cfg.crop_scale_min, 1.0))
        dataset = PairDataset(
            images, plan, width=cfg.width, height=cfg.height, augment=augment, seed=cfg.seed, epoch=epoch
        )
        loader_kwargs = {"collate_fn": collate_pairs, "num_workers": cfg.num_workers}
    # Its own generator: the loader's base-seed draw must not move the global RNG (LoRA dropout).
    generator = torch.Generator().manual_seed(stream_seed(cfg.seed, epoch, 0x10AD))
    return torch.utils.data.DataLoader(dataset, batch_sampler=batches, generator=generator, **loader_kwargs)


def batch_tensors(
    batch: dict[str, Any], encoders: FluxEncoders, device: torch.device
) -> tuple[torch.Tensor, ...]:
    """(target latents, reference latents, T5 embeddings, pooled) of a cached or a pixel batch."""
    if "target_latents" in batch:
        keys = ("target_latents", "reference_latents", "prompt_embeds", "pooled")
        return tuple(batch[key].to(device) for key in keys)
    embeds, pooled = encoders.text(batch["prompt"], device)
    return (
        encoders.latents(batch["target"], device),
        encoders.latents(batch["reference"], device),
        embeds,
        pooled,
    )

"""embed_collection over folders and shards: bad images recorded, chunked resume, file format, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image
from safetensors.numpy import load_file
from typer.testing import CliRunner

from megastyle.cli.app import app as megastyle_app
from megastyle.encode import ScoreCalibration, StyleEncoder, embed_collection, load_embeddings
from megastyle.testing import random_images, tiny_model_dir


@pytest.fixture(scope="module")
def encoder() -> StyleEncoder:
    return StyleEncoder.from_pretrained(tiny_model_dir("siglip"))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "images"
    for style, seed in (("cubism", 1), ("ukiyo-e", 2)):
        (root / style).mkdir(parents=True)
        for i, image in enumerate(random_images(3, (36, 30), seed=seed)):
            image.save(root / style / f"{i}.png")
    (root / "cubism" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (root / "notes.txt").write_text("not an image, not listed")
    return root


def test_folder_with_a_corrupt_image(encoder: StyleEncoder, folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "emb.safetensors"
    summary = embed_collection(encoder, folder, batch_size=4, device="cpu", out_path=out, progress=False)
    assert (summary.embedded, summary.rejected, summary.dim) == (6, 1, 32)
    result = load_embeddings(out)
    assert result.ids == [f"cubism/{i}.png" for i in range(3)] + [f"ukiyo-e/{i}.png" for i in range(3)]
    assert result.style_ids == [0, 0, 0, 1, 1, 1]
    assert [item.style_label for item in result.items] == ["cubism"] * 3 + ["ukiyo-e"] * 3
    assert len(result.rejects) == 1 and result.rejects[0]["id"] == "cubism/broken.png"
    assert "cannot decode" in result.rejects[0]["cause"]
    expected = encoder.embed_images([Image.open(folder / i).convert("RGB") for i in result.ids], batch_size=4)
    np.testing.assert_allclose(result.embeddings, expected, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(result.embeddings, axis=1), 1.0, atol=1e-6)
    assert result.info["count"] == 6 and result.info["dim"] == 32
    # The files are plain safetensors / Parquet / JSON lines: readable without pickle or megastyle.
    assert load_file(str(out))["embeddings"].shape == (6, 32)
    assert pq.read_table(out.with_suffix(".parquet")).column("id").to_pylist() == result.ids
    assert (
        json.loads(out.with_suffix(".rejects.jsonl").read_text().splitlines()[0])["id"] == "cubism/broken.png"
    )
    assert not out.with_suffix(".chunks").exists()  # merged and cleaned


def test_chunked_run_resumes_and_refuses_foreign_chunks(
    encoder: StyleEncoder, folder: Path, tmp_path: Path
) -> None:
    out = tmp_path / "emb.safetensors"
    first = embed_collection(
        encoder, folder, batch_size=2, out_path=out, chunk_size=2, progress=False, keep_chunks=True
    )
    assert (first.chunks_written, first.chunks_reused) == (4, 0)  # 7 files in chunks of 2
    reference = load_embeddings(out)
    chunks = out.with_suffix(".chunks")
    # Simulate a run killed in chunk 2: its completion marker (rejects file) was never written.
    (chunks / "chunk-000002.rejects.jsonl").unlink()
    out.unlink()
    again = embed_collection(
        encoder, folder, batch_size=2, out_path=out, chunk_size=2, progress=False, workers=2
    )
    assert (again.chunks_written, again.chunks_reused) == (1, 3)
    resumed = load_embeddings(out)
    assert resumed.ids == reference.ids and resumed.rejects == reference.rejects
    np.testing.assert_allclose(resumed.embeddings, reference.embeddings, atol=1e-6)
    # Chunks of another encoder must not be mixed in.
    embed_collection(encoder, folder, out_path=out, chunk_size=2, progress=False, keep_chunks=True)
    other = StyleEncoder.from_pretrained(tiny_model_dir("siglip", seed=1))
    with pytest.raises(ValueError, match="different encoder"):
        embed_collection(other, folder, out_path=out, chunk_size=2, progress=False)


def test_shards_source(encoder: StyleEncoder, tmp_path: Path) -> None:
    from megastyle.curate.generate import plan_images, run_generate
    from megastyle.data import ShardReader
    from megastyle.prompts import sample_content_prompts, sample_style_prompts

    plan = plan_images(sample_style_prompts(3, seed=0), sample_content_prompts(6, seed=1), 2, seed=0)
    run_generate(plan, tmp_path / "shards", size=32, shard_size=4, show_progress=False)
    out = tmp_path / "emb.safetensors"
    summary = embed_collection(
        encoder, tmp_path / "shards", batch_size=4, out_path=out, chunk_size=3, progress=False
    )
    assert summary.embedded == 6 and summary.rejected == 0
    result = load_embeddings(out)
    records = list(ShardReader(tmp_path / "shards"))
    assert result.ids == [r.id for r in records]
    assert result.style_ids == [r.style_id for r in records]
    assert [i.content_id for i in result.items] == [r.content_id for r in records]
    expected = encoder.embed_images([r.pil_image() for r in records])
    np.testing.assert_allclose(result.embeddings, expected, atol=1e-6)


def test_bad_arguments(encoder: StyleEncoder, folder: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\.safetensors"):
        embed_collection(encoder, folder, out_path=tmp_path / "emb.npy")
    with pytest.raises(FileNotFoundError):
        embed_collection(encoder, tmp_path / "missing", out_path=tmp_path / "e.safetensors")


def test_embed_cli(folder: Path, tmp_path: Path) -> None:
    app = megastyle_app
    out = tmp_path / "cli.safetensors"
    args = [
        "embed",
        "--encoder",
        str(tiny_model_dir("siglip")),
        "--source",
        str(folder),
        "--output",
        str(out),
    ]
    calibration = tmp_path / "cal.json"
    options = [
        "--batch-size",
        "3",
        "--device",
        "cpu",
        "--progress",
        "false",
        "--calibration-output",
        str(calibration),
    ]
    result = CliRunner().invoke(app, [*args, *options, "--calibration-pairs", "500"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())  # rich wraps long lines
    assert "6 embeddings" in text and "1 images rejected" in text and "cubism/broken.png" in text
    assert load_embeddings(out).embeddings.shape == (6, 32)
    fitted = ScoreCalibration.load(calibration)
    assert fitted.same_style is not None and fitted.different_style.count == 500  # folder labels were used
    bad = CliRunner().invoke(app, ["embed", "--source", str(folder)])
    assert bad.exit_code == 2 and "no encoder" in bad.output

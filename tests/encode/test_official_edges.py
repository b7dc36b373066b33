"""Reading the official checkpoint safely, edge by edge: a file saved on a GPU, an environment that asks torch
to unpickle, the load report's text, the wrappers stripped from keys, and the device and dtype asked for."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from megastyle.data import ImageDecodeError
from megastyle.encode import StyleEncoder, load_official_encoder
from megastyle.encode.official import open_like_official
from megastyle.encode.state_dict import (
    LoadReport,
    OfficialCheckpointError,
    StateDictLoadError,
    _first_line,
    canonical_key,
    read_state_dict,
    unwrap_state_dict,
)
from megastyle.testing import tiny_model_dir


class NotATensor:
    """Any object a weights-only load must refuse."""


def test_a_checkpoint_saved_on_a_gpu_loads_on_the_cpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # torch records each storage's device in the file; mark them as CUDA, as a GPU run's .pth is.
    path = tmp_path / "gpu.pth"
    with monkeypatch.context() as patch:
        patch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
        torch.save({"w": torch.arange(3.0)}, path)
    loaded = read_state_dict(path)
    assert loaded["w"].device.type == "cpu" and torch.equal(loaded["w"], torch.arange(3.0))


def test_pickled_objects_are_refused_even_when_the_environment_allows_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "evil.pth"
    torch.save({"w": torch.ones(1), "payload": NotATensor()}, path)
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # only overrides an unset weights_only
    with pytest.raises(OfficialCheckpointError, match="refused: contains non-tensor objects"):
        read_state_dict(path)


def test_safetensors_files_are_read_as_safetensors_and_the_other_failures_name_the_file(
    tmp_path: Path,
) -> None:
    good = tmp_path / "w.safetensors"
    save_file({"a": torch.ones(2)}, str(good))
    assert torch.equal(read_state_dict(good)["a"], torch.ones(2))
    with pytest.raises(FileNotFoundError, match=r"missing\.pth: checkpoint file does not exist$"):
        read_state_dict(tmp_path / "missing.pth")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{broken}")
    with pytest.raises(OfficialCheckpointError, match=r"bad\.safetensors: not a readable safetensors file"):
        read_state_dict(bad)
    listed = tmp_path / "list.pth"
    torch.save([torch.ones(1)], listed)
    with pytest.raises(OfficialCheckpointError, match=r"list\.pth: expected a state dict, found list$"):
        read_state_dict(listed)
    truncated = tmp_path / "cut.pth"
    torch.save({"w": torch.ones(64)}, truncated)
    truncated.write_bytes(truncated.read_bytes()[:200])
    try:  # what torch itself says about the file: its first line goes into our message
        torch.load(truncated, weights_only=True)
    except Exception as exc:
        cause = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:200]}"
    with pytest.raises(OfficialCheckpointError) as raised:
        read_state_dict(truncated)
    assert str(raised.value) == f"{truncated}: not a readable PyTorch weights file ({cause})"


def test_first_line_of_an_error() -> None:
    assert _first_line(ValueError("first\nsecond")) == "first"
    assert _first_line(KeyError()) == "KeyError"
    assert _first_line(ValueError("  \n")) == "ValueError"
    assert _first_line(ValueError("x" * 300)) == "x" * 200


def test_unwrap_takes_model_or_state_dict_and_leaves_a_bare_one() -> None:
    inner = {"w": torch.ones(1)}
    assert unwrap_state_dict({"model": inner}) == inner
    assert unwrap_state_dict({"state_dict": inner, "epoch": 3}) == inner
    assert unwrap_state_dict(inner) == inner


def test_canonical_key_strips_wrappers_in_any_order() -> None:
    assert canonical_key("module._orig_mod.vision_model.encoder.w") == (
        "encoder.w",
        ["module.", "_orig_mod.", "vision_model."],
    )
    # A later prefix of the list in front of an earlier one: stripping goes on until none is left.
    assert canonical_key("vision_model.module.encoder.w") == ("encoder.w", ["vision_model.", "module."])
    assert canonical_key("encoder.w") == ("encoder.w", [])


def test_the_report_text_shows_eight_keys_and_four_mismatches() -> None:
    report = LoadReport(
        "ckpt.pth",
        loaded=3,
        missing=[f"m{i}" for i in range(9)],
        unexpected=[f"u{i}" for i in range(8)],
        mismatched=[f"s{i}: (1,) vs (2,)" for i in range(5)],
        stripped_prefixes=["module.", "module."],
    )
    assert report.summary() == (
        "ckpt.pth: loaded 3 tensors; stripped prefixes ['module.']; "
        "9 missing (m0, m1, m2, m3, m4, m5, m6, m7 ...); 8 unexpected (u0, u1, u2, u3, u4, u5, u6, u7); "
        "5 shape mismatches (s0: (1,) vs (2,); s1: (1,) vs (2,); s2: (1,) vs (2,); s3: (1,) vs (2,))"
    )
    error = StateDictLoadError(report)
    assert (
        error.report is report and str(error) == f"state dict does not match the encoder: {report.summary()}"
    )


@pytest.fixture(scope="module")
def official_pth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("official") / "megastyle_encoder.pth"
    StyleEncoder.from_pretrained(tiny_model_dir("siglip", seed=1)).export_official(path)
    return path


def test_the_report_names_the_file_and_the_encoder_goes_where_asked(official_pth: Path) -> None:
    base = tiny_model_dir("siglip", seed=0)
    encoder, report = load_official_encoder(official_pth, base)
    assert report.source == str(official_pth) and next(encoder.parameters()).dtype == torch.float32
    doubled, _ = load_official_encoder(official_pth, base, dtype=torch.float64)
    assert {p.dtype for p in doubled.parameters()} == {torch.float64}
    moved, _ = load_official_encoder(official_pth, base, device="meta")
    assert {p.device.type for p in moved.parameters()} == {"meta"}
    assert {p.dtype for p in moved.parameters()} == {torch.float32}


def test_images_open_as_rgb_and_a_broken_one_names_the_file_and_the_cause(tmp_path: Path) -> None:
    grey = tmp_path / "grey.png"
    Image.new("LA", (4, 3), (10, 200)).save(grey)
    image = open_like_official(grey)
    assert image.mode == "RGB" and image.getpixel((0, 0)) == (10, 10, 10)
    broken = tmp_path / "broken.png"
    Image.new("RGB", (64, 64), (1, 2, 3)).save(broken)
    broken.write_bytes(broken.read_bytes()[:-40])  # the header reads; the pixels are cut short
    with pytest.raises(ImageDecodeError) as raised:
        open_like_official(broken)
    assert raised.value.item == str(broken) and raised.value.cause.startswith("OSError: ")

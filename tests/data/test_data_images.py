"""Safe decoding: limits, odd modes, clear errors; deterministic PNG encoding."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import Image, ImageFile

from megastyle.data import (
    ImageDecodeError,
    ImageTooLargeError,
    decode_image,
    encode_png,
    probe_image,
)


def _save(image: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def test_rgb_png_decodes_to_exact_pixels(png_factory) -> None:
    image = decode_image(png_factory((10, 200, 30), (24, 12)))
    assert image.mode == "RGB" and image.size == (24, 12)
    assert image.getpixel((5, 5)) == (10, 200, 30)
    assert image.getpixel((0, 0)) == (10 ^ 0xFF, 200, 30)


def test_corrupt_bytes_raise_named_error() -> None:
    with pytest.raises(ImageDecodeError, match="s3_c7") as info:
        decode_image(b"definitely not an image", item="s3_c7")
    assert isinstance(info.value, ValueError)
    assert info.value.item == "s3_c7"
    assert info.value.cause == "not an image in a format PIL reads"
    assert "0x" not in str(info.value)  # no internal repr (PIL's message names its BytesIO object)


@pytest.mark.parametrize("bad", [b"", "text", None])
def test_empty_or_non_bytes_raise(bad: object) -> None:
    with pytest.raises(ImageDecodeError):
        decode_image(bad)  # type: ignore[arg-type]


def test_truncated_png_raises(png_factory) -> None:
    data = png_factory((1, 2, 3), (64, 64))
    with pytest.raises(ImageDecodeError, match="item-t"):
        decode_image(data[: len(data) // 2], item="item-t")


def test_truncated_png_raises_even_if_pil_allows_truncation(png_factory, monkeypatch) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    data = png_factory((1, 2, 3), (64, 64))
    with pytest.raises(ImageDecodeError):
        decode_image(data[:-30])


def test_flipped_byte_in_png_data_raises(png_factory) -> None:
    data = bytearray(png_factory((1, 2, 3), (64, 64)))
    data[60] ^= 0xFF  # inside IDAT: the chunk CRC no longer matches
    with pytest.raises(ImageDecodeError):
        decode_image(bytes(data))


def test_huge_header_rejected_before_decoding(huge_png: bytes) -> None:
    data = huge_png
    start = time.perf_counter()
    with pytest.raises(ImageTooLargeError, match="bomb") as info:
        decode_image(data, item="bomb")
    assert time.perf_counter() - start < 1.0  # refused from the header, nothing allocated
    assert isinstance(info.value, ImageDecodeError)
    with pytest.raises(ImageTooLargeError):
        probe_image(data)


def test_pixel_limit_is_ours_not_pils(png_factory) -> None:
    data = png_factory((0, 0, 0), (40, 40))  # 1600 pixels, far below PIL's own limit
    with pytest.raises(ImageTooLargeError, match="1600 pixels exceeds the limit of 1000"):
        decode_image(data, max_pixels=1000)
    assert decode_image(data, max_pixels=1600).size == (40, 40)


def test_probe_reads_header() -> None:
    info = probe_image(_save(Image.new("CMYK", (30, 20)), "JPEG"))
    assert (info.format, info.mode, info.width, info.height) == ("JPEG", "CMYK", 30, 20)


def test_cmyk_jpeg_becomes_rgb() -> None:
    data = _save(Image.new("CMYK", (32, 32), (0, 255, 255, 0)), "JPEG", quality=95)  # pure red
    image = decode_image(data)
    assert image.mode == "RGB"
    r, g, b = image.getpixel((16, 16))
    assert r > 240 and g < 15 and b < 15


def test_palette_with_transparency_composited_on_white() -> None:
    image = Image.new("P", (8, 8), 0)
    image.putpalette([0, 0, 0, 0, 0, 255] + [0] * (256 * 3 - 6))  # 0: black, 1: blue
    image.putpixel((2, 2), 1)
    data = _save(image, "PNG", transparency=0)
    assert probe_image(data).mode == "P"
    out = decode_image(data)
    assert out.mode == "RGB"
    assert out.getpixel((0, 0)) == (255, 255, 255)  # transparent black -> white, not black
    assert out.getpixel((2, 2)) == (0, 0, 255)


def test_rgba_alpha_composited_on_white() -> None:
    pixels = np.zeros((4, 4, 4), dtype=np.uint8)
    pixels[..., 0] = 255
    pixels[..., 3] = 255
    pixels[0, 0, 3] = 0  # fully transparent
    pixels[1, 1, 3] = 128  # half transparent red
    out = decode_image(_save(Image.fromarray(pixels), "PNG"))
    assert out.getpixel((2, 2)) == (255, 0, 0)
    assert out.getpixel((0, 0)) == (255, 255, 255)
    r, g, b = out.getpixel((1, 1))
    assert r == 255 and 125 <= g <= 129 and g == b


def test_la_alpha_composited_on_white() -> None:
    image = Image.new("LA", (4, 4), (0, 0))  # black, fully transparent
    image.putpixel((1, 1), (0, 255))
    out = decode_image(_save(image, "PNG"))
    assert out.getpixel((0, 0)) == (255, 255, 255)
    assert out.getpixel((1, 1)) == (0, 0, 0)


def test_sixteen_bit_grey_is_scaled_not_clipped() -> None:
    values = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)
    data = _save(Image.fromarray(values), "PNG")
    assert probe_image(data).mode.startswith("I")
    out = np.asarray(decode_image(data))
    assert out.shape == (1, 4, 3)
    assert out[0, :, 0].tolist() == [0, 1, 128, 255]
    assert (out[..., 0] == out[..., 2]).all()


def test_mode_I_from_16_bit_data_is_scaled() -> None:
    image = Image.fromarray(np.array([[0, 65535]], dtype=np.int32))
    assert image.mode == "I"
    assert np.asarray(decode_image(_save(image, "TIFF")))[0, :, 1].tolist() == [0, 255]


def test_bilevel_and_grey_become_rgb() -> None:
    bilevel = Image.new("1", (3, 3), 1)
    bilevel.putpixel((0, 0), 0)
    out = decode_image(_save(bilevel, "PNG"))
    assert out.getpixel((0, 0)) == (0, 0, 0) and out.getpixel((1, 1)) == (255, 255, 255)
    assert decode_image(_save(Image.new("L", (2, 2), 77), "PNG")).getpixel((1, 1)) == (77, 77, 77)


def test_encode_png_is_deterministic_and_drops_metadata(png_factory) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    with_icc = Image.fromarray(pixels)
    with_icc.info["icc_profile"] = b"fake profile bytes"
    first = encode_png(with_icc)
    assert first == encode_png(pixels) == encode_png(Image.fromarray(pixels))
    assert b"iCCP" not in first
    assert np.array_equal(np.asarray(decode_image(first)), pixels)
    assert probe_image(first).mode == "RGB"


def test_encode_png_converts_odd_modes_to_rgb() -> None:
    data = encode_png(Image.new("RGBA", (5, 5), (0, 0, 0, 0)))
    info = probe_image(data)
    assert (info.format, info.mode) == ("PNG", "RGB")
    assert decode_image(data).getpixel((2, 2)) == (255, 255, 255)


def test_huge_header_refused_even_with_pil_limit_disabled(monkeypatch, huge_png: bytes) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    with pytest.raises(ImageTooLargeError, match="100000x100000"):
        decode_image(huge_png)

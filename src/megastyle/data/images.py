"""Safe image decoding (size limits, odd modes, clear errors) and deterministic PNG encoding."""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

# The release images are 512x512; 64 MP leaves room for large user-supplied style references
# while refusing decompression bombs long before they can exhaust memory (~200 MB as RGB).
DEFAULT_MAX_PIXELS = 8192 * 8192

WHITE: tuple[int, int, int] = (255, 255, 255)

# Image files recognised in folders (pools, collections to embed, style references, queries).
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")

_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})


class ImageDecodeError(ValueError):
    """An image could not be decoded; names the item (if known) and the cause."""

    def __init__(self, cause: str, *, item: str | None = None) -> None:
        self.item = item
        self.cause = cause
        where = f"image {item!r}" if item is not None else "image"
        super().__init__(f"cannot decode {where}: {cause}")


class ImageTooLargeError(ImageDecodeError):
    """The image header declares more pixels than allowed (decompression-bomb guard)."""


@dataclass(frozen=True)
class ImageInfo:
    """What an image header declares, read without decoding pixel data."""

    format: str | None
    mode: str
    width: int
    height: int


def _check_bytes(data: object, item: str | None) -> bytes:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ImageDecodeError(f"expected bytes, got {type(data).__name__}", item=item)
    if len(data) == 0:
        raise ImageDecodeError("empty data", item=item)
    return bytes(data)


def _open(data: bytes, item: str | None, max_pixels: int) -> Image.Image:
    """Open lazily (header only) and enforce the pixel limit before any pixel is decoded."""
    with warnings.catch_warnings():
        # We apply our own, stricter limit below; PIL's warning would only be noise.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError as exc:
            raise ImageTooLargeError(str(exc), item=item) from exc
        except Image.UnidentifiedImageError as exc:  # its message carries the buffer's repr: not for users
            raise ImageDecodeError("not an image in a format PIL reads", item=item) from exc
        except Exception as exc:  # hostile input makes PIL raise many exception types
            raise ImageDecodeError(f"{type(exc).__name__}: {exc}", item=item) from exc
    width, height = image.size
    if width <= 0 or height <= 0:
        raise ImageDecodeError(f"invalid size {width}x{height}", item=item)
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"{width}x{height} = {width * height} pixels exceeds the limit of {max_pixels}", item=item
        )
    return image


def probe_image(data: bytes, *, item: str | None = None, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageInfo:
    """Read format, mode and size from the header only; enforces the pixel limit."""
    image = _open(_check_bytes(data, item), item, max_pixels)
    with image:
        return ImageInfo(format=image.format, mode=image.mode, width=image.width, height=image.height)


def decode_image(
    data: bytes,
    *,
    item: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    exif_transpose: bool = True,
    background: tuple[int, int, int] = WHITE,
) -> Image.Image:
    """Decode encoded image bytes to an RGB PIL image, raising ImageDecodeError on any problem."""
    raw = _check_bytes(data, item)
    image = _open(raw, item, max_pixels)
    try:
        if image.format == "PNG":
            # verify() walks every chunk and checks CRCs, so a truncated or bit-flipped PNG fails
            # even if someone set ImageFile.LOAD_TRUNCATED_IMAGES globally.
            image.verify()
            image = Image.open(io.BytesIO(raw))
        # Non-PNG formats rely on PIL raising on truncation, i.e. on ImageFile.LOAD_TRUNCATED_IMAGES
        # being left False (we don't flip that global: it would race with other threads).
        image.load()
        if exif_transpose:
            image = ImageOps.exif_transpose(image)
        return to_rgb(image, background=background)
    except ImageDecodeError:
        raise
    except Exception as exc:  # decoders raise OSError, SyntaxError, ValueError, struct.error...
        raise ImageDecodeError(f"{type(exc).__name__}: {exc}", item=item) from exc


def _scale_16bit(image: Image.Image) -> Image.Image:
    """Map 16-bit grey (I;16*, or I as PIL decodes 16-bit files) onto 0..255 with rounding."""
    values = np.asarray(image).astype(np.int64)
    values = np.clip(values, 0, 65535)
    eight = ((values * 255 + 32767) // 65535).astype(np.uint8)
    return Image.fromarray(eight)  # uint8 2-D -> mode L


def to_rgb(image: Image.Image, *, background: tuple[int, int, int] = WHITE) -> Image.Image:
    """Convert any PIL mode to RGB; alpha and palette transparency are composited on ``background``."""
    mode = image.mode
    has_alpha = mode in _ALPHA_MODES or "transparency" in image.info
    if mode in _SIXTEEN_BIT_MODES:
        # PIL's convert("L") clips 16-bit values at 255 instead of scaling them.
        return _scale_16bit(image).convert("RGB")
    if mode == "RGB" and not has_alpha:
        return image
    if has_alpha:
        rgba = image.convert("RGBA")
        base = Image.new("RGBA", rgba.size, (*background, 255))
        return Image.alpha_composite(base, rgba).convert("RGB")
    if mode == "F":
        return image.convert("L").convert("RGB")
    try:
        return image.convert("RGB")  # 1, L, P, CMYK, YCbCr, ...
    except ValueError as exc:
        raise ImageDecodeError(f"unsupported image mode {mode!r}: {exc}") from exc


def encode_png(image: Image.Image | np.ndarray) -> bytes:
    """Encode an image as RGB PNG; identical pixels always give identical bytes (no metadata)."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    rgb = to_rgb(image)
    # A fresh image drops .info (ICC profile, text chunks, dpi) that PIL would otherwise copy
    # into the file, so the bytes depend on the pixels only.
    clean = Image.frombytes("RGB", rgb.size, rgb.tobytes())
    buffer = io.BytesIO()
    clean.save(buffer, format="PNG", compress_level=6, optimize=False)
    return buffer.getvalue()


def is_image_file(path: str | os.PathLike[str], extensions: tuple[str, ...] = IMAGE_EXTENSIONS) -> bool:
    """True when ``path`` is a file whose suffix names an image format."""
    path = Path(path)
    return path.suffix.lower() in extensions and path.is_file()


def list_image_files(
    folder: str | os.PathLike[str], extensions: tuple[str, ...] = IMAGE_EXTENSIONS
) -> list[Path]:
    """Every image file under ``folder`` (recursive), sorted by path."""
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in extensions and p.is_file())

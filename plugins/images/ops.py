"""Image operations on records, run inside Beam workers: decode checks, resizing, modes, encoding.

Each ``*_record`` function takes a record and returns a new one, or raises
``beamline.ingest.Reject`` with a reason a user can act on. Pillow is imported inside the
functions so that loading the plugin stays cheap.
"""

from __future__ import annotations

import io
import struct
from typing import TYPE_CHECKING, Any

from beamline.ingest import META_KEY, Reject, with_meta

if TYPE_CHECKING:
    from PIL import Image

#: Pillow modes that hold 8-bit samples and convert without losing values.
EIGHT_BIT_MODES = {"1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK",
                   "YCbCr", "LAB", "HSV"}  # fmt: skip
_RESAMPLE = {"nearest": 0, "box": 4, "bilinear": 2, "hamming": 5, "bicubic": 3, "lanczos": 1}
#: An intermediate image (between two image stages of one step): this marker, the mode, width
#: and height, then the raw 8-bit pixels. Writing and reading it is one copy of the pixels; no
#: image file format (a PPM still went through Pillow's format detection and header parsing).
_RAW_MARKER = b"\x00beamline raw image\x00"
_RAW_HEAD = struct.Struct("<4sII")


class HeldImage:
    """A decoded image handed from one image stage to the next of the same chain of transforms
    (they run one after the other on each record): no copy of the pixels, no encoding. Should
    it ever be pickled (a record crossing processes), it becomes the raw intermediate bytes,
    which ``open_image`` reads the same."""

    __slots__ = ("image",)

    def __init__(self, image: Image.Image) -> None:
        self.image = image

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        return bytes, (encode_intermediate(self.image),)


def _data(record: dict[str, Any], feature: str) -> bytes | HeldImage:
    data = record.get(feature)
    if isinstance(data, HeldImage):
        return data
    if data is None:
        raise Reject(f"no '{feature}' feature in the record")
    if not isinstance(data, bytes):
        raise Reject(f"feature '{feature}' holds {type(data).__name__}, not encoded image bytes")
    if not data:
        raise Reject("empty file (0 bytes)")
    return data


def open_image(data: bytes | HeldImage) -> Image.Image:
    """Decode image bytes completely; raise ``Reject`` when they are not a readable image."""
    from PIL import Image, UnidentifiedImageError

    if isinstance(data, HeldImage):
        return data.image
    if data.startswith(_RAW_MARKER):
        return _raw_image(data)
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise Reject("not an image: Pillow cannot identify the format") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise Reject(f"truncated or corrupt image data: {exc}") from None
    fmt = (image.format or "").lower()
    try:
        image.load()  # decodes every byte: a truncated file fails here, not at open
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise Reject(f"truncated or corrupt {fmt or 'image'} data: {exc}") from None
    except Image.DecompressionBombError as exc:
        raise Reject(f"image too large: {exc}") from None
    return image


def standard_mode(image: Image.Image) -> Image.Image:
    """Convert to ``L`` (gray) or ``RGB``; raise ``Reject`` for modes that cannot convert.

    High bit-depth and float modes (``I``, ``I;16``, ``F``) are refused: converting them to 8 bits
    would silently clip their values."""
    mode = image.mode
    if mode not in EIGHT_BIT_MODES:
        raise Reject(
            f"image mode '{mode}' (high bit depth or float samples) cannot be converted to "
            "8-bit grayscale or RGB without losing values"
        )
    target = "L" if mode in ("1", "L", "LA", "La") else "RGB"
    if mode == target:
        return image
    try:
        return image.convert(target)
    except (ValueError, OSError) as exc:
        raise Reject(f"image mode '{mode}' cannot be converted to {target}: {exc}") from None


def encode(image: Image.Image, fmt: str, quality: int = 90) -> bytes:
    """Encode as PNG or JPEG bytes (deterministic for a given Pillow version)."""
    out = io.BytesIO()
    if fmt == "jpeg":
        image.save(out, format="JPEG", quality=quality)
    else:
        image.save(out, format="PNG", optimize=False)
    return out.getvalue()


def encode_intermediate(image: Image.Image) -> bytes:
    """Encode an 8-bit gray or RGB image as raw pixels behind a small header (lossless, one
    copy of the pixels); ``open_image`` reads it back."""
    head = _RAW_HEAD.pack(image.mode.encode("ascii"), image.width, image.height)
    return b"".join((_RAW_MARKER, head, image.tobytes()))


def _raw_image(data: bytes) -> Image.Image:
    from PIL import Image

    start = len(_RAW_MARKER) + _RAW_HEAD.size
    try:
        mode, width, height = _RAW_HEAD.unpack_from(data, len(_RAW_MARKER))
        mode = mode.rstrip(b"\x00").decode("ascii")
        return Image.frombytes(mode, (width, height), memoryview(data)[start:])
    except (struct.error, UnicodeDecodeError, ValueError) as exc:
        raise Reject(f"corrupt intermediate image data: {exc}") from None


def _channels(image: Image.Image) -> int:
    return len(image.getbands())


def _store(
    record: dict[str, Any],
    feature: str,
    image: Image.Image,
    fmt: str,
    quality: int,
    intermediate: bool = False,
) -> dict[str, Any]:
    # An intermediate image (the next stage decodes and re-encodes it) is handed on decoded:
    # lossless, no encoding at all; the last stage writes ``fmt``.
    data: bytes | HeldImage = HeldImage(image) if intermediate else encode(image, fmt, quality)
    out = {**record, feature: data}
    details: dict[str, Any] = {
        "format": fmt,
        "height": image.height,
        "width": image.width,
        "channels": _channels(image),
        "mode": image.mode,
    }
    if fmt == "jpeg":
        details["quality"] = quality
    return with_meta(out, feature, **details)


def _current(record: dict[str, Any], feature: str) -> tuple[str, int]:
    meta = (record.get(META_KEY) or {}).get(feature) or {}
    return str(meta.get("format", "png")), int(meta.get("quality", 90))


def _decoded(record: dict[str, Any], feature: str, stage: str) -> Image.Image:
    try:
        return standard_mode(open_image(_data(record, feature)))
    except Reject as exc:
        raise Reject(f"{exc.reason} (put decode_image before {stage} to check images)") from None


def decode_record(
    record: dict[str, Any], feature: str, fmt: str, quality: int, intermediate: bool = False
) -> dict[str, Any]:
    """Check that ``feature`` decodes, convert it to gray or RGB and re-encode it as ``fmt``.

    ``intermediate``: the next stage re-encodes the image, so hand it on decoded
    (``HeldImage``)."""
    image = standard_mode(open_image(_data(record, feature)))
    return _store(record, feature, image, fmt, quality, intermediate)


def resize_record(
    record: dict[str, Any],
    feature: str,
    height: int,
    width: int,
    fit: str,
    resample: str,
    pad_value: int,
    intermediate: bool = False,
) -> dict[str, Any]:
    """Resize ``feature`` to ``height`` x ``width`` (``fit``: stretch, pad or keep_aspect)."""
    from PIL import Image

    image = _decoded(record, feature, "resize_image")
    method = _RESAMPLE[resample]
    if fit == "stretch":
        resized = image.resize((width, height), method)
    else:
        scale = min(height / image.height, width / image.width)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        resized = image.resize(size, method)
        if fit == "pad":
            fill: Any = pad_value if image.mode == "L" else (pad_value,) * 3
            canvas = Image.new(image.mode, (width, height), fill)
            canvas.paste(resized, ((width - size[0]) // 2, (height - size[1]) // 2))
            resized = canvas
    return _store(record, feature, resized, *_current(record, feature), intermediate)


def mode_record(
    record: dict[str, Any], feature: str, mode: str, intermediate: bool = False
) -> dict[str, Any]:
    """Convert ``feature`` to ``grayscale`` (one channel) or ``rgb`` (three channels)."""
    image = _decoded(record, feature, "image_mode")
    target = "L" if mode == "grayscale" else "RGB"
    if image.mode != target:
        image = image.convert(target)
    return _store(record, feature, image, *_current(record, feature), intermediate)


def encode_record(record: dict[str, Any], feature: str, fmt: str, quality: int) -> dict[str, Any]:
    """Re-encode ``feature`` as PNG or JPEG (with ``quality``)."""
    image = _decoded(record, feature, "encode_image")
    return _store(record, feature, image, fmt, quality)

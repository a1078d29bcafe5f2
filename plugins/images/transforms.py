"""Image transforms: Beam stages that check, resize, convert and re-encode the ``image`` feature."""

from __future__ import annotations

import functools
from typing import Any, Literal

from beamline import ParamError, SpecError, StepContext, Transform, param
from beamline.ingest import record_stage

from . import ops


def _set_image(info: dict[str, Any], feature: str, **details: Any) -> dict[str, Any]:
    features = {k: dict(v) for k, v in info["features"].items()}
    features.setdefault(feature, {"modality": "image"}).update(details)
    return {**info, "features": features}


def _next_reencodes(ctx: StepContext, transform: Transform) -> bool:
    """Whether the transform right after ``transform`` in this step decodes and re-encodes the
    same image feature (resize, mode, encode): then ``transform`` may write a cheap lossless
    intermediate (PPM) instead of compressing a PNG or JPEG that is thrown away."""
    transforms = list(getattr(ctx.step.component, "transforms", None) or [])
    for i, candidate in enumerate(transforms[:-1]):
        if candidate is transform:
            following = transforms[i + 1]
            return isinstance(following, ResizeImage | ImageMode | EncodeImage) and (
                following.feature == getattr(transform, "feature", None)
            )
    return False


class DecodeImage(Transform):
    """Check that every image decodes; convert it to 8-bit gray or RGB and re-encode it.

    Rejects, each with its reason: empty (0-byte) files, files that are no image (a text file
    named .png), truncated or corrupt data (a cut JPEG), and high bit-depth or float images
    (modes I, I;16, F) that cannot be converted to 8 bits without losing values. Gray images
    stay gray (1 channel); every other mode becomes RGB (3 channels)."""

    name = "decode_image"
    feature: str = param("image", help="the feature holding encoded image bytes")
    format: Literal["png", "jpeg"] = param("png", help="encoding written: png (lossless) or jpeg")
    quality: int = param(90, help="JPEG quality (1-95), used when format is jpeg", ge=1, le=95)

    def stage(self, ctx: StepContext) -> Any:
        """The Beam stage: decode, convert, re-encode; reject what does not decode."""
        fn = functools.partial(
            ops.decode_record,
            feature=self.feature,
            fmt=self.format,
            quality=self.quality,
            intermediate=_next_reencodes(ctx, self),
        )
        return record_stage(self.name, fn)

    def feature_info(self, ctx: StepContext, info: dict[str, Any]) -> dict[str, Any]:
        """The image feature is now encoded as ``format``."""
        return _set_image(info, self.feature, modality="image", format=self.format)


class ResizeImage(Transform):
    """Resize images to a fixed size: stretch, keep the aspect ratio and pad, or keep it only.

    ``size`` is one number (a square) or [height, width]. ``fit: stretch`` ignores the aspect
    ratio; ``pad`` keeps it and centres the image on a ``pad_value`` background; ``keep_aspect``
    keeps it and makes the image fit inside the size (sizes then vary)."""

    name = "resize_image"
    size: int | list[int] = param(help="output size: N (N x N) or [height, width]", ge=1)
    fit: Literal["stretch", "pad", "keep_aspect"] = param("stretch", help="how to fit the size")
    resample: Literal["nearest", "box", "bilinear", "hamming", "bicubic", "lanczos"] = param(
        "bilinear", help="resampling filter"
    )
    pad_value: int = param(
        0, help="gray level (0-255) of the padding when fit is pad", ge=0, le=255
    )
    feature: str = param("image", help="the feature holding encoded image bytes")

    def check(self) -> None:
        """``size`` is one number or two."""
        if isinstance(self.size, list) and len(self.size) not in (1, 2):
            raise ParamError("size", f"expected N or [height, width], got {self.size}")

    def dimensions(self) -> tuple[int, int]:
        """``(height, width)`` from ``size``."""
        size = [self.size] if isinstance(self.size, int) else list(self.size)
        if len(size) == 1:
            size = size * 2
        if len(size) != 2 or any(not isinstance(s, int) or s < 1 for s in size):
            raise SpecError(
                f"{self.name}: size must be a positive integer or [height, width], got {self.size}"
            )
        return size[0], size[1]

    def stage(self, ctx: StepContext) -> Any:
        """The Beam stage: resize each image."""
        height, width = self.dimensions()
        fn = functools.partial(
            ops.resize_record,
            feature=self.feature,
            height=height,
            width=width,
            fit=self.fit,
            resample=self.resample,
            pad_value=self.pad_value,
            intermediate=_next_reencodes(ctx, self),
        )
        return record_stage(self.name, fn)

    def feature_info(self, ctx: StepContext, info: dict[str, Any]) -> dict[str, Any]:
        """The image feature's declared size (unless ``keep_aspect``)."""
        if self.fit == "keep_aspect":
            return info
        height, width = self.dimensions()
        return _set_image(info, self.feature, height=height, width=width)


class ImageMode(Transform):
    """Convert images to grayscale (1 channel) or RGB (3 channels)."""

    name = "image_mode"
    mode: Literal["grayscale", "rgb"] = param(help="grayscale or rgb")
    feature: str = param("image", help="the feature holding encoded image bytes")

    def stage(self, ctx: StepContext) -> Any:
        """The Beam stage: convert each image."""
        fn = functools.partial(
            ops.mode_record,
            feature=self.feature,
            mode=self.mode,
            intermediate=_next_reencodes(ctx, self),
        )
        return record_stage(self.name, fn)

    def feature_info(self, ctx: StepContext, info: dict[str, Any]) -> dict[str, Any]:
        """The image feature's declared channels."""
        return _set_image(info, self.feature, channels=1 if self.mode == "grayscale" else 3)


class EncodeImage(Transform):
    """Re-encode images as PNG (lossless) or JPEG with a quality."""

    name = "encode_image"
    format: Literal["png", "jpeg"] = param("png", help="png or jpeg")
    quality: int = param(90, help="JPEG quality (1-95)", ge=1, le=95)
    feature: str = param("image", help="the feature holding encoded image bytes")

    def stage(self, ctx: StepContext) -> Any:
        """The Beam stage: re-encode each image."""
        fn = functools.partial(
            ops.encode_record, feature=self.feature, fmt=self.format, quality=self.quality
        )
        return record_stage(self.name, fn)

    def feature_info(self, ctx: StepContext, info: dict[str, Any]) -> dict[str, Any]:
        """The image feature's declared format."""
        return _set_image(info, self.feature, format=self.format)

"""Image sources and Beam stages: folders of PNG/JPEG, decode checks, resizing, modes, encoding.

Importing this plugin is cheap: Pillow and Beam load only when a stage runs.
"""

from __future__ import annotations

from typing import Any

from beamline import hookimpl

from .sources import ImageFolder
from .transforms import DecodeImage, EncodeImage, ImageMode, ResizeImage

__all__ = ["DecodeImage", "EncodeImage", "ImageFolder", "ImageMode", "ResizeImage"]


@hookimpl
def register_sources(register: Any) -> None:
    """Register ``image_folder``."""
    register(ImageFolder)


@hookimpl
def register_transforms(register: Any) -> None:
    """Register ``decode_image``, ``resize_image``, ``image_mode`` and ``encode_image``."""
    register(DecodeImage)
    register(ResizeImage)
    register(ImageMode)
    register(EncodeImage)

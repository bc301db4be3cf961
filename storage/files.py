"""Stored attachment files, images re-encoded without EXIF, GPS or other metadata."""

from __future__ import annotations

import io
import secrets
from pathlib import Path

STORED_PREFIX = "stored:"
MAX_PIXELS = 40_000_000  # a 40-megapixel photo; anything larger is refused before decoding
_IMAGE_FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif"}


class FileStore:
    """Writes files under one folder with random names; references look like 'stored:NAME'."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def save(self, data: bytes, extension: str = "bin") -> str:
        """Store bytes as they are; returns the reference."""
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{secrets.token_hex(16)}.{extension}"
        (self.folder / name).write_bytes(data)
        return STORED_PREFIX + name

    def save_image(self, data: bytes) -> str | None:
        """Re-encode an image with no metadata; None when the bytes are not an image."""
        # Pillow is loaded with the first image, not by every process that stores files.
        from PIL import Image, ImageOps, UnidentifiedImageError

        try:
            with Image.open(io.BytesIO(data)) as original:
                width, height = original.size
                if width * height > MAX_PIXELS:
                    return None
                fmt = original.format or "JPEG"
                upright = ImageOps.exif_transpose(original)
                if upright.mode not in ("RGB", "RGBA", "L", "LA"):
                    upright = upright.convert("RGBA")
                # A fresh image from the pixels alone: no EXIF, GPS, XMP, ICC or comments.
                clean = Image.frombytes(upright.mode, upright.size, upright.tobytes())
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
            return None
        if fmt not in _IMAGE_FORMATS:
            fmt = "PNG"
        if fmt == "JPEG" and clean.mode not in ("RGB", "L"):
            clean = clean.convert("RGB")
        out = io.BytesIO()
        clean.save(out, format=fmt)
        return self.save(out.getvalue(), _IMAGE_FORMATS[fmt])

    def path(self, ref: str) -> Path | None:
        """The file behind a stored reference, or None for other references."""
        if not ref.startswith(STORED_PREFIX):
            return None
        name = ref[len(STORED_PREFIX) :]
        if "/" in name or "\\" in name or name.startswith("."):
            return None
        return self.folder / name

    def delete(self, ref: str) -> None:
        """Remove a stored file if present."""
        path = self.path(ref)
        if path is not None:
            path.unlink(missing_ok=True)

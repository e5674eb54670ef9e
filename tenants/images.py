"""Pictures a studio uploads (logo, welcome image, slides, service pictures): what may be
uploaded, and shrinking it once on save so screens never download a camera's 12 MP original.

No SVG (it can carry script), nothing so large that a kiosk or TV on Wi-Fi stalls loading it.
A picture saved here gets a new name with a hash of its content, so a proxy may serve
`/media/` with a year's `Cache-Control: immutable` (docs/deploy.md): a new upload is a new URL.
"""

from __future__ import annotations

import hashlib
import os
from io import BytesIO

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import models
from django.db.models.fields.files import ImageFieldFile
from django.utils.translation import gettext as _
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_FORMATS = {"JPEG": "JPEG", "PNG": "PNG", "WEBP": "WebP"}
IMAGE_MAX_BYTES = 5 * 1024 * 1024
IMAGE_MAX_SIDE = 4096

# The largest each kind of picture is kept at, in pixels (width, height): twice what the
# biggest screen draws it at, no more.
LOGO_SIZE = (800, 400)
WELCOME_SIZE = (1920, 1920)
SLIDE_SIZE = (1920, 1920)
SERVICE_SIZE = (800, 600)


def validate_image(value) -> None:
    """Refuses a picture that is too heavy, too large or not JPEG/PNG/WebP."""
    if getattr(value, "_committed", False):
        return  # already stored, so checked when it was uploaded (a form saved again)
    if value.size > IMAGE_MAX_BYTES:
        raise ValidationError(
            _("The image is larger than %(mb)d MB.") % {"mb": IMAGE_MAX_BYTES // 2**20}
        )
    position = value.tell() if hasattr(value, "tell") else 0
    try:
        value.seek(0)
        with Image.open(value) as image:
            kind, (width, height) = image.format, image.size
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as error:
        raise ValidationError(_("Upload a JPEG, PNG or WebP image.")) from error
    finally:
        value.seek(position)
    if kind not in IMAGE_FORMATS:
        raise ValidationError(_("Upload a JPEG, PNG or WebP image."))
    if max(width, height) > IMAGE_MAX_SIDE:
        message = _("The image is larger than %(side)d pixels on a side.")
        raise ValidationError(message % {"side": IMAGE_MAX_SIDE})


def fitted(content, size: tuple[int, int]) -> tuple[bytes, str]:
    """`content` (a validated picture) fitted inside `size`, re-encoded in its own format —
    metadata and any GPS position dropped, a camera's rotation applied — and its extension."""
    content.seek(0)
    with Image.open(content) as source:
        kind = source.format if source.format in IMAGE_FORMATS else "PNG"
        image = ImageOps.exif_transpose(source)
        image.thumbnail(size, Image.Resampling.LANCZOS)
        if kind == "JPEG" and image.mode not in ("RGB", "L"):
            image = image.convert("RGB")
        out = BytesIO()
        image.save(out, kind, **ENCODING[kind])
    return out.getvalue(), EXTENSIONS[kind]


ENCODING = {
    "JPEG": {"quality": 85, "optimize": True, "progressive": True},
    "PNG": {"optimize": True},
    "WEBP": {"quality": 85},
}
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}


class PictureFieldFile(ImageFieldFile):
    def save(self, name: str, content, save: bool = True) -> None:
        # Every way a picture is stored passes here: an admin upload (ImageField.pre_save
        # saves the uploaded file through this) and code calling `.save()` alike.
        data, extension = fitted(content, self.field.max_size)
        stem = os.path.splitext(os.path.basename(name))[0][:40] or "image"
        digest = hashlib.sha256(data).hexdigest()[:12]
        super().save(f"{stem}-{digest}.{extension}", ContentFile(data), save)


class PictureField(models.ImageField):
    """An ImageField for pictures a studio uploads: validated (`validate_image`) and fitted
    inside `max_size` pixels when stored, under a name that changes with the content."""

    attr_class = PictureFieldFile
    default_validators = [*models.ImageField.default_validators, validate_image]

    def __init__(self, *args, max_size: tuple[int, int] = (1920, 1920), **kwargs) -> None:
        self.max_size = tuple(max_size)
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["max_size"] = self.max_size
        return name, path, args, kwargs

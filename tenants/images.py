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
from django.db.models.fields.files import FieldFile
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


def shrink_upload(field: FieldFile, size: tuple[int, int]) -> None:
    """Before the model saves: a newly uploaded picture fitted inside `size`, re-encoded
    (metadata and its GPS position dropped, camera rotation applied) under a content-hash name.

    Does nothing to a file already stored (the model saved again) or to no file at all.
    """
    if not field or field._committed:
        return
    field.seek(0)
    with Image.open(field) as source:
        kind = source.format if source.format in IMAGE_FORMATS else "PNG"
        image = ImageOps.exif_transpose(source)
        image.thumbnail(size, Image.Resampling.LANCZOS)
        if kind == "JPEG" and image.mode not in ("RGB", "L"):
            image = image.convert("RGB")
        out = BytesIO()
        options = {
            "JPEG": {"quality": 85, "optimize": True, "progressive": True},
            "PNG": {"optimize": True},
            "WEBP": {"quality": 85},
        }[kind]
        image.save(out, kind, **options)
    content = out.getvalue()
    stem = os.path.splitext(os.path.basename(field.name))[0][:40]
    extension = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}[kind]
    digest = hashlib.sha256(content).hexdigest()[:12]
    field.save(f"{stem}-{digest}.{extension}", ContentFile(content), save=False)

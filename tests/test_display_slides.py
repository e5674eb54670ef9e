"""A tenant's slides for the TV: what a picture may be, and that a slide says something."""

from __future__ import annotations

from io import BytesIO

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from totem.models import DisplaySlide

pytestmark = pytest.mark.django_db


def picture(kind: str, size: tuple[int, int] = (64, 36), name: str = "promo.png"):
    buffer = BytesIO()
    Image.new("RGB", size, "#0b1220").save(buffer, format=kind)
    return SimpleUploadedFile(name, buffer.getvalue())


def errors_of(slide: DisplaySlide) -> dict:
    with pytest.raises(ValidationError) as raised:
        slide.full_clean()
    return raised.value.message_dict


def test_a_png_jpeg_or_webp_picture_is_accepted(tenant, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    for kind in ("PNG", "JPEG", "WEBP"):
        DisplaySlide(tenant=tenant, image=picture(kind)).full_clean()


def test_a_gif_or_a_file_that_is_no_picture_is_refused_with_a_reason(tenant):
    gif = DisplaySlide(tenant=tenant, image=picture("GIF", name="promo.gif"))
    assert errors_of(gif)["image"] == ["Envie uma imagem JPEG, PNG ou WebP."]
    fake = DisplaySlide(tenant=tenant, image=SimpleUploadedFile("x.png", b"<svg onload=x>"))
    assert errors_of(fake)["image"] == ["Envie uma imagem JPEG, PNG ou WebP."]


def test_a_picture_too_large_on_a_side_is_refused(tenant):
    huge = DisplaySlide(tenant=tenant, image=picture("PNG", size=(5000, 10)))
    assert errors_of(huge)["image"] == ["A imagem passa de 4096 pixels em um dos lados."]


def test_an_empty_slide_is_refused(tenant):
    assert errors_of(DisplaySlide(tenant=tenant, title="  "))["__all__"] == [
        "Dê à mensagem um título, um texto ou uma imagem."
    ]

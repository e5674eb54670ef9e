"""A tenant's colours: WCAG contrast maths, the palette derived from two picks, the admin's
refusal of an unreadable pair, and the pictures a studio uploads (validated, shrunk)."""

from __future__ import annotations

from io import BytesIO

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from tenants.branding import AA, AAA, Palette, contrast, ink_on, relative_luminance, tint
from tenants.models import Membership, Role, Tenant
from tests.test_display_browser import contrast as measured_contrast

colours = st.integers(0, 0xFFFFFF).map(lambda n: f"#{n:06x}")


def independently(one: str, two: str) -> float:
    """The browser test's own WCAG maths (over CSS rgb()), not the module under test."""

    def css(colour: str) -> str:
        return f"rgb({int(colour[1:3], 16)}, {int(colour[3:5], 16)}, {int(colour[5:7], 16)})"

    return measured_contrast(css(one), css(two))


# --- the maths -------------------------------------------------------------------------------


def test_black_on_white_is_21_to_1_and_a_colour_on_itself_1_to_1():
    assert contrast("#000000", "#ffffff") == pytest.approx(21)
    assert contrast("#ffffff", "#000000") == pytest.approx(21)
    assert contrast("#0033a0", "#0033a0") == pytest.approx(1)
    assert relative_luminance("#ffffff") == pytest.approx(1)
    assert relative_luminance("#000000") == 0


def test_known_ratios_match_the_wcag_reference_values():
    # Values published by WebAIM's contrast checker for these pairs.
    assert contrast("#767676", "#ffffff") == pytest.approx(4.54, abs=0.01)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)
    assert contrast("#0033a0", "#ffd400") == pytest.approx(independently("#0033a0", "#ffd400"))


def test_text_on_a_colour_is_black_or_white_whichever_reads_better():
    assert ink_on("#ffd400") == "#000000"
    assert ink_on("#0033a0") == "#ffffff"
    assert tint("#0033a0", 0) == "#ffffff"
    assert tint("#0033a0", 1) == "#0033a0"


@given(colours)
def test_black_or_white_always_reaches_4_5_on_any_colour(colour):
    assert independently(ink_on(colour), colour) >= AA


@given(colours, colours)
def test_every_pair_of_an_accepted_palette_reads_at_its_minimum(primary, accent):
    palette = Palette(primary, accent)
    if palette.failing():
        return  # refused in admin (see below): never drawn
    for pair in palette.pairs():
        assert independently(pair.text, pair.background) >= pair.minimum, pair.name
    # The TV's stage (number, service, room) is read from across a room: 7:1.
    assert independently(palette.tv_number, palette.tv_stage) >= AAA
    assert independently(palette.tv_stage_ink, palette.tv_stage) >= AAA


@given(colours, colours)
def test_only_the_accent_written_on_the_primary_can_refuse_a_palette(primary, accent):
    failing = {str(pair.name) for pair in Palette(primary, accent).failing()}
    assert failing <= {"a cor de destaque sobre a cor principal"}
    assert bool(failing) == (independently(accent, primary) < AA)


def test_strong_colours_pass_and_a_yellow_on_white_is_refused():
    assert Palette("#ffd400", "#0033a0").failing() == []
    assert Palette("#0033a0", "#ffd400").failing() == []
    assert [str(p.name) for p in Palette("#ffffff", "#ffd400").failing()] == [
        "a cor de destaque sobre a cor principal"
    ]


# --- the admin -------------------------------------------------------------------------------


@pytest.fixture
def dave_client(client, dave):
    client.force_login(dave)
    return client


def post_tenant(client, tenant: Tenant, **changes):
    """The real admin change form, posted back with its own initial values plus `changes`."""
    url = reverse("admin:tenants_tenant_change", args=[tenant.pk])
    page = client.get(url)
    assert page.status_code == 200
    form = page.context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form.initial.get(name, field.initial)
        if value is None or name in ("logo", "welcome_image"):
            continue
        data[name] = value
    data.update(changes)
    return client.post(url, data)


def test_the_admin_offers_colour_pickers(dave_client, tenant):
    page = dave_client.get(reverse("admin:tenants_tenant_change", args=[tenant.pk]))
    html = page.content.decode()
    assert 'type="color" name="primary_colour"' in html
    assert 'type="color" name="accent_colour"' in html


def test_the_admin_refuses_an_unreadable_palette_naming_the_pair_and_its_ratio(dave_client, tenant):
    response = post_tenant(dave_client, tenant, primary_colour="#ffffff", accent_colour="#ffd400")

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["accent_colour"]
    assert errors == [
        "Contraste insuficiente: a cor de destaque sobre a cor principal tem 1,43:1; é preciso "
        "pelo menos 4,5:1 para ser lido. Escolha uma cor mais clara ou mais escura."
    ]
    tenant.refresh_from_db()
    assert tenant.primary_colour == "#0b3d91"


def test_the_admin_saves_a_readable_palette(dave_client, tenant):
    response = post_tenant(dave_client, tenant, primary_colour="#ffd400", accent_colour="#0033a0")

    assert response.status_code == 302, response.context["adminform"].form.errors
    tenant.refresh_from_db()
    assert (tenant.primary_colour, tenant.accent_colour) == ("#ffd400", "#0033a0")


def test_a_colour_that_is_not_hex_is_refused(dave_client, tenant):
    response = post_tenant(dave_client, tenant, primary_colour="red")
    assert response.context["adminform"].form.errors["primary_colour"]


# --- pictures --------------------------------------------------------------------------------


def picture(size: tuple[int, int], kind: str = "JPEG", name: str = "foto.jpg"):
    buffer = BytesIO()
    Image.new("RGB", size, "#0033a0").save(buffer, format=kind)
    return SimpleUploadedFile(name, buffer.getvalue())


def test_an_uploaded_logo_and_welcome_image_are_shrunk_and_renamed_by_content(
    dave_client, tenant, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    response = post_tenant(
        dave_client,
        tenant,
        logo=picture((3000, 1000), "PNG", "logo.png"),
        welcome_image=picture((4000, 3000)),
    )

    assert response.status_code == 302

    tenant.refresh_from_db()
    assert (tenant.logo_width, tenant.logo_height) == (800, 267)
    with Image.open(tenant.logo.path) as logo:
        assert logo.size == (800, 267) and logo.format == "PNG"
    with Image.open(tenant.welcome_image.path) as welcome:
        assert max(welcome.size) == 1920 and welcome.format == "JPEG"
    assert tenant.logo.name.startswith("logos/logo-") and tenant.logo.name.endswith(".png")


def test_a_tenant_with_pictures_is_saved_again_without_uploading_them_again(
    dave_client, tenant, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    tenant.logo.save("logo.png", picture((400, 200), "PNG", "logo.png"))
    stored = tenant.logo.name

    response = post_tenant(dave_client, tenant, name="Studio Alfa Centro")

    assert response.status_code == 302
    tenant.refresh_from_db()
    assert (tenant.name, tenant.logo.name) == ("Studio Alfa Centro", stored)


def test_a_gif_logo_is_refused_by_the_shared_validator(tenant):
    from django.core.exceptions import ValidationError

    tenant.logo = picture((10, 10), "GIF", "logo.gif")
    with pytest.raises(ValidationError) as raised:
        tenant.full_clean()
    assert raised.value.message_dict["logo"] == ["Envie uma imagem JPEG, PNG ou WebP."]


def test_a_manager_cannot_change_the_colours(client, bob, tenant):
    client.force_login(bob)
    url = reverse("admin:tenants_tenant_change", args=[tenant.pk])
    assert client.post(url, {"accent_colour": "#000000"}).status_code == 403
    assert Membership.objects.get(user=bob).role == Role.MANAGER


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("Crioterapia de corpo inteiro", "cold"),
        ("Banheira de gelo", "cold"),
        ("Bota de compressão", "boots"),
        ("Pressoterapia", "boots"),
        ("Sauna infravermelha", "heat"),
        ("Massagem relaxante", "massage"),
        ("Liberação miofascial", "massage"),
        ("Avaliação física", "generic"),
    ],
)
def test_a_service_without_a_picture_gets_a_drawing_chosen_by_its_name(name, kind):
    from totem.templatetags.service_art import illustration_for

    assert illustration_for(name) == kind


def test_the_service_card_draws_the_picture_with_its_size_or_the_drawing(
    tenant, settings, tmp_path
):
    from django.template import Context, Template

    from tests.conftest import make_service
    from tickets.models import Service

    settings.MEDIA_ROOT = tmp_path
    sauna = make_service(tenant, "Sauna", "S")
    boots = make_service(tenant, "Botas", "B")
    boots.picture.save("botas.jpg", picture((1600, 1600)))
    boots = Service.objects.get(pk=boots.pk)  # as a view reads it
    template = Template("{% load service_art %}{% service_picture service position %}")

    drawn = template.render(Context({"service": sauna, "position": 1}))
    assert 'data-art="heat"' in drawn and "<img" not in drawn
    first = template.render(Context({"service": boots, "position": 1}))
    assert 'width="600" height="600"' in first and 'loading="lazy"' not in first
    fifth = template.render(Context({"service": boots, "position": 5}))
    assert 'loading="lazy"' in fifth  # below the first screen

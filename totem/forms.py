"""Kiosk forms: the pairing code, the customer's identification and the WhatsApp opt-in."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from messaging.optin import CONSENT_LABEL as WHATSAPP_LABEL
from tenants.br import clean_name, digits, normalize_cpf, normalize_phone, visible_text
from tickets.models import Priority
from totem.consent import CONSENT_LABEL

# What the customer may declare — every group of Lei 10.048/2000 art. 1º as amended by Lei
# 14.626/2023 — and the class each one gives. Only the class is kept: the declaration itself
# is health data (LGPD art. 11) and never leaves this form.
PRIORITY_DECLARATIONS = [
    ("", _("No priority"), Priority.NORMAL),
    ("60", _("60 years or older"), Priority.PRIORITY),
    ("80", _("80 years or older"), Priority.PRIORITY_80),
    ("pregnant", _("Pregnant or breastfeeding"), Priority.PRIORITY),
    ("infant", _("With a baby or small child in arms"), Priority.PRIORITY),
    ("disability", _("Person with a disability"), Priority.PRIORITY),
    ("autism", _("Autism spectrum"), Priority.PRIORITY),
    ("mobility", _("Reduced mobility"), Priority.PRIORITY),
    ("obesity", _("Person with obesity"), Priority.PRIORITY),
    # Lei 10.205/2001 art. 15 (by Lei 14.626/2023): on showing a donation certificate that is
    # valid for 120 days.
    ("blood_donor", _("Blood donor (certificate of the last 120 days)"), Priority.BLOOD_DONOR),
]
PRIORITY_CLASS = {value: klass for value, _label, klass in PRIORITY_DECLARATIONS}


def declaration_of(priority_class: str) -> str:
    """The declaration to show again for a stored class: only when one declaration alone gives
    that class (80+, blood donor, none) can it be told without having kept the reason."""
    givers = [value for value, klass in PRIORITY_CLASS.items() if klass == priority_class]
    return givers[0] if len(givers) == 1 else ""


class PairingForm(forms.Form):
    code = forms.CharField(
        label=_("Pairing code"),
        max_length=20,
        error_messages={"required": _("Type the code shown in the admin.")},
        widget=forms.TextInput(
            attrs={"inputmode": "numeric", "autocomplete": "off", "data-keypad": "digits"}
        ),
    )

    def clean_code(self) -> str:
        code = digits(self.cleaned_data["code"])
        if not code:
            raise ValidationError(_("Type the code shown in the admin."))
        return code


class IdentificationForm(forms.Form):
    customer_name = forms.CharField(
        label=_("Your name"),
        help_text=_("The name we will call you by."),
        max_length=40,
        error_messages={"required": _("Tell us the name you want to be called by.")},
        # inputmode none: the kiosk's own keyboard types here, never the system's.
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "inputmode": "none", "data-keyboard": "letters"}
        ),
    )
    customer_cpf = forms.CharField(
        label=_("CPF (optional)"),
        required=False,
        max_length=14,
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "inputmode": "none", "data-keyboard": "cpf"}
        ),
    )
    # Shown only where the studio issues NFS-e (totem/kiosk.py); absent, it is False.
    cpf_on_invoice = forms.BooleanField(
        label=_("Put my CPF on the invoice (NFS-e)"), required=False
    )
    customer_phone = forms.CharField(
        label=_("Mobile phone (optional)"),
        required=False,
        max_length=16,
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "inputmode": "none", "data-keyboard": "phone"}
        ),
    )
    priority = forms.ChoiceField(
        label=_("Priority service"),
        help_text=_("A document may be asked for at the front desk."),
        required=False,
        choices=[(value, label) for value, label, _klass in PRIORITY_DECLARATIONS],
        widget=forms.RadioSelect,
    )
    consent = forms.BooleanField(
        label=CONSENT_LABEL,
        error_messages={"required": _("To continue, agree to the use of your data.")},
    )

    def clean_customer_name(self) -> str:
        return clean_name(self.cleaned_data["customer_name"])

    def clean_customer_cpf(self) -> str:
        value = self.cleaned_data["customer_cpf"]
        return normalize_cpf(value) if visible_text(value) else ""

    def clean(self) -> dict:
        cleaned = super().clean()
        asked = cleaned.get("cpf_on_invoice")
        if asked and not cleaned.get("customer_cpf") and "customer_cpf" not in self.errors:
            self.add_error("customer_cpf", _("Type your CPF to have it on the invoice."))
        return cleaned

    def clean_customer_phone(self) -> str:
        value = self.cleaned_data["customer_phone"]
        return normalize_phone(value) if visible_text(value) else ""

    @property
    def priority_class(self) -> str:
        return PRIORITY_CLASS[self.cleaned_data.get("priority") or ""]


class WhatsAppOptInForm(forms.Form):
    """The kiosk's WhatsApp opt-in, beside the identification (shown only when the tenant
    sends WhatsApp). A yes needs the phone typed in the identification form."""

    whatsapp = forms.BooleanField(label=WHATSAPP_LABEL, required=False)

    def __init__(self, *args, phone: str = "", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.phone = phone

    def clean_whatsapp(self) -> bool:
        wanted = self.cleaned_data["whatsapp"]
        if wanted and not self.phone:
            raise ValidationError(_("Type your mobile phone to get notices on WhatsApp."))
        return wanted


class RemoteJoinForm(forms.Form):
    """Joining from the phone (totem/remote.py): services, name, phone, consent, payment.

    The phone's own keyboard types here; the phone is required (the per-number limit and
    the WhatsApp notices need it)."""

    services = forms.TypedMultipleChoiceField(
        label=_("Services"),
        coerce=int,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": _("Choose at least one service.")},
    )
    customer_name = forms.CharField(
        label=_("Your name"),
        help_text=_("The name we will call you by."),
        max_length=40,
        error_messages={"required": _("Tell us the name you want to be called by.")},
        widget=forms.TextInput(attrs={"autocomplete": "given-name"}),
    )
    customer_phone = forms.CharField(
        label=_("Mobile phone"),
        max_length=16,
        error_messages={"required": _("Type your mobile phone.")},
        widget=forms.TextInput(attrs={"autocomplete": "tel-national", "inputmode": "tel"}),
    )
    whatsapp = forms.BooleanField(label=WHATSAPP_LABEL, required=False)
    consent = forms.BooleanField(
        label=CONSENT_LABEL,
        error_messages={"required": _("To continue, agree to the use of your data.")},
    )
    method = forms.ChoiceField(label=_("How do you want to pay?"), widget=forms.RadioSelect)

    def __init__(self, *args, services=(), methods=(), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["services"].choices = [(s.pk, s.name) for s in services]
        self.fields["method"].choices = list(methods)
        if len(self.fields["method"].choices) == 1:
            self.fields["method"].initial = self.fields["method"].choices[0][0]

    def clean_customer_name(self) -> str:
        return clean_name(self.cleaned_data["customer_name"])

    def clean_customer_phone(self) -> str:
        return normalize_phone(self.cleaned_data["customer_phone"])

"""Small forms of the operator panel: each validates one action's input before the domain acts."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.utils.translation import gettext_lazy as _

from equipment.models import Equipment
from tenants.models import Tenant
from tickets.models import Service


class StationForm(forms.Form):
    """Which service device this operator works at; only the tenant's own devices."""

    station = forms.ModelChoiceField(queryset=Equipment.objects.none(), label=_("Station"))

    def __init__(self, tenant: Tenant, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["station"].queryset = Equipment.objects.service_devices().for_tenant(tenant)


class ReasonForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=200, strip=True)


class TransferForm(forms.Form):
    service = forms.ModelChoiceField(queryset=Service.objects.none(), label=_("Move to"))

    def __init__(self, tenant: Tenant, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["service"].queryset = Service.objects.sellable().for_tenant(tenant)


class CashForm(forms.Form):
    # Localized: operators type "50,00"; the payment function checks it covers the amount.
    amount_received = forms.DecimalField(
        label=_("Amount received (R$)"),
        max_digits=10,
        decimal_places=2,
        min_value=Decimal("0.01"),
        localize=True,
    )


def first_error(form: forms.Form) -> str:
    """One line for the panel's inline message: the first error of the first bad field."""
    for errors in form.errors.values():
        return str(errors[0])
    return str(_("Check the form."))

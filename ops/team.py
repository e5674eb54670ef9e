"""The studio's team page, mounted at /t/<slug>/gestao/equipe/: its administrator adds the
operators and managers, changes them, sets or hands over their password and deactivates them.

Views stay thin: the rules (whom a studio may manage, what deactivating a shared account
means) and the audit are in `tenants/team.py`. Only the studio's administrators open these
pages; a member of another studio is a 404, like everywhere under /t/<slug>/.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import SetPasswordForm, UsernameField
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods

from tenants import team
from tenants.access import tenant_member_required
from tenants.errors import DomainError
from tenants.models import AuditAction, Membership, Role

BY_LINK, BY_HAND = "link", "hand"


class MemberForm(forms.Form):
    first_name = forms.CharField(label=gettext_lazy("First name"), max_length=150)
    last_name = forms.CharField(label=gettext_lazy("Last name"), max_length=150, required=False)
    role = forms.ChoiceField(label=gettext_lazy("Role"), choices=Role.choices)


class AddMemberForm(forms.ModelForm):
    """A new person: names and login (with the User model's own checks), role, and how the
    password is set. The password itself is Django's `SetPasswordForm`, with the validators."""

    role = forms.ChoiceField(
        label=gettext_lazy("Role"), choices=Role.choices, initial=Role.OPERATOR
    )
    password_mode = forms.ChoiceField(
        label=gettext_lazy("Password"),
        choices=[
            (BY_LINK, gettext_lazy("Make a one-time link for the person to choose it")),
            (BY_HAND, gettext_lazy("Type it now")),
        ],
        initial=BY_LINK,
        widget=forms.RadioSelect,
    )

    class Meta:
        model = get_user_model()
        fields = ["first_name", "last_name", "username"]
        field_classes = {"username": UsernameField}
        labels = {
            "first_name": gettext_lazy("First name"),
            "last_name": gettext_lazy("Last name"),
            "username": gettext_lazy("Login"),
        }

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["first_name"].required = True


def _link_page(request: HttpRequest, membership: Membership, path: str) -> HttpResponse:
    # Rendered in the POST's answer, never redirected through the session: the link is a
    # key, shown once and kept nowhere (the page is no-store, like every page here).
    context = {
        "tenant": request.tenant,
        "member": membership,
        "link": request.build_absolute_uri(path),
        "days": max(1, settings.PASSWORD_RESET_TIMEOUT // 86400),
    }
    return render(request, "ops/team_link.html", context)


@require_GET
@tenant_member_required(Role.ADMIN)
def team_list(request: HttpRequest, slug: str) -> HttpResponse:
    context = {"tenant": request.tenant, "members": team.team_of(request.tenant)}
    return render(request, "ops/team.html", context)


@require_http_methods(["GET", "POST"])
@tenant_member_required(Role.ADMIN)
def team_add(request: HttpRequest, slug: str) -> HttpResponse:
    form = AddMemberForm(request.POST or None)
    # The same user object the form fills: the validators compare the password with the
    # names and login typed beside it. Not `required` in the browser: only by hand.
    password_form = SetPasswordForm(
        form.instance, request.POST or None, use_required_attribute=False
    )
    by_hand = request.POST.get("password_mode") == BY_HAND
    if request.method == "POST":
        # Both forms checked, so every mistake shows at once; the password only when typed.
        valid = form.is_valid()
        if by_hand:
            valid = password_form.is_valid() and valid
        if valid:
            data = form.cleaned_data
            try:
                membership = team.add_member(
                    request.tenant,
                    by=request.user,
                    username=data["username"],
                    first_name=data["first_name"],
                    last_name=data["last_name"],
                    role=data["role"],
                    password=password_form.cleaned_data["new_password1"] if by_hand else None,
                )
            except DomainError as error:
                form.add_error("username", str(error))
            else:
                if not by_hand:
                    path = team.password_link(membership, by=request.user)
                    return _link_page(request, membership, path)
                messages.success(
                    request, _("%(name)s can log in now.") % {"name": _name(membership)}
                )
                return redirect("ops_team", slug=slug)
    context = {"tenant": request.tenant, "form": form, "password_form": password_form}
    status = 400 if request.method == "POST" else 200
    return render(request, "ops/team_add.html", context, status=status)


def _name(membership: Membership) -> str:
    return membership.user.get_full_name() or membership.user.get_username()


@require_http_methods(["GET", "POST"])
@tenant_member_required(Role.ADMIN)
def team_member(request: HttpRequest, slug: str, member_id: int) -> HttpResponse:
    """One person of the team; each form posts its `action` here."""
    membership = get_object_or_404(team.team_of(request.tenant), pk=member_id)
    user = membership.user
    form = MemberForm(
        initial={
            "first_name": user.first_name,
            "last_name": user.last_name,
            "role": membership.role,
        }
    )
    password_form = SetPasswordForm(user)
    why_not = team.refusal(membership, request.user)
    refused = ""
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if why_not and action != "deactivate":
                # Said before any form is read; the operations check it again under lock.
                raise DomainError(why_not)
            if action == "save":
                form = MemberForm(request.POST)
                if form.is_valid():
                    team.change_member(membership, by=request.user, **form.cleaned_data)
                    messages.success(request, _("Saved."))
                    return redirect("ops_team_member", slug=slug, member_id=member_id)
            elif action == "password":
                password_form = SetPasswordForm(user, request.POST)
                if password_form.is_valid():
                    password = password_form.cleaned_data["new_password1"]
                    team.set_password(membership, by=request.user, password=password)
                    messages.success(request, _("Password changed."))
                    return redirect("ops_team_member", slug=slug, member_id=member_id)
            elif action == "link":
                return _link_page(
                    request, membership, team.password_link(membership, by=request.user)
                )
            elif action == "deactivate":
                done = team.deactivate(membership, by=request.user)
                text = (
                    _("%(name)s was removed from this team.")
                    if done == AuditAction.MEMBER_REMOVED
                    else _("%(name)s was deactivated and can no longer log in.")
                )
                messages.success(request, text % {"name": _name(membership)})
                return redirect("ops_team", slug=slug)
            elif action == "reactivate":
                team.reactivate(membership, by=request.user)
                messages.success(
                    request, _("%(name)s can log in again.") % {"name": _name(membership)}
                )
                return redirect("ops_team_member", slug=slug, member_id=member_id)
            else:
                refused = _("Choose one of the buttons on this page.")
        except DomainError as error:
            refused = str(error)
    context = {
        "tenant": request.tenant,
        "member": membership,
        "form": form,
        "password_form": password_form,
        "refused": refused,
        "why_not": why_not,
        "why_not_remove": team.refusal(membership, request.user, removing=True),
    }
    status = 400 if request.method == "POST" else 200
    return render(request, "ops/team_member.html", context, status=status)

"""A studio's team: its administrator adds people, changes their name and role, sets their
password or hands them a one-time link to set it, and deactivates them.

Each operation locks the membership and its account, re-checks that this tenant may manage
the person, acts and writes its audit entry in one transaction.

Whom a tenant manages: the people whose only studio it is. An account that also works for
another tenant, or the platform's superuser, belongs to no single studio: here it may only be
removed from this team, never renamed, re-passworded or deactivated, and nothing of its other
memberships is shown. Nobody manages their own access here, so a studio never loses its last
administrator by a slip. An administrator may grant any role, administrator included: the
role reaches no further than the studio (what only the platform may do stays with its
superuser), the admin already grants it in Memberships, and every grant is audited.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.utils.translation import gettext as _

from tenants.audit import record
from tenants.errors import DomainError
from tenants.models import AuditAction, Membership, Role, Tenant


def team_of(tenant: Tenant) -> QuerySet[Membership]:
    """The tenant's memberships with their accounts, each marked `shared` when the account
    also belongs to another tenant (which one is not this tenant's to know)."""
    elsewhere = Membership.objects.filter(user=OuterRef("user")).exclude(tenant=OuterRef("tenant"))
    return (
        Membership.objects.for_tenant(tenant)
        .select_related("user")
        .annotate(shared=Exists(elsewhere))
        .order_by("user__first_name", "user__last_name", "user__username")
    )


def refusal(membership: Membership, by, *, removing: bool = False) -> str | None:
    """Why `by` may not manage this member from the team page, or None when they may.

    `membership` comes from `team_of` (it carries `shared`). `removing`: taking the person
    off this team only, which is allowed for a shared account.
    """
    if membership.user_id == by.pk:
        return _("You cannot change your own access here.")
    if membership.user.is_superuser:
        return _("This is an account of the platform: only the platform changes it.")
    if membership.shared and not removing:
        return _(
            "This person also works for another company: here you can only remove them "
            "from this team."
        )
    return None


def _staff(role: str) -> bool:
    # Managers and administrators run the studio in Django admin; operators never open it.
    return Role.rank(role) >= Role.rank(Role.MANAGER)


def _check_role(role: str) -> None:
    if role not in Role.values:
        raise DomainError(_("Choose one of the roles offered."))


def _locked(membership: Membership, by, *, removing: bool = False) -> Membership:
    """The membership and its account locked, re-read, and refused if not ours to manage."""
    try:
        locked = (
            team_of(membership.tenant).select_for_update(of=("self", "user")).get(pk=membership.pk)
        )
    except Membership.DoesNotExist:
        raise DomainError(_("This person is no longer in the team.")) from None
    reason = refusal(locked, by, removing=removing)
    if reason:
        raise DomainError(reason)
    return locked


def _record(action: str, membership: Membership, by, **data) -> None:
    record(
        action,
        tenant=membership.tenant,
        user=by,
        entity=membership.user,
        data={"username": membership.user.get_username(), **data},
    )


def add_member(
    tenant: Tenant,
    *,
    by,
    username: str,
    first_name: str,
    last_name: str,
    role: str,
    password: str | None = None,
) -> Membership:
    """A new account that belongs to `tenant` alone, in `role`.

    With `password` (already checked by the validators) it can log in at once; without, its
    password is unusable until the person follows a link of `password_link`. A login taken
    by anyone, in any case, is refused: an existing account is never joined to a studio here.
    """
    _check_role(role)
    user_model = get_user_model()
    taken = DomainError(_("This login is taken. Choose another."))
    with transaction.atomic():
        if user_model._default_manager.filter(username__iexact=username).exists():
            raise taken
        user = user_model(
            username=username, first_name=first_name, last_name=last_name, is_staff=_staff(role)
        )
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        try:
            with transaction.atomic():
                user.save()
        except IntegrityError:  # the same login saved a moment ago by someone else
            raise taken from None
        membership = Membership.objects.create(user=user, tenant=tenant, role=role)
        _record(
            AuditAction.MEMBER_ADDED,
            membership,
            by,
            role=role,
            password="set" if password else "link",
        )
    return membership


def change_member(
    membership: Membership, *, by, first_name: str, last_name: str, role: str
) -> list[str]:
    """Rename the person and change their role here; the names of what changed."""
    _check_role(role)
    with transaction.atomic():
        locked = _locked(membership, by)
        user = locked.user
        changes = {}
        for name, value in (("first_name", first_name), ("last_name", last_name)):
            if getattr(user, name) != value:
                changes[name] = [getattr(user, name), value]
                setattr(user, name, value)
        if locked.role != role:
            changes["role"] = [locked.role, role]
            locked.role = role
            locked.save(update_fields=["role"])
            user.is_staff = _staff(role)
        if changes:
            user.save(update_fields=["first_name", "last_name", "is_staff"])
            _record(AuditAction.MEMBER_CHANGED, locked, by, changed=changes)
    return list(changes)


def set_password(membership: Membership, *, by, password: str) -> None:
    """Set the person's password (already checked by the validators). Their open sessions
    end: Django ties a session to the password it was opened with."""
    with transaction.atomic():
        locked = _locked(membership, by)
        locked.user.set_password(password)
        locked.user.save(update_fields=["password"])
        _record(AuditAction.MEMBER_PASSWORD_SET, locked, by)


def password_link(membership: Membership, *, by) -> str:
    """The path of a link with which the person sets their own password, once.

    Django's password-reset token: it dies when the password changes (so after its first
    use), when the person logs in, and after PASSWORD_RESET_TIMEOUT. Never stored nor
    audited: it is shown once to the administrator, who hands it over.
    """
    with transaction.atomic():
        locked = _locked(membership, by)
        user = locked.user
        if not user.is_active:
            raise DomainError(_("Reactivate this person first."))
        _record(AuditAction.MEMBER_PASSWORD_LINK, locked, by)
    kwargs = {
        "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
        "token": default_token_generator.make_token(user),
    }
    return reverse("password_reset_confirm", kwargs=kwargs)


def deactivate(membership: Membership, *, by) -> str:
    """End the person's access to this studio; the audit action it took.

    An account of this studio alone is deactivated (it stays in the team, marked inactive,
    and its next request is logged out); a shared account only leaves this team.
    """
    with transaction.atomic():
        locked = _locked(membership, by, removing=True)
        if locked.shared:
            locked.delete()
            _record(AuditAction.MEMBER_REMOVED, locked, by, role=locked.role)
            return AuditAction.MEMBER_REMOVED
        if locked.user.is_active:
            locked.user.is_active = False
            locked.user.save(update_fields=["is_active"])
            _record(AuditAction.MEMBER_DEACTIVATED, locked, by)
        return AuditAction.MEMBER_DEACTIVATED


def reactivate(membership: Membership, *, by) -> None:
    with transaction.atomic():
        locked = _locked(membership, by)
        if not locked.user.is_active:
            locked.user.is_active = True
            locked.user.save(update_fields=["is_active"])
            _record(AuditAction.MEMBER_REACTIVATED, locked, by)

"""The admin's user pages: users, their role, two-factor state and tokens (``manage_users``).

``/accounts/users/`` lists every user (role, active, two-factor set up / pending / locked,
sign-in lock-out, usable tokens, last sign-in); ``/accounts/users/new/`` creates one;
``/accounts/users/<id>/`` shows one and takes one POSTed ``action`` at a time: ``role``,
``activate``/``deactivate``, ``password``, ``reset_2fa``, ``unlock``, ``token`` (create; shown
once) and ``revoke`` (a token). Role changes happen HERE only (the Django admin has no user
form). Every change goes through the account services, which apply the rules -- an admin
cannot change their own role or deactivate themselves, the last active admin cannot be
demoted, a token of a user who must use a second factor needs a code of that user's
authenticator -- and write the audit trail; viewing the pages is audited too.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from spinewatch.accounts import totp
from spinewatch.accounts.errors import AccountError
from spinewatch.accounts.models import ApiToken, TotpDevice
from spinewatch.accounts.permissions import Action, requires
from spinewatch.accounts.roles import Role, role_or_none, set_role
from spinewatch.accounts.user_forms import NewUserForm, PasswordForm, RoleForm, TokenForm
from spinewatch.audit.trail import record

__all__ = ["user_detail", "user_list", "user_new"]


def _second_factor_state(user: Any, device: TotpDevice | None) -> str:
    if device is None:
        return "required, not set up" if totp.requires_second_factor(user) else "not set up"
    if device.locked_until is not None and device.locked_until > timezone.now():
        return f"locked until {timezone.localtime(device.locked_until):%d %b %H:%M}"
    return "set up" if device.confirmed else "being set up"


def _sign_in_locked(usernames: list[str]) -> set[str]:
    from axes.models import AccessAttempt
    from django.conf import settings

    limit = int(getattr(settings, "AXES_FAILURE_LIMIT", 5))
    return set(
        AccessAttempt.objects.filter(username__in=usernames, failures_since_start__gte=limit)
        .values_list("username", flat=True)
        .distinct()
    )


def _viewed(what: str, user: Any = None) -> None:
    record(
        actor=None,
        action="view",
        object_type="auth.user",
        object_id=getattr(user, "pk", None),
        detail={"page": what},
    )


@require_http_methods(["GET", "HEAD"])
@requires(Action.MANAGE_USERS)
def user_list(request: HttpRequest) -> HttpResponse:
    User = get_user_model()
    users = list(User.objects.order_by(User.USERNAME_FIELD).prefetch_related("groups"))
    devices = {d.user_id: d for d in TotpDevice.objects.all()}
    tokens: dict[int, int] = {}
    for token in ApiToken.objects.filter(revoked_at__isnull=True):
        if token.is_usable():
            tokens[token.user_id] = tokens.get(token.user_id, 0) + 1
    locked = _sign_in_locked([u.get_username() for u in users])
    rows = [
        {
            "user": u,
            "role": role_or_none(u),
            "second_factor": _second_factor_state(u, devices.get(u.pk)),
            "tokens": tokens.get(u.pk, 0),
            "locked": u.get_username() in locked,
        }
        for u in users
    ]
    _viewed("user list")
    return render(request, "accounts/users/list.html", {"rows": rows})


@require_http_methods(["GET", "HEAD", "POST"])
@requires(Action.MANAGE_USERS)
def user_new(request: HttpRequest) -> HttpResponse:
    from spinewatch.accounts.users import create_user

    form = NewUserForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                user = create_user(
                    username=data["username"],
                    password=data["password"],
                    role=data["role"],
                    email=data["email"] or "",
                )
            except AccountError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, f"User {user.get_username()} created.")
                return redirect("accounts:user", pk=user.pk)
        status = 400
    return render(request, "accounts/users/new.html", {"form": form}, status=status)


def _get(pk: int) -> Any:
    user = get_user_model().objects.filter(pk=pk).first()
    if user is None:
        raise Http404("no such user")
    return user


def _check_role_change(acting: Any, user: Any, role: Role) -> None:
    if user.pk == acting.pk:
        raise AccountError("you cannot change your own role; ask another admin")
    if role_or_none(user) is Role.ADMIN and role is not Role.ADMIN:
        others = [
            u
            for u in get_user_model().objects.filter(is_active=True, groups__name=Role.ADMIN.value)
            if u.pk != user.pk
        ]
        if not others:
            raise AccountError("this is the last active admin: make someone else admin first")


def _act(request: HttpRequest, user: Any, action: str) -> tuple[str | None, dict[str, Any]]:
    """Apply one POSTed action; (success message or None, forms with their errors)."""
    from axes.utils import reset

    from spinewatch.accounts.events import account_event
    from spinewatch.accounts.tokens import create_token, revoke_token
    from spinewatch.accounts.users import set_active, set_password

    forms: dict[str, Any] = {}
    name = user.get_username()
    if action == "role":
        form = forms["role_form"] = RoleForm(request.POST)
        if form.is_valid():
            role = Role.parse(form.cleaned_data["role"])
            _check_role_change(request.user, user, role)
            set_role(user, role)
            return f"{name} is now {role.label}.", forms
        return None, forms
    if action in ("activate", "deactivate"):
        if action == "deactivate" and role_or_none(user) is Role.ADMIN:
            _check_role_change(request.user, user, Role.CLINICIAN)  # the last-admin rule
        set_active(user, action == "activate", acting=request.user)
        return f"{name} is {'active' if action == 'activate' else 'inactive'}.", forms
    if action == "password":
        form = forms["password_form"] = PasswordForm(request.POST)
        if form.is_valid():
            set_password(user, form.cleaned_data["password"])
            return f"New password set for {name}.", forms
        return None, forms
    if action == "reset_2fa":
        had = totp.reset_device(user)
        return f"{name}: authenticator {'removed' if had else 'was not set up'}.", forms
    if action == "unlock":
        removed = reset(username=name)
        if removed:
            account_event("update", user, detail={"sign_in_unlocked": removed})
        second = totp.unlock(user)
        return f"{name}: sign-in unlocked{' (second factor too)' if second else ''}.", forms
    if action == "token":
        form = forms["token_form"] = TokenForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            new = create_token(
                user, name=data["name"], days=data["days"], totp_code=data["code"] or None
            )
            forms["new_token"] = new.token
            return f"Token {new.record.prefix}… created: copy it now, it is not shown again.", forms
        return None, forms
    if action == "revoke":
        token_id = request.POST.get("token", "")
        if not token_id.isdigit() or not ApiToken.objects.filter(pk=token_id, user=user).exists():
            raise AccountError(f"token {token_id!r}: not a token of {name}")
        revoked = revoke_token(int(token_id))
        return f"Token {revoked.prefix}… revoked.", forms
    raise AccountError(f"action {action!r}: not something this page does")


@require_http_methods(["GET", "HEAD", "POST"])
@requires(Action.MANAGE_USERS)
def user_detail(request: HttpRequest, pk: int) -> HttpResponse:
    user = _get(pk)
    forms: dict[str, Any] = {}
    status = 200
    if request.method == "POST":
        action = request.POST.get("action", "")
        try:  # each service is atomic itself; a refused code must stay counted
            done, forms = _act(request, user, action)
        except AccountError as exc:
            messages.error(request, str(exc))
            status = 400
        else:
            if done is not None and "new_token" not in forms:
                messages.success(request, done)
                return redirect("accounts:user", pk=user.pk)
            if done is not None:
                messages.success(request, done)
            else:
                status = 400
        user = _get(pk)
    device = TotpDevice.objects.filter(user=user).first()
    role = role_or_none(user)
    context = {
        "subject": user,
        "role": role,
        "is_self": user.pk == request.user.pk,
        "second_factor": _second_factor_state(user, device),
        "has_device": device is not None,
        "locked": bool(_sign_in_locked([user.get_username()])) or totp.locked_until(user),
        "tokens": list(ApiToken.objects.filter(user=user).order_by("-created_at")),
        "role_form": forms.get("role_form") or RoleForm(initial={"role": role and role.value}),
        "password_form": forms.get("password_form") or PasswordForm(),
        "token_form": forms.get("token_form") or TokenForm(),
        "new_token": forms.get("new_token"),
        "needs_code": totp.requires_second_factor(user),
        "now": timezone.now(),
    }
    if request.method != "POST":
        _viewed("user", user)
    return render(request, "accounts/users/detail.html", context, status=status)

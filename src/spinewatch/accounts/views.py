"""Sign-in, sign-out, the TOTP step and the account page: plain server-rendered HTML.

URL names (namespace ``accounts``): ``login``, ``logout`` (POST), ``totp_verify``,
``totp_enrol``, ``account``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render, resolve_url
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters

from spinewatch.accounts import totp
from spinewatch.accounts.forms import TotpCodeForm
from spinewatch.accounts.roles import role_or_none

__all__ = ["AccountLoginView", "AccountLogoutView", "account", "totp_enrol", "totp_verify"]


def _safe_next(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return resolve_url(settings.LOGIN_REDIRECT_URL)


class AccountLoginView(auth_views.LoginView):
    """Username + password (throttled by django-axes), then the TOTP step when required."""

    template_name = "accounts/login.html"
    redirect_authenticated_user = True

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        user = form.get_user()
        if totp.requires_second_factor(user):
            step = "accounts:totp_verify" if totp.confirmed_device(user) else "accounts:totp_enrol"
            return HttpResponseRedirect(
                f"{reverse(step)}?{urlencode({'next': self.get_success_url()})}"
            )
        return response


class AccountLogoutView(auth_views.LogoutView):
    next_page = "accounts:login"


def _code_context(request: HttpRequest, form: TotpCodeForm, **extra: Any) -> dict[str, Any]:
    return {"form": form, "next": _safe_next(request), **extra}


def _locked_out(request: HttpRequest) -> HttpResponse | None:
    """Sign a user whose second factor is locked out (too many wrong codes) out, saying until
    when; None when codes are accepted."""
    from django.contrib.auth import logout
    from django.utils import timezone

    until = totp.locked_until(request.user)
    if until is None:
        return None
    logout(request)
    when = timezone.localtime(until).strftime("%H:%M")
    messages.error(
        request,
        f"Too many wrong codes: two-factor sign-in is locked until {when}. Try again then, or "
        "ask an admin to unlock your account.",
    )
    return redirect("accounts:login")


@never_cache
@sensitive_post_parameters("code")
@login_required
def totp_verify(request: HttpRequest) -> HttpResponse:
    """Second step of sign-in: a fresh code of the user's confirmed authenticator."""
    if totp.confirmed_device(request.user) is None:
        return redirect(
            f"{reverse('accounts:totp_enrol')}?{urlencode({'next': _safe_next(request)})}"
        )
    locked = _locked_out(request)
    if locked is not None:
        return locked
    form = TotpCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if totp.verify(request.user, form.cleaned_data["code"]):
            totp.mark_verified(request)
            return HttpResponseRedirect(_safe_next(request))
        user = request.user
        failures = totp.record_failure(request)
        if not request.user.is_authenticated:
            return _locked_out_after(request, user)
        form.add_error("code", f"That code is not valid (or was already used). Attempt {failures}.")
    return render(request, "accounts/totp_verify.html", _code_context(request, form))


def _locked_out_after(request: HttpRequest, user: Any) -> HttpResponse:
    from django.utils import timezone

    until = totp.locked_until(user)
    when = f" until {timezone.localtime(until):%H:%M}" if until is not None else ""
    messages.error(
        request,
        f"Too many wrong codes: two-factor sign-in is locked{when}. Try again then, or ask an "
        "admin to unlock your account.",
    )
    return redirect("accounts:login")


@never_cache
@sensitive_post_parameters("code")
@login_required
def totp_enrol(request: HttpRequest) -> HttpResponse:
    """Set up an authenticator: QR code + secret, then confirm with a first code."""
    if totp.confirmed_device(request.user) is not None:
        if not totp.session_is_verified(request):
            return redirect(
                f"{reverse('accounts:totp_verify')}?{urlencode({'next': _safe_next(request)})}"
            )
        messages.info(request, "You already have an authenticator; an admin can reset it.")
        return redirect("accounts:account")
    from spinewatch.accounts.models import TotpDevice

    locked = _locked_out(request)
    if locked is not None:
        return locked
    device = TotpDevice.objects.filter(user=request.user, confirmed=False).first()
    if device is None:
        device = totp.start_enrolment(request.user)
    form = TotpCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if totp.confirm(device, form.cleaned_data["code"]):
            totp.mark_verified(request)
            messages.success(request, "Two-factor sign-in is set up.")
            return HttpResponseRedirect(_safe_next(request))
        user = request.user
        failures = totp.record_failure(request)
        if not request.user.is_authenticated:
            return _locked_out_after(request, user)
        form.add_error("code", f"That code is not valid. Attempt {failures}.")
    uri = totp.provisioning_uri(device)
    secret_groups = " ".join(device.secret[i : i + 4] for i in range(0, len(device.secret), 4))
    context = _code_context(
        request, form, qr_svg=totp.qr_svg(uri), secret_groups=secret_groups, issuer=totp.ISSUER
    )
    return render(request, "accounts/totp_enrol.html", context)


@never_cache
@login_required
def account(request: HttpRequest) -> HttpResponse:
    """Who am I: role, two-factor state, sign-out."""
    role = role_or_none(request.user)
    context = {
        "role": role.label if role is not None else "none (ask an admin)",
        "has_device": totp.confirmed_device(request.user) is not None,
        "second_factor_required": totp.requires_second_factor(request.user),
    }
    return render(request, "accounts/account.html", context)

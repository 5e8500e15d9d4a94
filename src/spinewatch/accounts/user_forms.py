"""Forms of the admin's user pages: a new user, a role, a password, a token."""

from __future__ import annotations

from typing import Any

from django import forms

from spinewatch.accounts.roles import Role

__all__ = ["NewUserForm", "PasswordForm", "RoleForm", "TokenForm"]

_ROLE_CHOICES = [(role.value, role.label.capitalize()) for role in Role]


class RoleForm(forms.Form):
    role = forms.ChoiceField(label="Role", choices=_ROLE_CHOICES)


class PasswordForm(forms.Form):
    """A password typed twice (the rules are Django's validators, applied by the service)."""

    password = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="At least 12 characters; not a common password.",
    )
    password_again = forms.CharField(
        label="Password again",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("password") != data.get("password_again"):
            self.add_error("password_again", "The two passwords differ.")
        return data


class NewUserForm(PasswordForm):
    username = forms.CharField(label="User name", max_length=150)
    email = forms.EmailField(label="E-mail", required=False)
    role = forms.ChoiceField(label="Role", choices=_ROLE_CHOICES)

    field_order = ("username", "email", "role", "password", "password_again")


class TokenForm(forms.Form):
    """An API token for the user; a user who must use a second factor confirms it with a code."""

    name = forms.CharField(label="What it is for", max_length=100, initial="api")
    days = forms.IntegerField(
        label="Valid for (days)", min_value=1, max_value=3650, initial=90, required=True
    )
    code = forms.CharField(
        label="Current code from the user's authenticator",
        max_length=8,
        required=False,
        help_text="Needed for a user who must use two-factor sign-in (every admin).",
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "one-time-code"}),
    )

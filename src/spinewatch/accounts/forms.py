"""Forms of the sign-in pages."""

from __future__ import annotations

from django import forms

__all__ = ["TotpCodeForm"]


class TotpCodeForm(forms.Form):
    """The 6-digit code from the authenticator app (spaces allowed: ``123 456``)."""

    code = forms.CharField(
        label="6-digit code from your authenticator app",
        max_length=8,
        widget=forms.TextInput(
            attrs={
                "inputmode": "numeric",
                "autocomplete": "one-time-code",
                "pattern": r"[0-9 ]{6,7}",
                "autofocus": True,
            }
        ),
    )

    def clean_code(self) -> str:
        code = "".join(self.cleaned_data["code"].split())
        if not (len(code) == 6 and code.isdigit()):
            raise forms.ValidationError("Enter the 6 digits shown by your authenticator app.")
        return code

"""Accounts, roles, permissions and sign-in security for the SpineWatch web application.

- :mod:`~spinewatch.accounts.roles`: the four roles (Django groups) and ``role_of(user)``.
- :mod:`~spinewatch.accounts.permissions`: THE one place where access checks live.
- :mod:`~spinewatch.accounts.totp`: TOTP two-factor enrolment and verification (replay-safe).
- :mod:`~spinewatch.accounts.tokens`: hashed API bearer tokens.
- :mod:`~spinewatch.accounts.users`: creating users (password validation) and assigning roles.

Import the sub-modules, not this package: it stays free of Django imports so that ``spinewatch``
start-up is light.
"""

__all__: list[str] = []

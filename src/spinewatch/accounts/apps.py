"""Django app configuration: signal handlers that keep roles and the second factor consistent."""

from __future__ import annotations

from django.apps import AppConfig

__all__ = ["AccountsConfig"]


class AccountsConfig(AppConfig):
    name = "spinewatch.accounts"
    label = "accounts"
    verbose_name = "SpineWatch accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.contrib.auth.signals import user_logged_in
        from django.db.models.signals import m2m_changed, post_migrate

        from spinewatch.accounts import roles, totp

        m2m_changed.connect(
            roles.refuse_second_role,
            sender=get_user_model().groups.through,
            dispatch_uid="spinewatch.accounts.refuse_second_role",
        )
        post_migrate.connect(
            roles.grant_admin_site_permissions,
            sender=self,
            dispatch_uid="spinewatch.accounts.grant_admin_site_permissions",
        )
        user_logged_in.connect(
            totp.forget_verification_on_login,
            dispatch_uid="spinewatch.accounts.forget_verification_on_login",
        )

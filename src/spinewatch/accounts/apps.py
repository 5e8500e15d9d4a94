"""Django app configuration: signal handlers that keep roles and the second factor consistent and
audit every change of an account."""

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
        from django.db.models.signals import (
            m2m_changed,
            post_delete,
            post_migrate,
            post_save,
            pre_save,
        )

        from spinewatch.accounts import events, roles, totp

        User = get_user_model()
        m2m_changed.connect(
            roles.refuse_second_role,
            sender=User.groups.through,
            dispatch_uid="spinewatch.accounts.refuse_second_role",
        )
        # every change of an account is audited, even one made around the services
        m2m_changed.connect(
            events.groups_changed,
            sender=User.groups.through,
            dispatch_uid="spinewatch.accounts.audit_groups",
        )
        pre_save.connect(
            events.remember_user_fields, sender=User, dispatch_uid="spinewatch.accounts.pre_save"
        )
        post_save.connect(events.user_saved, sender=User, dispatch_uid="spinewatch.accounts.saved")
        post_delete.connect(
            events.user_deleted, sender=User, dispatch_uid="spinewatch.accounts.deleted"
        )
        post_migrate.connect(  # after every app: the audit app's permission comes later
            roles.grant_admin_site_permissions,
            dispatch_uid="spinewatch.accounts.grant_admin_site_permissions",
        )
        user_logged_in.connect(
            totp.forget_verification_on_login,
            dispatch_uid="spinewatch.accounts.forget_verification_on_login",
        )

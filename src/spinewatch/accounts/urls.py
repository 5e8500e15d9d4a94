"""Routes of the accounts app; the project includes them as ``path("accounts/", include(...))``."""

from django.urls import path

from spinewatch.accounts import user_views, views

app_name = "accounts"

urlpatterns = [
    path("", views.account, name="account"),
    path("login/", views.AccountLoginView.as_view(), name="login"),
    path("logout/", views.AccountLogoutView.as_view(), name="logout"),
    path("two-factor/", views.totp_verify, name="totp_verify"),
    path("two-factor/set-up/", views.totp_enrol, name="totp_enrol"),
    path("users/", user_views.user_list, name="users"),
    path("users/new/", user_views.user_new, name="user_new"),
    path("users/<int:pk>/", user_views.user_detail, name="user"),
]

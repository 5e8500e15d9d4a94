"""API tokens: created once, stored as SHA-256 only, expired/revoked/inactive refused."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from django.test import RequestFactory
from django.utils import timezone

from spinewatch.accounts.errors import TokenError
from spinewatch.accounts.models import ApiToken
from spinewatch.accounts.tokens import authenticate_bearer, create_token, revoke_token

pytestmark = pytest.mark.django_db


def _request(header=None):
    extra = {"HTTP_AUTHORIZATION": header} if header is not None else {}
    return RequestFactory().get("/api/patients", **extra)


def test_created_token_is_random_and_stored_hashed(make_user):
    user = make_user("clinician")
    first, second = create_token(user, name="laptop"), create_token(user.username, days=None)
    assert first.token != second.token and first.token.startswith("swt_")
    assert len(first.token) == 4 + 43  # 32 random bytes, URL-safe base64
    record = ApiToken.objects.get(pk=first.record.pk)
    assert record.token_hash == hashlib.sha256(first.token.encode()).hexdigest()
    assert first.token not in {str(v) for v in ApiToken.objects.values_list(flat=True)}
    assert record.prefix == first.token[:8] and record.name == "laptop"
    assert record.expires_at - record.created_at == dt.timedelta(days=90)
    assert second.record.expires_at is None


def test_authenticate_bearer_and_last_used(make_user):
    user = make_user("researcher")
    new = create_token(user)
    assert authenticate_bearer(_request(f"Bearer {new.token}")) == user
    assert authenticate_bearer(_request(f"bearer   {new.token}  ")) == user
    assert ApiToken.objects.get(pk=new.record.pk).last_used_at is not None


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwdw==", "Bearer swt_wrong", "Bearer nope"],
)
def test_missing_or_bad_headers(make_user, header):
    create_token(make_user("clinician"))
    assert authenticate_bearer(_request(header)) is None


def test_expired_token_refused(make_user):
    user = make_user("clinician")
    past = timezone.now() - dt.timedelta(days=10)
    new = create_token(user, days=3, now=past)
    assert authenticate_bearer(_request(f"Bearer {new.token}")) is None
    assert (
        authenticate_bearer(_request(f"Bearer {new.token}"), now=past + dt.timedelta(days=2))
        == user
    )


def test_revoked_token_refused(make_user):
    user = make_user("clinician")
    new = create_token(user)
    revoke_token(new.record.pk)
    revoke_token(new.record.pk)  # idempotent
    assert authenticate_bearer(_request(f"Bearer {new.token}")) is None
    with pytest.raises(TokenError, match="999999"):
        revoke_token(999999)


def test_inactive_user_refused(make_user):
    user = make_user("clinician")
    new = create_token(user)
    user.is_active = False
    user.save()
    assert authenticate_bearer(_request(f"Bearer {new.token}")) is None
    with pytest.raises(TokenError, match="inactive"):
        create_token(user)


def test_bad_requests_refused(make_user):
    user = make_user("clinician")
    with pytest.raises(TokenError, match="'ghost' does not exist"):
        create_token("ghost")
    with pytest.raises(TokenError, match="lifetime 0"):
        create_token(user, days=0)
    with pytest.raises(TokenError, match="token name ''"):
        create_token(user, name="  ")

"""``spinewatch user ...`` and ``spinewatch token ...`` through the dispatcher."""

from __future__ import annotations

import io
import sys

import pytest
from django.contrib.auth import get_user_model

from spinewatch.accounts.models import ApiToken
from spinewatch.accounts.roles import Role, role_of
from spinewatch.accounts.tokens import authenticate_bearer, hash_token
from spinewatch.cli import main

pytestmark = pytest.mark.django_db
GOOD = "a long clinic passphrase 7"


@pytest.fixture(autouse=True)
def _data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path / "data"


def _stdin(monkeypatch, text):
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))


def test_user_add_reads_one_line_from_a_pipe(monkeypatch, capsys):
    _stdin(monkeypatch, GOOD + "\nignored second line\n")
    assert main(["user", "add", "cara", "--role", "case_manager"]) == 0
    assert capsys.readouterr().out.strip() == "created user cara (case_manager)"
    user = get_user_model().objects.get(username="cara")
    assert role_of(user) is Role.CASE_MANAGER
    assert user.check_password(GOOD) and GOOD not in user.password


def test_user_add_uses_getpass_on_a_terminal(monkeypatch, capsys):
    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stdin", Tty(""))
    answers = iter([GOOD, GOOD])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    assert main(["user", "add", "root", "--role", "admin"]) == 0
    assert role_of(get_user_model().objects.get(username="root")) is Role.ADMIN
    answers = iter([GOOD, GOOD + "x"])
    assert main(["user", "add", "root2", "--role", "admin"]) == 2
    assert "differ" in capsys.readouterr().err


@pytest.mark.parametrize(
    "password,message",
    [("short pw 1", "at least 12 characters"), ("password1234", "too common"), ("", "at least 12")],
)
def test_weak_password_exit_2_with_validator_message(monkeypatch, capsys, password, message):
    _stdin(monkeypatch, password + "\n")
    assert main(["user", "add", "cara", "--role", "clinician"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("spinewatch: error: password refused") and message in err
    assert len(err.strip().splitlines()) == 1
    assert not get_user_model().objects.filter(username="cara").exists()


def test_existing_username_exit_2(monkeypatch, capsys):
    _stdin(monkeypatch, GOOD + "\n")
    assert main(["user", "add", "cara", "--role", "clinician"]) == 0
    _stdin(monkeypatch, GOOD + "\n")
    assert main(["user", "add", "cara", "--role", "researcher"]) == 2
    assert "'cara' already exists" in capsys.readouterr().err
    assert role_of(get_user_model().objects.get(username="cara")) is Role.CLINICIAN


def test_unknown_role_is_a_usage_error(monkeypatch):
    _stdin(monkeypatch, GOOD + "\n")
    with pytest.raises(SystemExit) as exc:
        main(["user", "add", "cara", "--role", "nurse"])
    assert exc.value.code == 2


def test_list_set_role_unlock_reset(monkeypatch, capsys, make_user):
    make_user("clinician", username="cara")
    make_user("researcher", username="rex")
    assert main(["user", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "cara\tclinician\tactive\tno-2fa" in lines and "rex\tresearcher\tactive\tno-2fa" in lines
    assert main(["user", "set-role", "rex", "--role", "case_manager"]) == 0
    assert role_of(get_user_model().objects.get(username="rex")) is Role.CASE_MANAGER
    from axes.models import AccessAttempt

    AccessAttempt.objects.create(
        username="cara",
        ip_address="10.0.0.1",
        user_agent="t",
        failures_since_start=5,
        get_data="",
        post_data="",
        http_accept="",
        path_info="/accounts/login/",
    )
    capsys.readouterr()
    assert main(["user", "unlock", "cara"]) == 0
    assert "1 failed-attempt record" in capsys.readouterr().out
    assert not AccessAttempt.objects.filter(username="cara").exists()
    assert main(["user", "reset-2fa", "cara"]) == 0
    assert main(["user", "unlock", "ghost"]) == 2


def test_token_create_prints_the_token_once(capsys, make_user):
    user = make_user("clinician", username="cara")
    assert main(["token", "create", "cara", "--name", "scripts", "--days", "30"]) == 0
    out, err = capsys.readouterr()
    token = out.strip()
    assert token.startswith("swt_") and len(out.splitlines()) == 1
    assert "shown once" in err and token not in err
    record = ApiToken.objects.get(token_hash=hash_token(token))
    assert record.user == user and record.name == "scripts"
    from django.test import RequestFactory

    request = RequestFactory().get("/api/", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert authenticate_bearer(request) == user
    assert main(["token", "list", "cara"]) == 0
    listing = capsys.readouterr().out
    assert token not in listing and record.prefix in listing and "usable" in listing
    assert main(["token", "revoke", str(record.pk)]) == 0
    assert authenticate_bearer(request) is None
    assert main(["token", "create", "ghost"]) == 2
    assert main(["token", "create", "cara", "--days", "-1"]) == 2

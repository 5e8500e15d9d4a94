"""``spinewatch audit verify|show`` through the dispatcher."""

from __future__ import annotations

import getpass
import json

import pytest
from _audit_support import drop_triggers, execute
from django.db import connection

from spinewatch import cli
from spinewatch.audit.canonical import event_hash
from spinewatch.audit.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _with_audit_command(monkeypatch, settings, tmp_path):
    settings.DATA_DIR = tmp_path / "data"
    if "_audit" not in cli._COMMANDS:  # until the lead registers the command
        monkeypatch.setattr(cli, "_COMMANDS", (*cli._COMMANDS, "_audit"))


def test_verify_empty_trail(capsys):
    assert cli.main(["audit", "verify"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["audit trail intact: 0 events", "proven: nothing -- the trail is empty"]


def test_verify_intact_trail_prints_count_and_head(trail, capsys):
    # Issue 12 added the lines saying what was and was not proven (and the anchor noted).
    assert cli.main(["audit", "verify", "--no-anchor-file"]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[:2] == [
        "audit trail intact: 5 events",
        f"head: 5:{trail[-1].hash}",
    ]
    assert "NOT proven: that no event was removed from the end" in captured.out
    assert captured.err == ""
    assert cli.main(["audit", "verify", "--anchor", f"3:{trail[2].hash}"]) == 0
    assert "event 3 (given) is still there unchanged" in capsys.readouterr().out


def test_verify_names_the_first_bad_event(trail, capsys):
    drop_triggers(connection)
    execute(connection, "UPDATE audit_auditevent SET object_id = '2' WHERE seq = 4")
    assert cli.main(["audit", "verify"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "BROKEN at event 4" in captured.err and "edited" in captured.err
    assert "3 events intact" in captured.err
    assert "warning: the audit table is not append-only" in captured.err


def test_verify_warns_when_the_triggers_are_gone(trail, capsys):
    drop_triggers(connection)
    assert cli.main(["audit", "verify"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("audit trail intact: 5 events")
    assert "not append-only" in captured.err and "audit_auditevent_no_" in captured.err


def test_verify_with_a_foreign_anchor_fails(trail, capsys):
    assert cli.main(["audit", "verify", "--anchor", f"2:{'a' * 64}"]) == 1
    assert "BROKEN at event 2" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["audit", "verify", "--anchor", "2"],
        ["audit", "verify", "--anchor", "0:" + "a" * 64],
        ["audit", "verify", "--anchor", "2:xyz"],
        ["audit", "show", "--limit", "0"],
        ["audit", "show", "--limit", "many"],
        ["audit"],
    ],
)
def test_bad_arguments_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    assert "error" in capsys.readouterr().err


def test_show_lists_the_latest_events_and_is_itself_audited(trail, capsys):
    assert cli.main(["audit", "show", "--limit", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert (
        lines[0].split()[0] == "4" and "export" in lines[0] and "dr_house (clinician)" in lines[0]
    )
    assert lines[1].split()[0] == "5" and "login_failed" in lines[1]
    view = AuditEvent.objects.get(seq=6)
    assert (view.action, view.via, view.object_type) == ("view", "cli", "audit.auditevent")
    assert view.actor_username == getpass.getuser()
    assert view.detail == {"command": "audit show", "limit": 2, "shown": 2}


def test_show_for_one_patient(trail, capsys):
    assert cli.main(["audit", "show", "--patient", "SW-000001"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["1", "2"]
    assert all("patient SW-000001" in line for line in lines)
    assert "fields: analgesic_use, vas" in lines[1]
    assert AuditEvent.objects.get(seq=6).patient_study_id == "SW-000001"


def test_show_json_lines_carry_verifiable_documents(trail, capsys):
    assert cli.main(["audit", "show", "--json"]) == 0
    docs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [d["seq"] for d in docs] == [1, 2, 3, 4, 5]
    for doc in docs:
        digest = doc.pop("hash")
        assert event_hash(doc) == digest

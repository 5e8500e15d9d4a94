"""Issue 12: ``audit verify`` without an anchor called a tail-truncated trail intact.

Anchors are now kept outside the database by default (the day's first event writes the head to
the anchor file once committed; ``audit verify`` checks every anchor and notes the head it
verified), and the output says what was and was not proven.
"""

from __future__ import annotations

import datetime as dt

import pytest
from _audit_support import drop_triggers, execute
from django.db import connection
from django.utils import timezone

from spinewatch import cli
from spinewatch.audit import trail as trail_module
from spinewatch.audit.anchor import read_anchors
from spinewatch.audit.trail import record

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path / "data"


def _event(n: int) -> None:
    record(
        actor="dr_anchor",
        action="update",
        object_type="registry.patient",
        object_id=n,
        changes={"n": [n - 1, n]},
        via="web",
    )


def _events(capture, count: int, *, start: int = 1) -> None:
    """``count`` events, each committed (the on-commit callbacks run), as in production."""
    for n in range(start, start + count):
        with capture(execute=True):
            _event(n)


def _next_day(monkeypatch, days: int = 1) -> None:
    later = timezone.now() + dt.timedelta(days=days)
    monkeypatch.setattr(trail_module.timezone, "now", lambda: later)


def test_the_days_first_event_writes_the_head_outside_the_database(
    django_capture_on_commit_callbacks, monkeypatch, _own_audit_anchor_file
):
    _events(django_capture_on_commit_callbacks, 3)
    anchors, problems = read_anchors(_own_audit_anchor_file)
    assert problems == [] and [a.seq for a in anchors] == [1]
    first = anchors[0].hash
    _next_day(monkeypatch)
    _events(django_capture_on_commit_callbacks, 2, start=4)
    anchors, _ = read_anchors(_own_audit_anchor_file)
    assert [a.seq for a in anchors] == [1, 4]
    assert all(a.first == first for a in anchors)
    assert oct(_own_audit_anchor_file.stat().st_mode & 0o777) == "0o600"


def test_a_rolled_back_event_writes_no_anchor(django_capture_on_commit_callbacks,
                                               _own_audit_anchor_file):  # fmt: skip
    with django_capture_on_commit_callbacks(execute=False):
        _event(1)  # its transaction never commits: no callback runs
    assert read_anchors(_own_audit_anchor_file) == ([], [])


def test_a_tail_truncated_trail_is_no_longer_called_intact(
    django_capture_on_commit_callbacks, monkeypatch, capsys
):
    _events(django_capture_on_commit_callbacks, 3)  # anchor: event 1
    _next_day(monkeypatch)
    _events(django_capture_on_commit_callbacks, 3, start=4)  # anchor: event 4
    drop_triggers(connection)
    execute(connection, "DELETE FROM audit_auditevent WHERE seq >= 4")  # cut the tail
    assert cli.main(["audit", "verify"]) == 1
    err = capsys.readouterr().err
    assert "BROKEN at event 4" in err and "anchor event 4 is missing" in err
    assert "events removed from the end" in err


def test_verify_notes_the_head_and_says_what_is_and_is_not_proven(
    django_capture_on_commit_callbacks, capsys, _own_audit_anchor_file
):
    _events(django_capture_on_commit_callbacks, 5)  # anchor: event 1 only (same day)
    assert cli.main(["audit", "verify"]) == 0
    out = capsys.readouterr().out
    assert "proven by the anchor" in out and "event 1 (noted " in out
    assert "NOT proven: that no event after event 1 was removed from the end (4 event(s)" in out
    assert "NOT proven: that the database and the anchor file were not both rewritten" in out
    assert f"anchor noted: event 5 in {_own_audit_anchor_file}" in out
    assert [a.seq for a in read_anchors(_own_audit_anchor_file)[0]] == [1, 5]
    # the next run is anchored at the head: nothing newer is unproven; a cut is now seen
    assert cli.main(["audit", "verify"]) == 0
    assert "after event" not in capsys.readouterr().out
    drop_triggers(connection)
    execute(connection, "DELETE FROM audit_auditevent WHERE seq = 5")
    assert cli.main(["audit", "verify"]) == 1
    assert "anchor event 5 is missing" in capsys.readouterr().err


def test_a_trail_rewritten_from_its_start_matches_no_anchor(
    django_capture_on_commit_callbacks, capsys
):
    from spinewatch.audit.models import AuditEvent

    _events(django_capture_on_commit_callbacks, 3)
    drop_triggers(connection)
    # an attacker re-hashes the whole chain after editing event 1
    prev = "0" * 64
    execute(connection, "UPDATE audit_auditevent SET object_id = '99' WHERE seq = 1")
    for event in AuditEvent.objects.order_by("seq"):
        event.prev_hash = prev
        digest = event.compute_hash()
        execute(
            connection,
            "UPDATE audit_auditevent SET prev_hash = %s, hash = %s WHERE seq = %s",
            [prev, digest, event.seq],
        )
        prev = digest
    assert cli.main(["audit", "verify", "--no-anchor-file"]) == 0  # the chain alone: "intact"
    capsys.readouterr()
    assert cli.main(["audit", "verify"]) == 1
    assert "none of the 1 anchor(s)" in capsys.readouterr().err


def test_without_anchoring_the_output_says_nothing_protects_the_end(monkeypatch, capsys):
    monkeypatch.setenv("SPINEWATCH_AUDIT_ANCHOR_FILE", "off")
    _event(1)
    assert cli.main(["audit", "verify"]) == 0
    out = capsys.readouterr().out
    assert "NOT proven: that no event was removed from the end" in out
    assert "anchoring is off" in out

"""record_follow_up: VAS through the core, dates, window warnings, locking, who entered it."""

from __future__ import annotations

import datetime as dt

import pytest

from spinewatch.registry import models as m
from spinewatch.registry.services import (
    NotFoundError,
    RegistryError,
    StaleEditError,
    find_follow_up,
    record_follow_up,
)
from spinewatch.registry.services._base import today

pytestmark = pytest.mark.django_db

D0 = dt.date(2024, 3, 1)


def test_record_in_window(procedure, staff):
    fu = find_follow_up(procedure=procedure, timepoint="1m")
    result = record_follow_up(
        follow_up=fu,
        expected_version=1,
        completed_on=D0 + dt.timedelta(days=33),
        vas="2.5",
        analgesic_use="weak_opioid",
        entered_by=staff,
    )
    assert result.warnings == ()
    row = m.FollowUp.objects.get(pk=fu.pk)
    assert (row.vas, row.analgesic_use, row.entered_by, row.entered_via, row.version) == (
        2.5,
        "weak_opioid",
        staff,
        "staff",
        2,
    )
    assert row.in_window is True


def test_out_of_window_is_accepted_with_a_warning(procedure):
    fu = find_follow_up(procedure=procedure, timepoint="1m")
    late = fu.window_end + dt.timedelta(days=1)
    result = record_follow_up(
        follow_up=fu.pk, expected_version=1, completed_on=late, vas=3, entered_via="portal"
    )
    assert len(result.warnings) == 1
    assert late.isoformat() in result.warnings[0] and "outside its window" in result.warnings[0]
    assert result.follow_up.in_window is False
    # the last day of the window is inside it
    fu3 = find_follow_up(procedure=procedure, timepoint="3m")
    assert (
        record_follow_up(
            follow_up=fu3, expected_version=1, completed_on=fu3.window_end, vas=1
        ).warnings
        == ()
    )


def test_baseline_may_precede_the_procedure(procedure):
    fu = find_follow_up(procedure=procedure, timepoint="pre")
    result = record_follow_up(
        follow_up=fu, expected_version=1, completed_on=D0 - dt.timedelta(days=10), vas=8
    )
    assert result.warnings == ()


def test_postoperative_visit_before_procedure_refused(procedure):
    fu = find_follow_up(procedure=procedure, timepoint="3d")
    with pytest.raises(RegistryError, match="cannot precede the procedure"):
        record_follow_up(
            follow_up=fu, expected_version=1, completed_on=D0 - dt.timedelta(days=1), vas=2
        )


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"vas": 11}, "11"),
        ({"vas": -1}, "-1"),
        ({"vas": "abc"}, "abc"),
        ({"vas": float("nan")}, "nan"),
        ({"vas": True}, "True"),
        ({"completed_on": "2024-04-01"}, "completed_on"),
        ({"completed_on": dt.datetime(2024, 4, 1, 12, 0)}, "completed_on"),
        ({"analgesic_use": "morphine"}, "morphine"),
        ({"entered_via": "fax"}, "fax"),
        ({"entered_by": "nurse"}, "entered_by"),
        ({"expected_version": 0}, "expected_version"),
    ],
)
def test_invalid_input_refused_and_visit_unchanged(procedure, kw, match):
    fu = find_follow_up(procedure=procedure, timepoint="1m")
    args = {"follow_up": fu, "expected_version": 1, "completed_on": fu.due_date, "vas": 2}
    args.update(kw)
    with pytest.raises(RegistryError, match=match):
        record_follow_up(**args)
    row = m.FollowUp.objects.get(pk=fu.pk)
    assert (row.vas, row.completed_on, row.version) == (None, None, 1)


def test_future_completion_refused(procedure):
    fu = find_follow_up(procedure=procedure, timepoint="12m")
    with pytest.raises(RegistryError, match="future"):
        record_follow_up(
            follow_up=fu, expected_version=1, completed_on=today() + dt.timedelta(days=1), vas=1
        )


def test_stale_edit_refused(procedure):
    fu = find_follow_up(procedure=procedure, timepoint="3d")
    record_follow_up(follow_up=fu, expected_version=1, completed_on=fu.due_date, vas=2)
    with pytest.raises(StaleEditError) as info:
        record_follow_up(follow_up=fu, expected_version=1, completed_on=fu.due_date, vas=9)
    assert (info.value.current_version, info.value.expected_version) == (2, 1)
    assert m.FollowUp.objects.get(pk=fu.pk).vas == 2
    # a correction based on the current version succeeds
    fixed = record_follow_up(follow_up=fu, expected_version=2, completed_on=fu.due_date, vas=2.5)
    assert (fixed.follow_up.vas, fixed.follow_up.version) == (2.5, 3)


def test_visit_without_vas(procedure):
    fu = find_follow_up(procedure=procedure, timepoint="6m")
    r = record_follow_up(follow_up=fu, expected_version=1, completed_on=fu.due_date, vas=None)
    assert r.follow_up.completed and r.follow_up.vas is None


def test_unknown_timepoint_names_the_valid_ones(procedure):
    with pytest.raises(NotFoundError, match=r"'2w'.*pre, 3d, 1m, 3m, 6m, 12m"):
        find_follow_up(procedure=procedure, timepoint="2w")

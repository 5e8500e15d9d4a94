"""Follow-up protocol: default table, schedule, window edges, validation, dict round trip."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import pytest

from spinewatch.core.protocol import (
    DEFAULT_PROTOCOL,
    FollowUpProtocol,
    ProtocolError,
    ScheduledVisit,
    TimePoint,
)

# The brief's table: code, offset, before, after.
DEFAULT_TABLE = [
    ("pre", 0, 30, 0),
    ("3d", 3, 1, 4),
    ("1m", 30, 7, 7),
    ("3m", 91, 14, 14),
    ("6m", 182, 30, 30),
    ("12m", 365, 45, 45),
]
PROCEDURE = date(2024, 2, 20)  # the 1 m window crosses 29 February


def test_default_protocol_table() -> None:
    p = DEFAULT_PROTOCOL
    assert p.name == "standard"
    assert p == FollowUpProtocol.default()
    assert [
        (tp.code, tp.offset_days, tp.window_before_days, tp.window_after_days)
        for tp in p.timepoints
    ] == DEFAULT_TABLE
    assert p.codes == ("pre", "3d", "1m", "3m", "6m", "12m")
    assert p.baseline.code == "pre" and p.baseline.is_baseline
    assert [tp.code for tp in p.postoperative] == ["3d", "1m", "3m", "6m", "12m"]
    assert not any(tp.is_baseline for tp in p.postoperative)
    assert [tp.label for tp in p.timepoints][:3] == ["Pre-operative", "3 days", "1 month"]
    assert [p.order(code) for code in p.codes] == list(range(6))


def test_timepoint_lookup_and_error() -> None:
    assert DEFAULT_PROTOCOL.timepoint(" 3m ").offset_days == 91
    assert DEFAULT_PROTOCOL.timepoint(DEFAULT_PROTOCOL.baseline) is DEFAULT_PROTOCOL.baseline
    for bad in ("2m", "3M", "", "pre-op"):
        with pytest.raises(ProtocolError) as info:
            DEFAULT_PROTOCOL.timepoint(bad)
        assert repr(bad) in str(info.value)
        assert "pre, 3d, 1m, 3m, 6m, 12m" in str(info.value)
    with pytest.raises(ProtocolError, match="'24m'"):
        DEFAULT_PROTOCOL.order("24m")


def test_schedule() -> None:
    visits = DEFAULT_PROTOCOL.schedule(PROCEDURE)
    assert [v.code for v in visits] == list(DEFAULT_PROTOCOL.codes)
    for visit, (_, offset, before, after) in zip(visits, DEFAULT_TABLE, strict=True):
        assert isinstance(visit, ScheduledVisit)
        assert visit.due == PROCEDURE + timedelta(days=offset)
        assert visit.window_start == visit.due - timedelta(days=before)
        assert visit.window_end == visit.due + timedelta(days=after)
        assert visit.contains(visit.due) and visit.contains(visit.window_start)
        assert not visit.contains(visit.window_end + timedelta(days=1))
    assert visits[0].due == PROCEDURE and visits[0].window_end == PROCEDURE
    assert visits[-1].due == date(2025, 2, 19)  # 365 days after a date in a leap year
    with pytest.raises(ProtocolError, match="'2024-02-20'"):
        DEFAULT_PROTOCOL.schedule("2024-02-20")  # type: ignore[arg-type]


def _window_edges() -> list[tuple[int, str | None]]:
    cases: list[tuple[int, str | None]] = []
    for code, offset, before, after in DEFAULT_TABLE:
        cases += [
            (offset - before - 1, None),
            (offset - before, code),
            (offset, code),
            (offset + after, code),
            (offset + after + 1, None),
        ]
    # Days just outside one window but inside the next are that next one.
    fixed = []
    for day, code in cases:
        if code is None:
            code = next(
                (c for c, o, b, a in DEFAULT_TABLE if o - b <= day <= o + a),
                None,
            )
        fixed.append((day, code))
    return fixed


@pytest.mark.parametrize(("day", "code"), _window_edges())
def test_timepoint_for_window_edges(day: int, code: str | None) -> None:
    visit = PROCEDURE + timedelta(days=day)
    found = DEFAULT_PROTOCOL.timepoint_for(PROCEDURE, visit)
    assert (found.code if found else None) == code


def test_window_edges_cover_known_gaps() -> None:
    # Day 1 (between pre and 3d), day 38 (between 1m and 3m), day 411 (after 12m).
    for day in (1, 8, 22, 38, 76, 106, 151, 213, 319, 411, -31):
        assert DEFAULT_PROTOCOL.timepoint_for(PROCEDURE, PROCEDURE + timedelta(days=day)) is None
    with pytest.raises(ProtocolError, match="visit date"):
        DEFAULT_PROTOCOL.timepoint_for(PROCEDURE, "2024-03-01")  # type: ignore[arg-type]


def test_dict_round_trip_is_json_able() -> None:
    data = DEFAULT_PROTOCOL.to_dict()
    text = json.dumps(data)
    again = FollowUpProtocol.from_dict(json.loads(text))
    assert again == DEFAULT_PROTOCOL
    assert data["timepoints"][0] == {
        "code": "pre",
        "label": "Pre-operative",
        "offset_days": 0,
        "window_before_days": 30,
        "window_after_days": 0,
        "baseline": True,
    }


def test_custom_protocol_from_dict() -> None:
    custom = FollowUpProtocol.from_dict(
        {
            "name": "registry 6w",
            "timepoints": [
                {"code": "pre", "label": "Baseline", "offset_days": 0, "window_before_days": 14,
                 "window_after_days": 0, "baseline": True},
                {"code": "6w", "label": "6 weeks", "offset_days": 42, "window_before_days": 7,
                 "window_after_days": 7},
                {"code": "24m", "label": "24 months", "offset_days": 730,
                 "window_before_days": 60, "window_after_days": 60},
            ],
        }
    )  # fmt: skip
    assert custom.codes == ("pre", "6w", "24m")
    assert custom.timepoint_for(date(2024, 1, 1), date(2024, 2, 15)).code == "6w"  # type: ignore[union-attr]


def _tp(
    code: str, offset: int, before: int = 0, after: int = 0, baseline: bool = False
) -> TimePoint:
    return TimePoint(code, code.upper(), offset, before, after, baseline=baseline)


PRE = _tp("pre", 0, 30, 0, baseline=True)


@pytest.mark.parametrize(
    ("timepoints", "match"),
    [
        ((), "no time points"),
        ((_tp("1m", 30),), "0 baseline"),
        ((PRE, _tp("base2", 0, baseline=True)), "2 baseline"),
        ((_tp("1m", 30), PRE), "not the first"),
        ((PRE, _tp("1m", 30), _tp("1m", 60)), "'1m' appears twice"),
        ((PRE, _tp("3m", 90), _tp("1m", 30)), "not after '3m'"),
        ((PRE, _tp("1m", 30), _tp("1m2", 30)), "strictly increasing"),
        ((PRE, _tp("1m", 30, 0, 10), _tp("6w", 40, 0, 0)), "overlaps the window of '1m'"),
        ((PRE, _tp("3d", 3, 3, 0)), "overlaps the window of 'pre'"),
        ((PRE, "1m"), "not a TimePoint"),
    ],
)
def test_protocol_validation(timepoints: tuple[Any, ...], match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        FollowUpProtocol("p", timepoints)


def test_adjacent_but_not_overlapping_windows_are_fine() -> None:
    p = FollowUpProtocol("p", (PRE, _tp("1m", 30, 0, 10), _tp("6w", 42, 1, 0)))
    assert p.timepoint_for(date(2024, 1, 1), date(2024, 1, 1) + timedelta(days=40)).code == "1m"  # type: ignore[union-attr]
    assert p.timepoint_for(date(2024, 1, 1), date(2024, 1, 1) + timedelta(days=41)).code == "6w"  # type: ignore[union-attr]


def test_list_of_timepoints_is_converted_to_tuple() -> None:
    p = FollowUpProtocol("p", [PRE, _tp("1m", 30)])  # type: ignore[arg-type]
    assert isinstance(p.timepoints, tuple)
    with pytest.raises(ProtocolError, match="name"):
        FollowUpProtocol(" ", (PRE,))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"code": ""}, "code ''"),
        ({"code": "3 m"}, "code '3 m'"),
        ({"label": " "}, "label ' '"),
        ({"offset_days": 1.5}, "offset_days 1.5"),
        ({"offset_days": 0}, "post-operative"),
        ({"offset_days": -3}, "post-operative"),
        ({"window_before_days": -1}, "window_before_days -1"),
        ({"window_after_days": True}, "window_after_days True"),
        ({"baseline": "yes"}, "baseline 'yes'"),
        ({"baseline": True}, "offset_days 30 is invalid for the baseline"),
    ],
)
def test_timepoint_validation(kwargs: dict[str, Any], match: str) -> None:
    fields: dict[str, Any] = {
        "code": "1m",
        "label": "1 month",
        "offset_days": 30,
        "window_before_days": 7,
        "window_after_days": 7,
    }
    fields.update(kwargs)
    with pytest.raises(ProtocolError, match=match):
        TimePoint(**fields)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ([], "not a mapping"),
        ({"name": "x"}, "lacks 'timepoints'"),
        ({"timepoints": []}, "lacks 'name'"),
        ({"name": "x", "timepoints": [], "version": 2}, "unknown keys \\['version'\\]"),
        ({"name": "x", "timepoints": "pre"}, "not a list"),
        ({"name": "x", "timepoints": [3]}, r"timepoints\[0\] 3 is not a mapping"),
        ({"name": "x", "timepoints": [{"code": "pre"}]}, r"timepoints\[0\] lacks"),
        (
            {"name": "x", "timepoints": [{**PRE.to_dict(), "offset": 1}]},
            r"timepoints\[0\] has unknown keys \['offset'\]",
        ),
        (
            {"name": "x", "timepoints": [{**PRE.to_dict(), "window_before_days": "30"}]},
            "window_before_days '30'",
        ),
    ],
)
def test_from_dict_rejects(data: Any, match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        FollowUpProtocol.from_dict(data)


def test_integral_days_are_stored_as_int() -> None:
    np = pytest.importorskip("numpy")
    tp = TimePoint("1m", "1 month", np.int64(30), np.int32(7), 7)
    assert type(tp.offset_days) is int and type(tp.window_before_days) is int
    assert json.dumps(tp.to_dict())

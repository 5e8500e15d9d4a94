"""record_procedure / update_procedure: rules, children, the follow-up schedule, locking."""

from __future__ import annotations

import datetime as dt

import pytest

from spinewatch.core.leakage import CementLeakage
from spinewatch.core.procedures import TreatedLevel
from spinewatch.core.protocol import FollowUpProtocol, TimePoint
from spinewatch.registry import models as m
from spinewatch.registry.services import (
    ComplicationRecord,
    LeakageRecord,
    RegistryError,
    StaleEditError,
    procedure_protocol,
    record_procedure,
    update_procedure,
)
from spinewatch.registry.services._base import today

pytestmark = pytest.mark.django_db

D0 = dt.date(2024, 3, 1)


def _record(patient, **kw):
    args = {
        "patient": patient,
        "performed_on": D0,
        "procedure_type": "vertebroplasty",
        "guidance": "fluoroscopy",
        "anaesthesia": "local",
        "day_case": True,
        "levels": [TreatedLevel("L1", "transpedicular", 11, 4.5)],
        "operator": "Dr Who",
    }
    args.update(kw)
    return record_procedure(**args)


def test_schedule_follows_the_default_protocol(procedure):
    rows = {f.timepoint: f for f in procedure.follow_ups.all()}
    assert list(rows) == ["pre", "3d", "1m", "3m", "6m", "12m"]
    # offsets and windows as the protocol defines them (days from the procedure date)
    expected = {
        "pre": (0, 30, 0),
        "3d": (3, 1, 4),
        "1m": (30, 7, 7),
        "3m": (91, 14, 14),
        "6m": (182, 30, 30),
        "12m": (365, 45, 45),
    }
    for code, (offset, before, after) in expected.items():
        due = D0 + dt.timedelta(days=offset)
        fu = rows[code]
        assert (fu.due_date, fu.window_start, fu.window_end) == (
            due,
            due - dt.timedelta(days=before),
            due + dt.timedelta(days=after),
        ), code
        assert fu.completed_on is None and fu.vas is None and fu.version == 1
    assert rows["12m"].due_date == dt.date(2025, 3, 1)  # 2024 is a leap year
    assert procedure_protocol(procedure).codes == ("pre", "3d", "1m", "3m", "6m", "12m")


def test_custom_protocol_is_stored_with_the_procedure(patient):
    protocol = FollowUpProtocol(
        name="short",
        timepoints=(
            TimePoint("pre", "Pre-op", 0, 10, 0, baseline=True),
            TimePoint("6w", "6 weeks", 42, 7, 7),
        ),
    )
    p = _record(patient, protocol=protocol)
    assert list(p.follow_ups.values_list("timepoint", "due_date")) == [
        ("pre", D0),
        ("6w", D0 + dt.timedelta(days=42)),
    ]
    assert m.Procedure.objects.get(pk=p.pk).protocol == protocol.to_dict()


def test_levels_leakages_complications_stored(patient):
    p = _record(
        patient,
        levels=[
            TreatedLevel("T12", "transpedicular", 11, 3.5),
            TreatedLevel("L1", "parapedicular", 13, 4.0),
        ],
        leakages=[
            LeakageRecord(CementLeakage("S", "paravertebral", False), "L1"),
            CementLeakage("B", "venous", True),
        ],
        complications=[ComplicationRecord("B", "transient pain", D0 + dt.timedelta(days=1))],
        operator_user=None,
    )
    levels = {t.level: t for t in p.levels.all()}
    assert set(levels) == {"T12", "L1"}
    assert (levels["L1"].approach, levels["L1"].needle_gauge, levels["L1"].cement_volume_ml) == (
        "parapedicular",
        13,
        4.0,
    )
    leaks = list(p.leakages.order_by("pk"))
    assert (leaks[0].leakage_type, leaks[0].site, leaks[0].treated_level.level) == (
        "S",
        "paravertebral",
        "L1",
    )
    assert leaks[1].treated_level is None and leaks[1].symptomatic is True
    assert p.complications.get().sir_class == "B"


def test_ablation_and_cementoplasty_and_pldd(patient):
    a = _record(
        patient,
        procedure_type="ablation_vertebroplasty",
        levels=[TreatedLevel("L2", "transpedicular", 11, 3.0, "radiofrequency", 20.0, 300.0)],
    )
    assert a.levels.get().ablation_modality == "radiofrequency"
    c = _record(patient, procedure_type="cementoplasty", levels=[], cementoplasty_site="acetabulum")
    assert c.cementoplasty_site == "acetabulum"
    d = _record(patient, procedure_type="laser_disc_decompression", levels=[], disc_level="l4-5")
    assert d.disc_level == "L4-L5"


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"levels": []}, "at least one"),
        ({"procedure_type": "cementoplasty"}, "site"),
        ({"procedure_type": "cementoplasty", "levels": [], "cementoplasty_site": "moon"}, "moon"),
        ({"procedure_type": "ablation_vertebroplasty"}, "ablation"),
        ({"cementoplasty_site": "pelvis"}, "site"),
        ({"procedure_type": "laser_disc_decompression", "levels": []}, "disc"),
        ({"procedure_type": "lobotomy"}, "lobotomy"),
        ({"guidance": "ultrasound"}, "ultrasound"),
        ({"anaesthesia": "hypnosis"}, "hypnosis"),
        ({"day_case": "yes"}, "day_case"),
        ({"operator": ""}, "operator"),
        ({"performed_on": "2024-03-01"}, "performed_on"),
        ({"levels": ["L1"]}, "TreatedLevel"),
        (
            {"levels": [TreatedLevel("L1", "transpedicular", 11, 4.0)] * 2},
            "twice",
        ),
        ({"leakages": [LeakageRecord(CementLeakage("C", "epidural", False), "T9")]}, "T9"),
        ({"leakages": ["B"]}, "CementLeakage"),
        ({"complications": [ComplicationRecord("Z")]}, "'Z'"),
        ({"complications": [ComplicationRecord("A", "", dt.date(2024, 2, 1))]}, "before"),
        ({"protocol": {"name": "x"}}, "protocol"),
    ],
)
def test_invalid_procedures_refused_and_nothing_written(patient, kw, match):
    with pytest.raises(RegistryError, match=match):
        _record(patient, **kw)
    assert not m.Procedure.objects.exists()
    assert not m.FollowUp.objects.exists()


def test_future_date_refused(patient):
    with pytest.raises(RegistryError, match="future"):
        _record(patient, performed_on=today() + dt.timedelta(days=1))


def test_operator_name_from_user(patient, staff):
    p = _record(patient, operator="", operator_user=staff)
    assert (p.operator, p.operator_user) == ("Ada Nightingale", staff)


def test_update_moves_schedule_and_keeps_completed_values(procedure):
    from spinewatch.registry.services import find_follow_up, record_follow_up

    pre = find_follow_up(procedure=procedure, timepoint="pre")
    record_follow_up(follow_up=pre, expected_version=1, completed_on=D0, vas=8)
    new_date = D0 + dt.timedelta(days=7)
    p = update_procedure(
        procedure=procedure, expected_version=1, performed_on=new_date, notes="moved"
    )
    assert (p.version, p.performed_on, p.notes) == (2, new_date, "moved")
    rows = {f.timepoint: f for f in p.follow_ups.all()}
    assert rows["3m"].due_date == new_date + dt.timedelta(days=91)
    assert (rows["pre"].completed_on, rows["pre"].vas) == (D0, 8.0)
    assert rows["3m"].version == 2  # rescheduling is an edit of the visit too


def test_update_replaces_levels_and_relinks_leakages(patient):
    p = _record(
        patient,
        levels=[
            TreatedLevel("L1", "transpedicular", 11, 4.5),
            TreatedLevel("L2", "transpedicular", 11, 3),
        ],
        leakages=[LeakageRecord(CementLeakage("S", "foraminal", False), "L2")],
    )
    p = update_procedure(
        procedure=p,
        expected_version=1,
        levels=[
            TreatedLevel("L2", "parapedicular", 13, 5.0),
            TreatedLevel("L3", "transpedicular", 11, 2),
        ],
    )
    assert sorted(p.levels.values_list("level", flat=True)) == ["L2", "L3"]
    leak = p.leakages.get()
    assert leak.treated_level.level == "L2" and leak.treated_level.approach == "parapedicular"
    with pytest.raises(RegistryError, match="L2"):  # the leakage's level would vanish
        update_procedure(
            procedure=p, expected_version=2, levels=[TreatedLevel("L3", "transpedicular", 11, 2)]
        )
    assert m.Procedure.objects.get(pk=p.pk).version == 2
    assert p.levels.count() == 2


def test_update_complications_and_stale_edit(procedure):
    p = update_procedure(
        procedure=procedure, expected_version=1, complications=[ComplicationRecord("C", "admitted")]
    )
    assert p.complications.get().sir_class == "C"
    with pytest.raises(StaleEditError, match="is at version 2, your edit was based on version 1"):
        update_procedure(procedure=procedure, expected_version=1, guidance="ct")
    assert m.Procedure.objects.get(pk=procedure.pk).guidance == "fluoroscopy"
    p = update_procedure(procedure=procedure, expected_version=2, guidance="CT-fluoroscopy")
    assert p.guidance == "ct_fluoroscopy"


def test_update_refuses_inconsistent_type(procedure):
    with pytest.raises(RegistryError, match="site"):
        update_procedure(procedure=procedure, expected_version=1, procedure_type="cementoplasty")
    assert m.Procedure.objects.get(pk=procedure.pk).procedure_type == "vertebroplasty"

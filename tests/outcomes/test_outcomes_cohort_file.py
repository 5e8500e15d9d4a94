"""read_cohort_csv: the valid file, and every way a cohort file can be wrong."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pandas as pd
import pytest

from spinewatch.core.errors import InputError
from spinewatch.core.protocol import DEFAULT_PROTOCOL, FollowUpProtocol, TimePoint
from spinewatch.outcomes.cohort_file import CohortFileError, read_cohort_csv

GOOD = (
    "patient_id,timepoint,vas,procedure_date,diagnosis\n"
    "P01,pre,7.5,2024-03-01,myeloma\n"
    "P01,3d,2,2024-03-01,myeloma\n"
    "P02,pre,8,2024-03-05,metastasis\n"
    "P02,1m,1.5,,\n"
    "P01,12m,0.0,2024-03-01,myeloma\n"
)


def test_valid_file_columns_types_lines_and_extras(write_csv):
    frame = read_cohort_csv(write_csv("cohort.csv", GOOD))
    assert list(frame.columns) == [
        "patient_id",
        "timepoint",
        "vas",
        "procedure_date",
        "diagnosis",
        "line",
    ]
    assert frame["patient_id"].tolist() == ["P01", "P01", "P02", "P02", "P01"]
    assert frame["timepoint"].tolist() == ["pre", "3d", "pre", "1m", "12m"]
    assert isinstance(frame["timepoint"].dtype, pd.CategoricalDtype)
    assert list(frame["timepoint"].cat.categories) == list(DEFAULT_PROTOCOL.codes)
    assert frame["timepoint"].cat.ordered
    assert frame["vas"].dtype == "float64"
    assert frame["vas"].tolist() == [7.5, 2.0, 8.0, 1.5, 0.0]
    assert frame["line"].tolist() == [2, 3, 4, 5, 6]
    assert frame["procedure_date"].tolist() == [
        dt.date(2024, 3, 1),
        dt.date(2024, 3, 1),
        dt.date(2024, 3, 5),
        None,
        dt.date(2024, 3, 1),
    ]
    assert frame["diagnosis"].iloc[0] == "myeloma"
    assert pd.isna(frame["diagnosis"].iloc[3])
    # categorical order is protocol order, not file order
    assert frame.sort_values("timepoint")["timepoint"].tolist() == ["pre", "pre", "3d", "1m", "12m"]


def test_bom_crlf_blank_lines_spaces_and_case_are_tolerated(write_csv):
    text = "\ufeffpatient_id , timepoint,vas\r\n\r\n P1 , PRE , 7 \r\n,,\r\nP1,3D,3\r\n"
    frame = read_cohort_csv(write_csv("bom.csv", text.encode("utf-8")))
    assert frame["patient_id"].tolist() == ["P1", "P1"]
    assert frame["timepoint"].tolist() == ["pre", "3d"]
    assert frame["vas"].tolist() == [7.0, 3.0]
    assert frame["line"].tolist() == [3, 5]


def test_line_numbers_stay_exact_after_a_quoted_multiline_field(write_csv):
    text = 'patient_id,timepoint,vas,comment\nP1,pre,7,"two\nlines"\nP1,3d,x,ok\n'
    with pytest.raises(CohortFileError) as info:
        read_cohort_csv(write_csv("multi.csv", text))
    assert ", line 4, " in str(info.value)


def test_custom_protocol_codes(write_csv):
    protocol = FollowUpProtocol(
        name="short",
        timepoints=(
            TimePoint("pre", "Pre-operative", 0, 30, 0, baseline=True),
            TimePoint("2w", "2 weeks", 14, 3, 3),
        ),
    )
    path = write_csv("c.csv", "patient_id,timepoint,vas\nA,pre,5\nA,2w,1\n")
    frame = read_cohort_csv(path, protocol=protocol)
    assert list(frame["timepoint"].cat.categories) == ["pre", "2w"]
    with pytest.raises(CohortFileError, match="expected one of pre, 3d, 1m, 3m, 6m, 12m"):
        read_cohort_csv(path)


def _message(path: Path) -> str:
    with pytest.raises(CohortFileError) as info:
        read_cohort_csv(path)
    assert isinstance(info.value, InputError)
    assert isinstance(info.value, ValueError)
    return str(info.value)


def test_unknown_timepoint_message_exactly_as_specified(write_csv):
    lines = ["patient_id,timepoint,vas"] + [f"P{i},pre,7" for i in range(5)] + ["P9,2w,3"]
    path = write_csv("cohort.csv", "\n".join(lines) + "\n")
    assert _message(path) == (
        f"{path}, line 7, column \"timepoint\": unknown time point '2w'; "
        "expected one of pre, 3d, 1m, 3m, 6m, 12m"
    )


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("abc", "'abc'"),
        ("11", "'11'"),
        ("10.01", "'10.01'"),
        ("-1", "'-1'"),
        ("nan", "'nan'"),
        ("7,5", None),  # unquoted decimal comma = one field too many
        ('"7,5"', "'7,5'"),
    ],
)
def test_bad_vas_names_file_line_column_value(write_csv, raw, fragment):
    path = write_csv("vas.csv", f"patient_id,timepoint,vas\nP1,pre,8\nP1,3d,{raw}\n")
    message = _message(path)
    if fragment is None:
        assert message.startswith(f"{path}, line 3: 4 fields")
        assert "expected 3 (patient_id, timepoint, vas)" in message
    else:
        assert message.startswith(f'{path}, line 3, column "vas": ')
        assert fragment in message
        assert "expected a number from 0 to 10" in message


def test_empty_vas(write_csv):
    path = write_csv("v.csv", "patient_id,timepoint,vas\nP1,pre,\n")
    message = _message(path)
    assert message.startswith(f'{path}, line 2, column "vas": empty VAS')
    assert "expected a number from 0 to 10" in message


def test_empty_patient_id(write_csv):
    path = write_csv("p.csv", "patient_id,timepoint,vas\nP1,pre,8\n  ,3d,2\n")
    assert _message(path).startswith(f'{path}, line 3, column "patient_id": empty patient_id')


def test_duplicate_names_both_lines(write_csv):
    path = write_csv("d.csv", "patient_id,timepoint,vas\nP1,pre,8\nP1,3d,2\nP2,pre,6\nP1,3d,3\n")
    message = _message(path)
    assert message.startswith(f'{path}, line 5, column "timepoint": duplicate time point')
    assert "'3d'" in message and "'P1'" in message
    assert "lines 3 and 5" in message


def test_missing_column_names_it_and_the_header_found(write_csv):
    path = write_csv("m.csv", "patient_id,timepoint,score\nP1,pre,8\n")
    message = _message(path)
    assert message.startswith(f'{path}, line 1: missing column "vas"')
    assert "header found: 'patient_id', 'timepoint', 'score'" in message


def test_two_missing_columns(write_csv):
    path = write_csv("m2.csv", "id,timepoint,score\nP1,pre,8\n")
    assert 'missing columns "patient_id", "vas"' in _message(path)


def test_wrong_number_of_fields(write_csv):
    path = write_csv("f.csv", "patient_id,timepoint,vas\nP1,pre,8\nP1,3d\n")
    message = _message(path)
    assert message.startswith(f"{path}, line 3: 2 fields 'P1,3d'; expected 3")


def test_non_utf8_bytes_name_line_column_and_bytes(write_csv):
    raw = b"patient_id,timepoint,vas\nP1,pre,8\n" + "Jos\xe9,pre,7\n".encode("latin-1")
    path = write_csv("latin.csv", raw)
    message = _message(path)
    assert message.startswith(f'{path}, line 3, column "patient_id": bytes ')
    assert "\\xe9" in message
    assert "not valid UTF-8" in message


def test_non_utf8_in_the_header_and_utf16(write_csv):
    latin = write_csv("h.csv", "patient_id,timepoint,vas,f\xfchrer\nP1,pre,8,x\n".encode("latin-1"))
    assert _message(latin).startswith(f"{latin}, line 1: bytes b'\\xfc'")
    utf16 = write_csv("u16.csv", "patient_id,timepoint,vas\nP1,pre,8\n".encode("utf-16"))
    assert _message(utf16).startswith(f"{utf16}, line 1: bytes ")


def test_missing_file_and_directory(tmp_path):
    missing = tmp_path / "nope.csv"
    message = _message(missing)
    assert str(missing) in message and "not found" in message
    assert "is a directory" in _message(tmp_path)


@pytest.mark.parametrize("content", ["", "\n\n", "\ufeff"])
def test_empty_file(write_csv, content):
    path = write_csv("empty.csv", content)
    message = _message(path)
    assert message.startswith(f"{path}: the file is empty")
    assert "patient_id,timepoint,vas" in message


def test_header_only(write_csv):
    path = write_csv("h.csv", "patient_id,timepoint,vas\n")
    assert "header but no data lines" in _message(path)


def test_duplicate_header_column(write_csv):
    path = write_csv("h2.csv", "patient_id,timepoint,vas,vas\nP1,pre,8,8\n")
    assert re.search(r"column name 'vas' appears twice", _message(path))


@pytest.mark.parametrize(
    ("value", "fragment"),
    [("2024-13-01", "'2024-13-01' is not a date"), ("01/03/2024", "'01/03/2024' is not a date")],
)
def test_bad_procedure_date(write_csv, value, fragment):
    path = write_csv("pd.csv", f"patient_id,timepoint,vas,procedure_date\nP1,pre,8,{value}\n")
    message = _message(path)
    assert message.startswith(f'{path}, line 2, column "procedure_date": ')
    assert fragment in message and "YYYY-MM-DD" in message


def test_inconsistent_procedure_date_names_both_lines(write_csv):
    text = "patient_id,timepoint,vas,procedure_date\nP1,pre,8,2024-01-02\nP1,3d,2,2024-01-09\n"
    message = _message(write_csv("pd2.csv", text))
    assert "line 3" in message and "line 2" in message and "'2024-01-09'" in message


def test_error_on_last_line_means_nothing_returned(write_csv):
    """All or nothing: a single bad line at the end refuses the whole file."""
    lines = ["patient_id,timepoint,vas"] + [f"P{i},pre,{i % 10}" for i in range(50)] + ["Q,3m,99"]
    with pytest.raises(CohortFileError, match=r"line 52, column \"vas\""):
        read_cohort_csv(write_csv("long.csv", "\n".join(lines)))


def test_malformed_quoting_names_the_line(write_csv):
    path = write_csv("q.csv", 'patient_id,timepoint,vas\nP1,pre,8\nP1,"3d"x,2\n')
    message = _message(path)
    assert message.startswith(f"{path}, line 3: malformed CSV")

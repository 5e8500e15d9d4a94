"""Helpers of the end-to-end tests: the demo server's description and the steps people take.

Imported by ``tests/e2e/test_e2e_*.py`` (``from _e2e_support import ...``); the fixtures that
start the server and the browser are in ``tests/e2e/conftest.py``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from playwright.sync_api import Page, expect

__all__ = [
    "ANALYSIS_WAIT_MS",
    "EXPECT_MS",
    "SERVER_TZ",
    "WAIT_MS",
    "DemoPatient",
    "E2EServer",
    "field_label",
    "record_two_level_procedure",
    "sign_in",
    "sw_date",
]

#: The server's time zone (``spinewatch.web.settings.TIME_ZONE``): "today" as the server sees it.
SERVER_TZ = ZoneInfo("UTC")
#: Explicit waits: generous for a busy 2-core CI machine, never slept through.
WAIT_MS = 30_000
EXPECT_MS = 15_000
ANALYSIS_WAIT_MS = 90_000


@dataclass(frozen=True)
class DemoPatient:
    """One fictional patient of the demo registry, as stored (identifiable fields included)."""

    study_id: str
    family_name: str
    given_name: str
    hospital_number: str
    case_manager_id: int | None
    imaging_studies: int
    birth_date: str  # ISO

    def identifiers(self) -> list[str]:
        """Strings that must never reach a researcher: names, hospital number, birth date."""
        birth = dt.date.fromisoformat(self.birth_date)
        return [
            self.family_name,
            self.hospital_number,
            f"{self.given_name} {self.family_name}",
            f"{self.family_name}, {self.given_name}",
            self.birth_date,
            sw_date(birth),
            f"{birth:%d/%m/%Y}",
        ]


@dataclass
class E2EServer:
    """A running ``spinewatch serve`` on a demo registry."""

    base_url: str
    data_dir: Path
    log_path: Path
    logins: dict[str, tuple[str, str]]  # role -> (username, password)
    patients: list[DemoPatient] = field(default_factory=list)
    user_ids: dict[str, int] = field(default_factory=dict)  # username -> id

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path

    def login_of(self, role: str) -> tuple[str, str]:
        return self.logins[role]

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def today(self) -> dt.date:
        return dt.datetime.now(SERVER_TZ).date()

    def patient_for(self, purpose: str) -> DemoPatient:
        """The demo patient a test works on: each purpose gets its own patient, so the tests do
        not see each other's writes in whatever order (or xdist worker) they run.

        ``portal``: one of the demo case manager's own patients (their worklist); ``upload``:
        one without any scan (so the upload becomes its latest analysis); ``search`` and
        ``procedure``: the next ones.
        """
        manager_id = self.user_ids[self.login_of("case_manager")[0]]
        rules: dict[str, Callable[[DemoPatient], bool]] = {
            "portal": lambda p: p.case_manager_id == manager_id,
            "upload": lambda p: p.imaging_studies == 0,
            "search": lambda p: True,
            "procedure": lambda p: True,
            "plan": lambda p: True,
            "void": lambda p: True,
        }
        chosen: dict[str, DemoPatient] = {}
        for name, fits in rules.items():
            taken = {p.study_id for p in chosen.values()}
            found = next((p for p in self.patients if p.study_id not in taken and fits(p)), None)
            if found is None:
                raise LookupError(f"no demo patient left for {name!r}")
            chosen[name] = found
        return chosen[purpose]


def field_label(text: str) -> re.Pattern[str]:
    """A field's label exactly, with or without the required mark (``Date*``)."""
    return re.compile(rf"^\s*{re.escape(text)}\s*\*?\s*$")


def sw_date(day: dt.date) -> str:
    """The application's date format (``2 Aug 2026``), computed here independently."""
    return f"{day.day} {day:%b %Y}"


def sign_in(page: Page, server: E2EServer, role: str) -> None:
    """Sign in through the login form as the demo user of ``role``."""
    username, password = server.login_of(role)
    page.goto("/accounts/login/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).not_to_have_url(re.compile(r"/accounts/login/"))


#: The two levels of the procedure the tests record: (level, needle gauge, cement ml).
TWO_LEVELS = (("T12", 11, 3.5), ("L1", 13, 4.2))


def record_two_level_procedure(page: Page, study_id: str, performed_on: dt.date) -> None:
    """As a signed-in clinician: patient page -> procedure form, T12 + L1 transpedicular, saved.

    Ends on the patient page the form redirects to.
    """
    page.goto(f"/patients/{study_id}/")
    page.get_by_role("link", name="Record procedure").click()
    expect(page.get_by_role("heading", name="Record a procedure")).to_be_visible()
    session = page.get_by_role("group", name="Session", exact=True)
    session.get_by_label(field_label("Date")).fill(performed_on.isoformat())
    session.get_by_label(field_label("Procedure")).select_option("vertebroplasty")
    session.get_by_label(field_label("Operator")).fill("Dr E2E Operator")
    session.get_by_label(field_label("Guidance")).select_option("fluoroscopy")
    session.get_by_label(field_label("Anaesthesia")).select_option("local")
    session.get_by_label(field_label("Yes")).check()  # day case
    for index, (level, gauge, cement_ml) in enumerate(TWO_LEVELS):
        row = page.get_by_role("group", name="Level", exact=True).nth(index)
        row.get_by_label(field_label("Level")).select_option(level)
        row.get_by_label(field_label("Approach")).select_option("transpedicular")
        row.get_by_label(field_label("Needle (G)")).fill(str(gauge))
        row.get_by_label(field_label("Cement (ml)")).fill(str(cement_ml))
    page.get_by_role("button", name="Save procedure").click()
    expect(page).to_have_url(re.compile(rf"/patients/{re.escape(study_id)}/"))

"""The PACS over DICOMweb (dicomweb-client): QIDO-RS search, WADO-RS retrieve, STOW-RS store.

:class:`PacsClient` wraps :class:`dicomweb_client.DICOMwebClient` with SpineWatch's settings
(``SPINEWATCH_DICOMWEB``: URL, basic or bearer authentication, retries, timeout) and with one
retry policy for every call: a connection failure, a time-out or an answer 408/429/5xx is tried
again after ``BACKOFF_S``, doubling each time, up to ``RETRIES`` attempts -- then
:class:`~.errors.PacsUnavailableError`. Other 4xx answers are not retried (a 401 will not go
away): :class:`~.errors.PacsError` naming the URL and the status. Messages never show the
password or token.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import requests
from django.conf import settings
from pydicom import Dataset

from spinewatch.pacs.errors import PacsError, PacsUnavailableError, StudyNotFoundError

__all__ = ["PacsClient", "PacsConfig", "client_from_settings"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
_RETRIED_STATUS = {408, 429, 500, 502, 503, 504}


@dataclass(frozen=True)
class PacsConfig:
    """Where the PACS' DICOMweb service is and how to talk to it."""

    url: str
    user: str = ""
    password: str = ""
    token: str = ""
    retries: int = 4
    backoff_s: float = 1.0
    timeout_s: float = 60.0

    @classmethod
    def from_settings(cls) -> PacsConfig:
        raw: Mapping[str, Any] = getattr(settings, "SPINEWATCH_DICOMWEB", {}) or {}
        url = str(raw.get("URL", "") or "")
        if not url:
            raise PacsError(
                "no PACS configured: set SPINEWATCH_DICOMWEB_URL to the PACS' DICOMweb root "
                "(e.g. http://pacs:8042/dicom-web)"
            )
        return cls(
            url=url,
            user=str(raw.get("USER", "") or ""),
            password=str(raw.get("PASSWORD", "") or ""),
            token=str(raw.get("TOKEN", "") or ""),
            retries=int(raw.get("RETRIES", 4)),
            backoff_s=float(raw.get("BACKOFF_S", 1.0)),
            timeout_s=float(raw.get("TIMEOUT_S", 60.0)),
        )


def _status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    return None if response is None else int(response.status_code)


class PacsClient:
    """One PACS; every method retries as the module doc says."""

    def __init__(self, config: PacsConfig, *, sleep: Callable[[float], None] = time.sleep) -> None:
        from dicomweb_client import DICOMwebClient

        self.config = config
        self._sleep = sleep
        session = requests.Session()
        if config.user:
            session.auth = (config.user, config.password)
        headers = {"Authorization": f"Bearer {config.token}"} if config.token else None
        self._client = DICOMwebClient(
            config.url, session=session, headers=headers, timeout=config.timeout_s
        )
        self._client.set_http_retry_params(retry=False)  # one policy: ours

    def _call(self, what: str, call: Callable[[], T]) -> T:
        wait = self.config.backoff_s
        for attempt in range(1, self.config.retries + 1):
            try:
                return call()
            except requests.HTTPError as exc:
                status = _status(exc)
                if status == 404:
                    raise StudyNotFoundError(
                        f"PACS {self.config.url}: {what}: not found (HTTP 404)"
                    ) from None
                if status not in _RETRIED_STATUS:
                    hint = (
                        " (check SPINEWATCH_DICOMWEB_USER/PASSWORD/TOKEN)"
                        if status
                        in (
                            401,
                            403,
                        )
                        else ""
                    )
                    raise PacsError(
                        f"PACS {self.config.url}: {what}: refused with HTTP {status}{hint}"
                    ) from None
                problem = f"HTTP {status}"
            except (requests.ConnectionError, requests.Timeout) as exc:
                problem = type(exc).__name__
            if attempt < self.config.retries:
                logger.warning(
                    "PACS %s: %s: %s (attempt %d of %d); retrying in %.1f s",
                    self.config.url,
                    what,
                    problem,
                    attempt,
                    self.config.retries,
                    wait,
                )
                self._sleep(wait)
                wait *= 2
        raise PacsUnavailableError(
            f"PACS {self.config.url}: {what}: {problem} after {self.config.retries} attempts; "
            "is the PACS running and SPINEWATCH_DICOMWEB_URL right? Nothing was stored"
        )

    # -- QIDO-RS ----------------------------------------------------------------------------

    def search_studies(self, filters: Mapping[str, str]) -> list[dict[str, Any]]:
        """Studies matching ``filters`` (DICOM keywords -> values), DICOM JSON."""
        return self._call(
            "searching studies",
            lambda: self._client.search_for_studies(search_filters=dict(filters)),
        )

    def search_series(self, study_uid: str) -> list[dict[str, Any]]:
        """The series of a study (DICOM JSON); :class:`StudyNotFoundError` when none."""
        found = self._call(
            f"searching the series of study {study_uid}",
            lambda: self._client.search_for_series(study_instance_uid=study_uid),
        )
        if not found:
            raise StudyNotFoundError(
                f"PACS {self.config.url}: study {study_uid} not found (no series)"
            )
        return found

    # -- WADO-RS / STOW-RS --------------------------------------------------------------------

    def retrieve_series(self, study_uid: str, series_uid: str) -> list[Dataset]:
        """Every instance of one series, as datasets in the transfer syntax the PACS stored
        (``transfer-syntax=*``: a PACS need not transcode JPEG 2000, which it may not be able
        to; pydicom decodes it)."""
        return self._call(
            f"retrieving series {series_uid}",
            lambda: self._client.retrieve_series(
                study_uid, series_uid, media_types=(("application/dicom", "*"),)
            ),
        )

    def store(self, datasets: Sequence[Dataset], study_uid: str) -> Dataset:
        """STOW-RS ``datasets`` into the study; the PACS' response (refusals raise)."""
        response = self._call(
            f"storing {len(datasets)} instances into study {study_uid}",
            lambda: self._client.store_instances(list(datasets), study_instance_uid=study_uid),
        )
        failed = response.get("FailedSOPSequence") if response is not None else None
        if failed:
            reasons = ", ".join(str(item.get("FailureReason", "?")) for item in failed)
            raise PacsError(
                f"PACS {self.config.url}: refused {len(failed)} of {len(datasets)} instances "
                f"(failure reasons {reasons})"
            )
        return response


def client_from_settings() -> PacsClient:
    """A client for ``SPINEWATCH_DICOMWEB`` (PacsError when no PACS is configured)."""
    return PacsClient(PacsConfig.from_settings())


def json_value(item: Mapping[str, Any], tag: str) -> str:
    """The first value of a DICOM JSON attribute (``"0020000D"``) as text ("" when absent)."""
    values = (item.get(tag) or {}).get("Value") or []
    if not values:
        return ""
    value = values[0]
    if isinstance(value, dict):  # PN
        return str(value.get("Alphabetic", ""))
    return str(value)

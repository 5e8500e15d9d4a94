"""SpineWatch as a DICOM storage SCP (pynetdicom): CT series (and vertebra SEGs) by C-STORE.

Accepted: CT Image Storage and Segmentation Storage in every transfer syntax pynetdicom knows
(compressed ones included: scanners send JPEG 2000 and JPEG-LS), and Verification (C-ECHO). Any
other SOP class is refused at association negotiation (its presentation context is rejected, so
the sender reports that the SOP class is not supported); the refusal is logged with the calling
AE title.

Each association's instances are written to a staging folder (``DATA_DIR/tmp/scp-<id>``). When
the association is **released**, the instances are handed, study by study, to
:func:`~.receive.receive_study` (matched, stored, analysed); an **aborted** association's
instances are discarded -- nothing half-received is kept. A study refused for its content (no CT
series, already analysed) is logged and dropped; one that fails for another reason (database or
disk trouble) is moved to ``DATA_DIR/dicom-retry/`` and the log says how to import it again
(``spinewatch pacs import DIR``), since the sender was already told it was stored.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection
from pydicom.uid import CTImageStorage, SegmentationStorage

from spinewatch.core.errors import InputError

__all__ = ["ACCEPTED_SOP_CLASSES", "StorageSCP"]

logger = logging.getLogger(__name__)

ACCEPTED_SOP_CLASSES = (CTImageStorage, SegmentationStorage)
_SUCCESS = 0x0000
_OUT_OF_RESOURCES = 0xA700


class StorageSCP:
    """The storage SCP; :meth:`start` (blocking or in a thread) and :meth:`stop`."""

    def __init__(
        self,
        *,
        ae_title: str | None = None,
        host: str | None = None,
        port: int | None = None,
    ) -> None:
        self.ae_title = ae_title or str(settings.SPINEWATCH_DICOM_AE_TITLE)
        self.host = host or str(settings.SPINEWATCH_DICOM_HOST)
        self.port = int(port if port is not None else settings.SPINEWATCH_DICOM_PORT)
        self._server: Any = None
        self._staging: dict[int, Path] = {}
        self._lock = threading.Lock()
        self.processed = threading.Event()  # set after each released association is handled

    # -- set-up ------------------------------------------------------------------------------

    def _ae(self) -> Any:
        from pynetdicom import AE, ALL_TRANSFER_SYNTAXES
        from pynetdicom.sop_class import Verification

        ae = AE(ae_title=self.ae_title)
        for sop_class in ACCEPTED_SOP_CLASSES:
            ae.add_supported_context(sop_class, ALL_TRANSFER_SYNTAXES)
        ae.add_supported_context(Verification)
        ae.maximum_pdu_size = 0
        return ae

    def _handlers(self) -> list[tuple[Any, Any]]:
        from pynetdicom import evt

        return [
            (evt.EVT_ACCEPTED, self._on_accepted),
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_RELEASED, self._on_released),
            (evt.EVT_ABORTED, self._on_aborted),
        ]

    def start(self, *, block: bool = True) -> None:
        """Listen on ``host:port``; ``block=False`` returns once the server thread runs."""
        logger.info("DICOM storage SCP %s listening on %s:%d", self.ae_title, self.host, self.port)
        self._server = self._ae().start_server(
            (self.host, self.port), block=block, evt_handlers=self._handlers()
        )

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    # -- events ------------------------------------------------------------------------------

    def _folder(self, assoc: Any) -> Path:
        key = id(assoc)
        with self._lock:
            folder = self._staging.get(key)
            if folder is None:
                root = Path(settings.DATA_DIR) / "tmp"
                root.mkdir(parents=True, exist_ok=True, mode=0o700)
                folder = Path(tempfile.mkdtemp(prefix="scp-", dir=root))
                self._staging[key] = folder
            return folder

    def _take(self, assoc: Any) -> Path | None:
        with self._lock:
            return self._staging.pop(id(assoc), None)

    def _on_accepted(self, event: Any) -> None:
        calling = event.assoc.requestor.ae_title
        for context in event.assoc.rejected_contexts:
            logger.warning(
                "C-STORE from %s: SOP class %s refused (SpineWatch accepts CT Image Storage and "
                "Segmentation Storage only)",
                calling,
                getattr(context.abstract_syntax, "name", context.abstract_syntax),
            )

    def _on_store(self, event: Any) -> int:
        folder = self._folder(event.assoc)
        sop_uid = str(event.request.AffectedSOPInstanceUID)
        safe = "".join(c for c in sop_uid if c.isdigit() or c == ".") or "instance"
        try:
            (folder / f"{safe}.dcm").write_bytes(event.encoded_dataset())
        except OSError:
            logger.exception("C-STORE of %s: cannot write the instance", sop_uid)
            return _OUT_OF_RESOURCES
        return _SUCCESS

    def _on_aborted(self, event: Any) -> None:
        folder = self._take(event.assoc)
        if folder is not None:
            logger.warning(
                "association from %s aborted: its instances were discarded",
                event.assoc.requestor.ae_title,
            )
            shutil.rmtree(folder, ignore_errors=True)

    def _on_released(self, event: Any) -> None:
        folder = self._take(event.assoc)
        if folder is None:
            self.processed.set()
            return
        calling = str(event.assoc.requestor.ae_title).strip()
        try:
            close_old_connections()
            self._process(folder, calling)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
            connection.close()
            self.processed.set()

    def _process(self, folder: Path, calling: str) -> None:
        from spinewatch.audit.context import acting_as
        from spinewatch.pacs.receive import read_dicom_headers, receive_study
        from spinewatch.registry.models_pacs import ReceivedVia

        by_study: dict[str, list[Path]] = defaultdict(list)
        for path, ds in read_dicom_headers(sorted(folder.glob("*.dcm"))):
            by_study[str(ds.get("StudyInstanceUID", ""))].append(path)
        for study_uid, paths in sorted(by_study.items()):
            try:
                with acting_as(f"dicom:{calling}", via="system"):
                    result = receive_study(paths, via=ReceivedVia.C_STORE.value, calling_ae=calling)
                logger.info(
                    "C-STORE from %s: study %s: %s", calling, study_uid, result.study.message
                )
            except InputError as exc:
                logger.error("C-STORE from %s: study %s not taken: %s", calling, study_uid, exc)
            except Exception:
                kept = _keep_for_retry(paths, study_uid)
                logger.exception(
                    "C-STORE from %s: study %s failed (database or disk?); its %d instances are "
                    "kept in %s -- import them with `spinewatch pacs import %s`",
                    calling,
                    study_uid,
                    len(paths),
                    kept,
                    kept,
                )


def _keep_for_retry(paths: list[Path], study_uid: str) -> Path:
    """Move a study's received files to ``DATA_DIR/dicom-retry/<study>-<n>/`` (not lost)."""
    root = Path(settings.DATA_DIR) / "dicom-retry"
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    safe = "".join(c for c in study_uid if c.isdigit() or c == ".")[:64] or "unknown"
    target = Path(tempfile.mkdtemp(prefix=f"{safe}-", dir=root))
    for path in paths:
        shutil.move(str(path), target / path.name)
    return target

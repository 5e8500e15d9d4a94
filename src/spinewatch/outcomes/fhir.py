"""FHIR R4: a patient's registry record as a Bundle, and pain scores read from one.

:func:`patient_bundle` turns :class:`FhirPatient` (plain data, gathered by
:mod:`spinewatch.registry.fhir`) into a ``collection`` Bundle (JSON dict) of

- **Patient** -- study id as an identifier; name, hospital number, birth date only when
  identifiable;
- **Condition** per diagnosis; myeloma under mCODE's *primary* cancer condition profile; a
  metastasis as mCODE's *secondary* cancer condition plus a primary cancer condition for its
  primary tumour;
- **Procedure** per treatment (code: text only, see below; body site: the treated vertebrae);
- **Observation** per pain score: LOINC 72514-3 "Pain severity - 0-10 verbal numeric rating
  [Score] - Reported", ``valueQuantity`` in ``{score}`` (the registry keeps decimals), the
  visit (time point) as an extension, ``partOf`` the Procedure;
- **ImagingStudy** per scan with its DICOM Study Instance UID (``urn:dicom:uid``) and series UID,
  and per vertebra a findings **Observation** (``derivedFrom`` the ImagingStudy, body site the
  vertebra; components Genant grade, height loss %, trabecular attenuation HU, collapse risk).

De-identified form (researchers): no name, identifier other than the study id, calendar date or
DICOM UID; instead day offsets as extensions (days from the index procedure, days after the
procedure).

Codes, and where each was checked (nothing here is made up):

- LOINC 72514-3: loinc.org's term (long name above; 0 = no pain, 10 = worst imaginable), also
  the code of HL7 profiles for a 0-10 pain score.
- Vertebra body sites, SNOMED CT: DICOM PS3.16 CID 7603 "Vertebra" (C1 14806007 ... L5 49668003),
  as shipped in pydicom's code dictionary and in TotalSegmentator's SNOMED mapping; a test holds
  :data:`VERTEBRA_SNOMED` equal to pydicom's CID 7603. T13 / L6 / S1 have no code there: their
  body site is coded "Vertebra" (SNOMED 51282000, pydicom) with the level as text.
- Percutaneous vertebroplasty / kyphoplasty, SNOMED CT: NOT coded. The candidate ids found
  (392010000, 429616001) appear only in one unofficial repository, and 429616001 is mapped
  elsewhere to an unrelated cardiac procedure; no SNOMED browser page, HL7/IHE profile or OHDSI
  table confirmed either. The Procedure carries ``code.text`` only until a code is checked
  against the SNOMED CT release.
- Diagnoses: text only, for the same reason (mCODE's value sets are SNOMED CT; strict profile
  validators will report the missing coding).
- mCODE profile URLs: ``http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-primary-cancer-
  condition`` and ``...-secondary-cancer-condition``.

Validated with ``fhir.resources`` (pydantic models of every resource). fhir.resources 8 ships R5
and R4B models, not 4.0.1; R4B (4.3.0) is used, whose Patient, Condition, Procedure, Observation,
ImagingStudy and Bundle are R4's.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from spinewatch.core.errors import InputError
from spinewatch.core.levels import VertebralLevel
from spinewatch.core.protocol import DEFAULT_PROTOCOL, FollowUpProtocol

__all__ = [
    "EXT_DAYS_AFTER_PROCEDURE",
    "EXT_DAYS_FROM_INDEX",
    "EXT_VISIT",
    "LOINC_PAIN",
    "STUDY_ID_SYSTEM",
    "VERTEBRA_SNOMED",
    "FhirBundleError",
    "FhirDiagnosis",
    "FhirFinding",
    "FhirImagingStudy",
    "FhirPain",
    "FhirPatient",
    "FhirProcedure",
    "PainObservation",
    "patient_bundle",
    "read_bundle_file",
    "read_pain_bundle",
    "validate_bundle",
]

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
LOINC_PAIN = {
    "system": LOINC,
    "code": "72514-3",
    "display": "Pain severity - 0-10 verbal numeric rating [Score] - Reported",
}
#: Our own names live under the reserved ``.invalid`` domain: never resolvable, never clashing.
BASE = "https://spinewatch.invalid/fhir"
STUDY_ID_SYSTEM = f"{BASE}/study-id"
HOSPITAL_NUMBER_SYSTEM = f"{BASE}/hospital-number"
EXT_VISIT = f"{BASE}/StructureDefinition/follow-up-visit"
EXT_DAYS_FROM_INDEX = f"{BASE}/StructureDefinition/days-from-index-procedure"
EXT_DAYS_AFTER_PROCEDURE = f"{BASE}/StructureDefinition/days-after-procedure"
TIMEPOINT_SYSTEM = f"{BASE}/CodeSystem/follow-up-timepoint"
MCODE = "http://hl7.org/fhir/us/mcode/StructureDefinition"

#: SNOMED CT vertebra codes of DICOM PS3.16 CID 7603 (see the module docstring).
VERTEBRA_SNOMED: dict[str, tuple[str, str]] = {
    "C1": ("14806007", "C1 vertebra"),
    "C2": ("39976000", "C2 vertebra"),
    "C3": ("113205007", "C3 vertebra"),
    "C4": ("5329002", "C4 vertebra"),
    "C5": ("36978003", "C5 vertebra"),
    "C6": ("36054005", "C6 vertebra"),
    "C7": ("87391001", "C7 vertebra"),
    "T1": ("64864005", "T1 vertebra"),
    "T2": ("53733008", "T2 vertebra"),
    "T3": ("1626008", "T3 vertebra"),
    "T4": ("73071006", "T4 vertebra"),
    "T5": ("56401006", "T5 vertebra"),
    "T6": ("45296009", "T6 vertebra"),
    "T7": ("62487009", "T7 vertebra"),
    "T8": ("11068009", "T8 vertebra"),
    "T9": ("82687006", "T9 vertebra"),
    "T10": ("7610001", "T10 vertebra"),
    "T11": ("12989004", "T11 vertebra"),
    "T12": ("23215003", "T12 vertebra"),
    "L1": ("66794005", "L1 vertebra"),
    "L2": ("14293000", "L2 vertebra"),
    "L3": ("36470004", "L3 vertebra"),
    "L4": ("11994002", "L4 vertebra"),
    "L5": ("49668003", "L5 vertebra"),
}
VERTEBRA_GENERIC = ("51282000", "Vertebra")

_PROCEDURE_TEXT = {
    "vertebroplasty": "Percutaneous vertebroplasty",
    "kyphoplasty": "Percutaneous kyphoplasty",
    "cementoplasty": "Percutaneous cementoplasty",
    "ablation_vertebroplasty": "Percutaneous tumour ablation and vertebroplasty",
    "laser_disc_decompression": "Percutaneous laser disc decompression",
}
_DIAGNOSIS_TEXT = {
    "myeloma": "Multiple myeloma",
    "metastasis": "Metastatic malignant neoplasm to bone",
    "osteoporotic_fracture": "Osteoporotic vertebral fracture",
    "haemangioma": "Vertebral haemangioma",
    "disc_herniation": "Intervertebral disc herniation",
}


#: Largest Bundle file read (checked before reading): ~100,000 pain Observations.
MAX_BUNDLE_BYTES = 64 * 1024 * 1024


def read_bundle_file(path: Any) -> bytes:
    """A Bundle file's bytes; :class:`FhirBundleError` when it is larger than
    :data:`MAX_BUNDLE_BYTES` (checked before reading it)."""
    from pathlib import Path

    path = Path(path)
    size = path.stat().st_size
    if size > MAX_BUNDLE_BYTES:
        raise FhirBundleError(
            f"{path}: {size} bytes; expected a Bundle of at most {MAX_BUNDLE_BYTES} bytes"
        )
    return path.read_bytes()


class FhirBundleError(InputError):
    """A Bundle that cannot be read; the message names the entry index, field and value."""


@dataclass(frozen=True)
class FhirDiagnosis:
    kind: str
    primary_tumour: str | None = None
    onset: str | None = None  # ISO date, identifiable only
    onset_days_from_index: int | None = None


@dataclass(frozen=True)
class FhirPain:
    timepoint: str
    vas: float
    date: str | None = None  # ISO date, identifiable only
    days_after_procedure: int | None = None


@dataclass(frozen=True)
class FhirProcedure:
    key: str  # unique in the Bundle (e.g. the procedure's number)
    procedure_type: str
    levels: tuple[str, ...] = ()
    performed: str | None = None  # ISO date, identifiable only
    days_from_index: int | None = None
    pains: tuple[FhirPain, ...] = ()


@dataclass(frozen=True)
class FhirFinding:
    level: str
    genant_grade: int | None = None
    height_loss_pct: float | None = None
    trabecular_hu_median: float | None = None
    collapse_risk: str | None = None


@dataclass(frozen=True)
class FhirImagingStudy:
    key: str
    modality: str  # "ct" / "mr"
    started: str | None = None  # ISO date, identifiable only
    days_from_index: int | None = None
    study_instance_uid: str | None = None  # identifiable only
    series_instance_uid: str | None = None
    findings: tuple[FhirFinding, ...] = ()


@dataclass(frozen=True)
class FhirPatient:
    study_id: str
    deidentified: bool
    sex: str | None = None
    family_name: str | None = None
    given_name: str | None = None
    hospital_number: str | None = None
    birth_date: str | None = None
    diagnoses: tuple[FhirDiagnosis, ...] = ()
    procedures: tuple[FhirProcedure, ...] = ()
    imaging_studies: tuple[FhirImagingStudy, ...] = ()


def _fhir_id(text: str) -> str:
    """A FHIR id ([A-Za-z0-9-.]{1,64}) from one of our keys."""
    out = "".join(c if c.isalnum() or c in "-." else "-" for c in text)
    return out[:64] or "x"


def _vertebra(level: str) -> dict[str, Any]:
    name = str(VertebralLevel.parse(level))
    code, display = VERTEBRA_SNOMED.get(name, VERTEBRA_GENERIC)
    return {"coding": [{"system": SNOMED, "code": code, "display": display}], "text": name}


def _round(value: float, digits: int = 2) -> float | int:
    rounded = round(float(value), digits)
    return int(rounded) if rounded.is_integer() else rounded


def _ext_int(url: str, value: int | None) -> list[dict[str, Any]]:
    return [] if value is None else [{"url": url, "valueInteger": int(value)}]


def patient_bundle(
    patient: FhirPatient, *, protocol: FollowUpProtocol = DEFAULT_PROTOCOL
) -> dict[str, Any]:
    """The patient's Bundle (type ``collection``) as a JSON-able dict, validated."""
    pid = _fhir_id(patient.study_id)
    subject = {"reference": f"Patient/{pid}"}
    resources = [
        _patient_resource(patient, pid),
        *_condition_resources(patient, pid, subject),
        *_procedure_resources(patient, pid, subject, protocol),
        *_imaging_resources(patient, pid, subject),
    ]
    entries = [
        {
            "fullUrl": f"urn:spinewatch:{resource['resourceType']}/{resource['id']}",
            "resource": resource,
        }
        for resource in resources
    ]
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": entries}
    validate_bundle(bundle)
    return bundle


def _patient_resource(patient: FhirPatient, pid: str) -> dict[str, Any]:
    """The Patient: study id always; name, hospital number, birth date unless de-identified."""
    deid = patient.deidentified
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": pid,
        "identifier": [{"system": STUDY_ID_SYSTEM, "value": patient.study_id}],
    }
    if patient.sex in ("female", "male", "other", "unknown"):
        resource["gender"] = patient.sex
    if not deid:
        if patient.hospital_number:
            resource["identifier"].append(
                {
                    "use": "official",
                    "system": HOSPITAL_NUMBER_SYSTEM,
                    "value": patient.hospital_number,
                }
            )
        if patient.family_name or patient.given_name:
            name: dict[str, Any] = {"use": "official"}
            if patient.family_name:
                name["family"] = patient.family_name
            if patient.given_name:
                name["given"] = [patient.given_name]
            resource["name"] = [name]
        if patient.birth_date:
            resource["birthDate"] = patient.birth_date
    return resource


def _condition_resources(
    patient: FhirPatient, pid: str, subject: dict[str, str]
) -> list[dict[str, Any]]:
    """One Condition per diagnosis (two for a metastasis: the primary and the secondary)."""
    deid = patient.deidentified
    out: list[dict[str, Any]] = []
    for i, dx in enumerate(patient.diagnoses, start=1):
        conditions: list[tuple[str, str]] = []  # (mCODE profile or "", text)
        if dx.kind == "metastasis":
            primary = (dx.primary_tumour or "other").replace("_", " ")
            conditions.append(("primary", f"Primary {primary} cancer"))
            conditions.append(("secondary", _DIAGNOSIS_TEXT["metastasis"]))
        elif dx.kind == "myeloma":
            conditions.append(("primary", _DIAGNOSIS_TEXT["myeloma"]))
        else:
            conditions.append(("", _DIAGNOSIS_TEXT.get(dx.kind, dx.kind)))
        for j, (profile, text) in enumerate(conditions, start=1):
            condition: dict[str, Any] = {
                "resourceType": "Condition",
                "id": f"{pid}-dx{i}-{j}",
                "clinicalStatus": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                            "code": "active",
                        }
                    ]
                },
                "category": _category("condition-category", "problem-list-item"),
                "code": {"text": text},
                "subject": subject,
            }
            if profile:
                condition["meta"] = {"profile": [f"{MCODE}/mcode-{profile}-cancer-condition"]}
            if not deid and dx.onset:
                condition["onsetDateTime"] = dx.onset
            condition["extension"] = _ext_int(EXT_DAYS_FROM_INDEX, dx.onset_days_from_index)
            if not condition["extension"]:
                del condition["extension"]
            out.append(condition)

    return out


def _procedure_resources(
    patient: FhirPatient, pid: str, subject: dict[str, str], protocol: FollowUpProtocol
) -> list[dict[str, Any]]:
    """Each Procedure followed by its pain-score Observations (one per visit)."""
    deid = patient.deidentified
    out: list[dict[str, Any]] = []
    labels = {tp.code: tp.label for tp in protocol.timepoints}
    for proc in patient.procedures:
        proc_id = f"{pid}-proc{_fhir_id(proc.key)}"
        procedure: dict[str, Any] = {
            "resourceType": "Procedure",
            "id": proc_id,
            "status": "completed",
            "code": {"text": _PROCEDURE_TEXT.get(proc.procedure_type, proc.procedure_type)},
            "subject": subject,
        }
        if proc.levels:
            procedure["bodySite"] = [_vertebra(level) for level in proc.levels]
        if not deid and proc.performed:
            procedure["performedDateTime"] = proc.performed
        ext = _ext_int(EXT_DAYS_FROM_INDEX, proc.days_from_index)
        if ext:
            procedure["extension"] = ext
        out.append(procedure)
        for pain in proc.pains:
            obs: dict[str, Any] = {
                "resourceType": "Observation",
                "id": f"{proc_id}-pain-{_fhir_id(pain.timepoint)}",
                "status": "final",
                "category": _category("observation-category", "survey"),
                "code": {"coding": [dict(LOINC_PAIN)], "text": "Pain (0-10)"},
                "subject": subject,
                "partOf": [{"reference": f"Procedure/{proc_id}"}],
                "valueQuantity": {
                    "value": _round(pain.vas),
                    "unit": "{score}",
                    "system": UCUM,
                    "code": "{score}",
                },
                "extension": [
                    {
                        "url": EXT_VISIT,
                        "valueCoding": {
                            "system": TIMEPOINT_SYSTEM,
                            "code": pain.timepoint,
                            "display": labels.get(pain.timepoint, pain.timepoint),
                        },
                    },
                    *_ext_int(EXT_DAYS_AFTER_PROCEDURE, pain.days_after_procedure),
                ],
            }
            if not deid and pain.date:
                obs["effectiveDateTime"] = pain.date
            out.append(obs)

    return out


def _imaging_resources(
    patient: FhirPatient, pid: str, subject: dict[str, str]
) -> list[dict[str, Any]]:
    """Each ImagingStudy followed by one Observation per vertebra with findings."""
    deid = patient.deidentified
    out: list[dict[str, Any]] = []
    for study in patient.imaging_studies:
        study_id = f"{pid}-img{_fhir_id(study.key)}"
        imaging: dict[str, Any] = {
            "resourceType": "ImagingStudy",
            "id": study_id,
            "status": "available",
            "subject": subject,
            "modality": [
                {
                    "system": "http://dicom.nema.org/resources/ontology/DCM",
                    "code": study.modality.upper(),
                }
            ],
        }
        if not deid:
            if study.study_instance_uid:
                imaging["identifier"] = [
                    {"system": "urn:dicom:uid", "value": f"urn:oid:{study.study_instance_uid}"}
                ]
            if study.series_instance_uid:
                imaging["series"] = [
                    {
                        "uid": study.series_instance_uid,
                        "modality": {
                            "system": "http://dicom.nema.org/resources/ontology/DCM",
                            "code": study.modality.upper(),
                        },
                    }
                ]
            if study.started:
                imaging["started"] = study.started
        ext = _ext_int(EXT_DAYS_FROM_INDEX, study.days_from_index)
        if ext:
            imaging["extension"] = ext
        out.append(imaging)
        for finding in study.findings:
            components = _finding_components(finding)
            obs = {
                "resourceType": "Observation",
                "id": f"{study_id}-{_fhir_id(finding.level)}",
                "status": "final",
                "category": _category("observation-category", "imaging"),
                "code": {"text": "Vertebral body findings on CT"},
                "subject": subject,
                "bodySite": _vertebra(finding.level),
                "derivedFrom": [{"reference": f"ImagingStudy/{study_id}"}],
            }
            if components:
                obs["component"] = components
            out.append(obs)

    return out


def _category(system: str, code: str) -> list[dict[str, Any]]:
    """A resource's ``category``: one coding of an HL7 terminology code system."""
    return [
        {"coding": [{"system": f"http://terminology.hl7.org/CodeSystem/{system}", "code": code}]}
    ]


def _finding_components(finding: FhirFinding) -> list[dict[str, Any]]:
    """The measured parts of one vertebra's findings (grade, height loss, HU, risk)."""
    components = []
    if finding.genant_grade is not None:
        components.append(
            {
                "code": {"text": "Genant semiquantitative grade"},
                "valueInteger": int(finding.genant_grade),
            }
        )
    if finding.height_loss_pct is not None and math.isfinite(finding.height_loss_pct):
        components.append(
            {
                "code": {"text": "Vertebral body height loss"},
                "valueQuantity": {
                    "value": _round(finding.height_loss_pct, 1),
                    "unit": "%",
                    "system": UCUM,
                    "code": "%",
                },
            }
        )
    if finding.trabecular_hu_median is not None and math.isfinite(finding.trabecular_hu_median):
        components.append(
            {
                "code": {"text": "Trabecular bone attenuation (median)"},
                "valueQuantity": {
                    "value": _round(finding.trabecular_hu_median, 1),
                    "unit": "HU",
                    "system": UCUM,
                    "code": "[hnsf'U]",
                },
            }
        )
    if finding.collapse_risk:
        components.append(
            {
                "code": {"text": "Risk of vertebral collapse"},
                "valueString": finding.collapse_risk.replace("_", " "),
            }
        )
    return components


def validate_bundle(bundle: Mapping[str, Any]) -> Any:
    """The Bundle parsed by fhir.resources (R4B); :class:`FhirBundleError` when it is not valid
    FHIR, naming the entry index and field."""
    from fhir.resources.R4B.bundle import Bundle
    from pydantic import ValidationError

    try:
        return Bundle.model_validate(dict(bundle))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise FhirBundleError(
            f"Bundle is not valid FHIR: {where}: {first.get('msg')} "
            f"(value {first.get('input')!r:.80})"
        ) from None


def combined_bundle(bundles: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """One collection Bundle holding the entries of several patients' Bundles."""
    entries = [entry for b in bundles for entry in b.get("entry", [])]
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": entries}
    validate_bundle(bundle)
    return bundle


# -- reading pain Observations -----------------------------------------------------------------


@dataclass(frozen=True)
class PainObservation:
    """One pain score read from a Bundle: whose (study id), which visit, when, the value."""

    entry: int
    study_id: str
    timepoint: str
    date: str
    vas: float
    extra: Mapping[str, Any] = field(default_factory=dict)


def read_pain_bundle(
    data: bytes | str | Mapping[str, Any],
    *,
    source: str = "Bundle",
    protocol: FollowUpProtocol = DEFAULT_PROTOCOL,
) -> list[PainObservation]:
    """The pain Observations (LOINC 72514-3) of a Bundle, each checked; other resources are
    read only to resolve ``subject`` references to a Patient's study id.

    Each pain Observation needs ``subject`` (a reference to a Patient entry carrying the study-id
    identifier, or ``subject.identifier`` with it), the visit extension (a time point of
    ``protocol``), ``effectiveDateTime`` (the visit's date) and ``valueQuantity.value`` or
    ``valueInteger`` 0-10. The first problem raises :class:`FhirBundleError` naming
    ``source``, the entry index and the field.
    """
    if isinstance(data, bytes | str):
        try:
            parsed = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise FhirBundleError(f"{source}: not JSON ({exc}); expected a FHIR Bundle") from None
    else:
        parsed = dict(data)
    if not isinstance(parsed, dict) or parsed.get("resourceType") != "Bundle":
        kind = parsed.get("resourceType") if isinstance(parsed, dict) else type(parsed).__name__
        raise FhirBundleError(f"{source}: resourceType {kind!r}; expected 'Bundle'")
    try:
        validate_bundle(parsed)
    except FhirBundleError as exc:
        raise FhirBundleError(f"{source}: {exc}") from None
    entries = parsed.get("entry") or []
    patients: dict[str, str] = {}
    for entry in entries:
        res = entry.get("resource") or {}
        if res.get("resourceType") == "Patient":
            sid = _study_id_of(res.get("identifier") or [])
            if sid is not None:
                patients[f"Patient/{res.get('id')}"] = sid
                if entry.get("fullUrl"):
                    patients[entry["fullUrl"]] = sid
    codes = set(protocol.codes)
    out: list[PainObservation] = []
    for index, entry in enumerate(entries):
        res = entry.get("resource") or {}
        if res.get("resourceType") != "Observation" or not _is_pain(res):
            continue

        def bad(where: str, value: object, expected: str, *, i: int = index) -> FhirBundleError:
            return FhirBundleError(
                f"{source}, entry {i} (Observation), {where}: {value!r:.80}; expected {expected}"
            )

        subject = res.get("subject") or {}
        sid = None
        if subject.get("reference"):
            sid = patients.get(subject["reference"])
        elif subject.get("identifier"):
            sid = _study_id_of([subject["identifier"]])
        if sid is None:
            raise bad(
                "subject",
                subject,
                f"a Patient of the Bundle with a {STUDY_ID_SYSTEM} "
                "identifier, or subject.identifier in that system",
            )
        visit = next((e for e in res.get("extension") or [] if e.get("url") == EXT_VISIT), None)
        code = ((visit or {}).get("valueCoding") or {}).get("code")
        if code not in codes:
            raise bad(f"extension[{EXT_VISIT}]", code, "a visit code, one of " + ", ".join(codes))
        when = res.get("effectiveDateTime")
        if not isinstance(when, str) or len(when) < 10:
            raise bad("effectiveDateTime", when, "the visit's date (YYYY-MM-DD)")
        if "valueQuantity" in res:
            value = (res.get("valueQuantity") or {}).get("value")
            field_name = "valueQuantity.value"
        else:
            value = res.get("valueInteger")
            field_name = "valueInteger"
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 10:
            raise bad(field_name, value, "a pain score from 0 to 10")
        out.append(
            PainObservation(
                entry=index, study_id=sid, timepoint=code, date=when[:10], vas=float(value)
            )
        )
    if not out:
        raise FhirBundleError(
            f"{source}: no pain Observation (LOINC {LOINC_PAIN['code']}); expected at least one"
        )
    return out


def _study_id_of(identifiers: Sequence[Mapping[str, Any]]) -> str | None:
    for ident in identifiers:
        if ident.get("system") == STUDY_ID_SYSTEM and ident.get("value"):
            return str(ident["value"])
    return None


def _is_pain(resource: Mapping[str, Any]) -> bool:
    codings = ((resource.get("code") or {}).get("coding")) or []
    return any(c.get("system") == LOINC and c.get("code") == LOINC_PAIN["code"] for c in codings)

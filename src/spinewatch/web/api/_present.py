"""Output schemas built from registry rows (the only place the API reads model attributes).

Each function takes a row (with whatever it needs prefetched by the caller, or not: they stay
correct, only slower) and returns the matching ``...Out`` schema of :mod:`.schemas`.
"""

from __future__ import annotations

from typing import Any

from spinewatch.registry import models as m
from spinewatch.registry.choices import CollapseRisk
from spinewatch.web.api import schemas as s

__all__ = [
    "finding_out",
    "follow_up_out",
    "identity_of",
    "patient_out",
    "patient_summary_out",
    "procedure_out",
    "study_out",
    "study_summary_out",
]


def identity_of(patient: m.Patient) -> m.PatientIdentity | None:
    """The patient's identity row, or ``None`` for a pseudonymous patient."""
    try:
        return patient.identity
    except m.PatientIdentity.DoesNotExist:
        return None


def _username(user: Any) -> str | None:
    return None if user is None else str(user.get_username())


def patient_summary_out(patient: m.Patient) -> s.PatientSummaryOut:
    identity = identity_of(patient)
    return s.PatientSummaryOut(
        id=patient.pk,
        study_id=patient.study_id,
        family_name=identity.family_name if identity else None,
        given_name=identity.given_name if identity else None,
        hospital_number=identity.hospital_number if identity else None,
        birth_date=identity.birth_date if identity else None,
        case_manager=_username(patient.case_manager),
        version=patient.version,
    )


def patient_out(patient: m.Patient) -> s.PatientOut:
    identity = identity_of(patient)
    return s.PatientOut(
        id=patient.pk,
        study_id=patient.study_id,
        case_manager=_username(patient.case_manager),
        created_at=patient.created_at,
        version=patient.version,
        identity=None
        if identity is None
        else s.IdentityOut(
            family_name=identity.family_name,
            given_name=identity.given_name,
            hospital_number=identity.hospital_number,
            birth_date=identity.birth_date,
            sex=identity.sex,
            phone=identity.phone,
            email=identity.email,
        ),
        diagnoses=[
            s.DiagnosisOut(
                id=d.pk,
                kind=d.kind,
                primary_tumour=d.primary_tumour,
                diagnosed_on=d.diagnosed_on,
                notes=d.notes,
            )
            for d in patient.diagnoses.all()
        ],
    )


def finding_out(f: m.VertebraFinding) -> s.FindingOut:
    return s.FindingOut(
        id=f.pk,
        level=f.level,
        height_anterior_mm=f.height_anterior_mm,
        height_middle_mm=f.height_middle_mm,
        height_posterior_mm=f.height_posterior_mm,
        reference_height_mm=f.reference_height_mm,
        genant_grade=f.genant_grade,
        deformity=f.deformity,
        height_loss_pct=f.height_loss_pct,
        truncated=f.truncated,
        trabecular_hu_median=f.trabecular_hu_median,
        lytic_volume_ml=f.lytic_volume_ml,
        lytic_fraction=f.lytic_fraction,
        posterior_wall_involved=f.posterior_wall_involved,
        pedicle_left_involved=f.pedicle_left_involved,
        pedicle_right_involved=f.pedicle_right_involved,
        collapse_risk=f.collapse_risk,
        reasons=list(f.reasons or []),
        sins_imaging_points=f.sins_imaging_points,
        treat_signal=f.treat_signal,
        treat_signal_reasons=list(f.treat_signal_reasons or []),
        confidence=f.confidence,
        confidence_reasons=list(f.confidence_reasons or []),
        diffuse_infiltration=f.diffuse_infiltration,
        diffuse_infiltration_hu_below_own=f.diffuse_infiltration_hu_below_own,
        decision=f.decision,
        decision_note=f.decision_note,
        version=f.version,
    )


def _acquisition_fields(report: Any) -> dict[str, Any]:
    """The contrast phase and the one-line acquisition summary the study's report records."""
    from spinewatch.imaging.report import acquisition_summary

    scan = report.get("scan") if isinstance(report, dict) else None
    if not isinstance(scan, dict):
        return {"contrast_phase": None, "acquisition": None}
    phase = scan.get("contrast_phase") if scan.get("modality") == "CT" else None
    return {
        "contrast_phase": phase if isinstance(phase, str) else None,
        "acquisition": acquisition_summary(scan) or None,
    }


def _study_fields(study: m.ImagingStudy) -> dict[str, Any]:
    findings = list(study.findings.all())
    return {
        "id": study.pk,
        "patient_id": study.patient_id,
        "study_date": study.study_date,
        "modality": study.modality,
        **_acquisition_fields(study.report),
        "description": study.description,
        "analysed_at": study.analysed_at,
        "version": study.version,
        "high_risk_levels": [f.level for f in findings if f.collapse_risk == CollapseRisk.HIGH],
        "not_assessable_levels": [
            f.level for f in findings if f.collapse_risk == CollapseRisk.NOT_ASSESSABLE
        ],
        "treat_signal_levels": [f.level for f in findings if f.treat_signal is True],
    }


def study_summary_out(study: m.ImagingStudy) -> s.ImagingStudySummaryOut:
    return s.ImagingStudySummaryOut(**_study_fields(study))


def study_out(study: m.ImagingStudy) -> s.ImagingStudyOut:
    return s.ImagingStudyOut(
        **_study_fields(study),
        study_instance_uid=study.study_instance_uid,
        series_instance_uid=study.series_instance_uid,
        report=study.report,
        findings=[finding_out(f) for f in study.findings.all()],
    )


def follow_up_out(fu: m.FollowUp) -> s.FollowUpOut:
    return s.FollowUpOut(
        id=fu.pk,
        procedure_id=fu.procedure_id,
        patient_id=fu.procedure.patient_id,
        study_id=fu.procedure.patient.study_id,
        timepoint=fu.timepoint,
        due_date=fu.due_date,
        window_start=fu.window_start,
        window_end=fu.window_end,
        completed_on=fu.completed_on,
        vas=fu.vas,
        analgesic_use=fu.analgesic_use,
        entered_via=fu.entered_via,
        version=fu.version,
        outcome=fu.outcome,
        outcome_on=fu.outcome_on,
        voided=fu.voided_at is not None,
    )


def procedure_out(procedure: m.Procedure) -> s.ProcedureOut:
    protocol = procedure.protocol if isinstance(procedure.protocol, dict) else {}
    return s.ProcedureOut(
        id=procedure.pk,
        patient_id=procedure.patient_id,
        study_id=procedure.patient.study_id,
        performed_on=procedure.performed_on,
        procedure_type=procedure.procedure_type,
        guidance=procedure.guidance,
        anaesthesia=procedure.anaesthesia,
        day_case=procedure.day_case,
        cementoplasty_site=procedure.cementoplasty_site,
        disc_level=procedure.disc_level,
        operator=procedure.operator,
        recorded_via=procedure.recorded_via,
        notes=procedure.notes,
        protocol=str(protocol.get("name", "")),
        version=procedure.version,
        status=procedure.status,
        cement_type=procedure.cement_type,
        fluoroscopy_time_s=procedure.fluoroscopy_time_s,
        dose_area_product_gycm2=procedure.dose_area_product_gycm2,
        voided=procedure.voided_at is not None,
        void_reason=procedure.void_reason,
        levels=[
            s.TreatedLevelOut(
                level=t.level,
                approach=t.approach,
                needle_gauge=t.needle_gauge,
                cement_volume_ml=t.cement_volume_ml,
                ablation_modality=t.ablation_modality,
                ablation_power_w=t.ablation_power_w,
                ablation_duration_s=t.ablation_duration_s,
                access=t.access,
                biopsy=t.biopsy,
                biopsy_result=t.biopsy_result,
            )
            for t in procedure.levels.all()
        ],
        leakages=[
            s.LeakageOut(
                leakage_type=lk.leakage_type,
                site=lk.site,
                symptomatic=lk.symptomatic,
                level=lk.treated_level.level if lk.treated_level else None,
            )
            for lk in procedure.leakages.select_related("treated_level")
        ],
        complications=[
            s.ComplicationOut(
                sir_class=c.sir_class, description=c.description, occurred_on=c.occurred_on
            )
            for c in procedure.complications.all()
        ],
        follow_ups=[
            follow_up_out(fu)
            for fu in procedure.follow_ups.select_related("procedure__patient").order_by(
                "due_date", "pk"
            )
        ],
    )

"""The registry's service layer: every write to the registry goes through these functions.

Keyword-only functions, each in one transaction, validating through the clinical core and raising
:class:`~spinewatch.registry.errors.RegistryError` (an ``InputError``) naming field and value.
Updates take ``expected_version`` (the version the caller read) and refuse a stale edit with
:class:`~spinewatch.registry.errors.StaleEditError`; a successful update bumps the version.
All writes funnel through :mod:`spinewatch.registry.services._base` (``created`` / ``changed`` /
``deleted``) -- the one place where an audit trail will be added.
"""

from spinewatch.registry.errors import NotFoundError, RegistryError, StaleEditError
from spinewatch.registry.services._base import UNCHANGED
from spinewatch.registry.services.cohort import (
    ATTRITION_COLUMNS,
    COHORT_COLUMNS,
    ImportSummary,
    cohort_attrition,
    cohort_frame,
    import_cohort,
)
from spinewatch.registry.services.follow_ups import (
    FollowUpResult,
    find_follow_up,
    record_follow_up,
    record_visit_outcome,
)
from spinewatch.registry.services.imaging import (
    add_imaging_study,
    findings_from_report,
    read_report,
    set_finding_decision,
    store_analysis,
)
from spinewatch.registry.services.level_check import (
    confirm_levels,
    finish_level_shift,
    plan_level_shift,
    record_level_shift,
)
from spinewatch.registry.services.merging import MergeSummary, merge_patients
from spinewatch.registry.services.pacs import (
    assign_received_study,
    dismiss_received_study,
    record_received_study,
    update_received_study,
)
from spinewatch.registry.services.patients import (
    IdentityData,
    add_diagnosis,
    create_patient,
    find_by_hospital_number,
    near_duplicates,
    next_study_id,
    update_patient,
    update_patient_identity,
)
from spinewatch.registry.services.portal import (
    DEFAULT_LINK_DAYS,
    LinkState,
    NewLink,
    PortalLinkError,
    create_link,
    find_link,
    hash_token,
    link_days,
    use_link,
)
from spinewatch.registry.services.procedures import (
    ComplicationRecord,
    LeakageRecord,
    ProcedureWarnings,
    plan_procedure,
    procedure_protocol,
    procedure_warnings,
    record_procedure,
    update_procedure,
)
from spinewatch.registry.services.sins import (
    SinsResult,
    imaging_part_of,
    imaging_points_of,
    record_sins_assessment,
    score_for,
)
from spinewatch.registry.services.surveillance import (
    DEFAULT_INTERVAL_DAYS,
    HIGH_RISK_INTERVAL_DAYS,
    advance_plan,
    default_interval_days,
    interval_rule,
    patient_risk_state,
    set_surveillance_plan,
)
from spinewatch.registry.services.voiding import void_record

__all__ = [
    "ATTRITION_COLUMNS",
    "COHORT_COLUMNS",
    "DEFAULT_INTERVAL_DAYS",
    "DEFAULT_LINK_DAYS",
    "HIGH_RISK_INTERVAL_DAYS",
    "UNCHANGED",
    "ComplicationRecord",
    "FollowUpResult",
    "IdentityData",
    "ImportSummary",
    "LeakageRecord",
    "LinkState",
    "MergeSummary",
    "NewLink",
    "NotFoundError",
    "PortalLinkError",
    "ProcedureWarnings",
    "RegistryError",
    "SinsResult",
    "StaleEditError",
    "add_diagnosis",
    "add_imaging_study",
    "advance_plan",
    "assign_received_study",
    "cohort_attrition",
    "cohort_frame",
    "confirm_levels",
    "create_link",
    "create_patient",
    "default_interval_days",
    "dismiss_received_study",
    "find_by_hospital_number",
    "find_follow_up",
    "find_link",
    "findings_from_report",
    "finish_level_shift",
    "hash_token",
    "imaging_part_of",
    "imaging_points_of",
    "import_cohort",
    "interval_rule",
    "link_days",
    "merge_patients",
    "near_duplicates",
    "next_study_id",
    "patient_risk_state",
    "plan_level_shift",
    "plan_procedure",
    "procedure_protocol",
    "procedure_warnings",
    "read_report",
    "record_follow_up",
    "record_level_shift",
    "record_procedure",
    "record_received_study",
    "record_sins_assessment",
    "record_visit_outcome",
    "score_for",
    "set_finding_decision",
    "set_surveillance_plan",
    "store_analysis",
    "update_patient",
    "update_patient_identity",
    "update_procedure",
    "update_received_study",
    "use_link",
    "void_record",
]

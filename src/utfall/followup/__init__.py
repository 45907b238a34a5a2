"""Follow-up programmes as data (``content/programmes``): scheduling and phase models."""

from __future__ import annotations

from utfall.followup.data import validate_end, validate_enrolment_data, validate_fields
from utfall.followup.models import (
    Condition,
    DataField,
    Duration,
    Phase,
    PhaseModel,
    Programme,
    Stage,
    add_months,
)
from utfall.followup.phases import (
    CheckFailure,
    PhaseState,
    TransitionError,
    allowed_transitions,
    entry_failures,
    start,
    transition,
)
from utfall.followup.registry import (
    ProgrammeRegistry,
    UnknownProgrammeError,
    default_programmes,
    get_programme,
    load_programme_file,
    parse_programme,
)
from utfall.followup.schedule import (
    STOCKHOLM,
    Completed,
    Enrolment,
    StageStatus,
    local_today,
    schedule,
    stage_status,
)

__all__ = [
    "STOCKHOLM",
    "CheckFailure",
    "Completed",
    "Condition",
    "DataField",
    "Duration",
    "Enrolment",
    "Phase",
    "PhaseModel",
    "PhaseState",
    "Programme",
    "ProgrammeRegistry",
    "Stage",
    "StageStatus",
    "TransitionError",
    "UnknownProgrammeError",
    "add_months",
    "allowed_transitions",
    "default_programmes",
    "entry_failures",
    "get_programme",
    "load_programme_file",
    "local_today",
    "parse_programme",
    "schedule",
    "stage_status",
    "start",
    "transition",
    "validate_end",
    "validate_enrolment_data",
    "validate_fields",
]

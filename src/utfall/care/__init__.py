"""Follow-up in the operational store: the service layer used by the CLI and the web app.

Plain functions taking a SQLAlchemy ``Connection`` (the caller owns the transaction)
and an :class:`~utfall.access.audit.Actor`. Every read or write of personal data is
checked with ``utfall.access.policy.require_person_access`` and then audited.
"""

from __future__ import annotations

from utfall.care._common import CareError, Issue, NotFound
from utfall.care.capture import record_assessment
from utfall.care.due import DueItem, due_list
from utfall.care.enrolment import (
    PhaseEntry,
    StageOwner,
    assign_stage,
    change_phase,
    end_enrolment,
    enrol,
    phase_history,
)
from utfall.care.overview import person_overview
from utfall.care.persons import accept_referral, check_person, find_person, register_person
from utfall.care.selfreport import (
    SelfReportForm,
    SelfReportRefused,
    issue_self_report_link,
    open_self_report,
    submit_self_report,
)
from utfall.care.timeline import (
    Timeline,
    domain_profile,
    timeline,
    timeline_chart,
    timeline_chart_svg,
)

__all__ = [
    "CareError",
    "DueItem",
    "Issue",
    "NotFound",
    "PhaseEntry",
    "SelfReportForm",
    "SelfReportRefused",
    "StageOwner",
    "Timeline",
    "accept_referral",
    "assign_stage",
    "change_phase",
    "check_person",
    "domain_profile",
    "due_list",
    "end_enrolment",
    "enrol",
    "find_person",
    "issue_self_report_link",
    "open_self_report",
    "person_overview",
    "phase_history",
    "record_assessment",
    "register_person",
    "submit_self_report",
    "timeline",
    "timeline_chart",
    "timeline_chart_svg",
]

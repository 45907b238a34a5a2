"""Own goals (record, review, consent across principals), self-report drafts and goals,
is_submitted, and the own-view link (issue, open, revoke) — all checked and audited."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine, String, cast, select

from utfall.access.policy import AccessDenied, PersonNotFound
from utfall.care import (
    CareError,
    enrol,
    issue_self_report_link,
    register_person,
    submit_self_report,
)
from utfall.care.goals import add_goal, list_goals, open_goals, review_goal
from utfall.care.own_view import (
    OwnViewRefused,
    issue_own_view_link,
    open_own_view,
    revoke_own_view_links,
)
from utfall.care.selfreport import is_submitted, load_draft, raised_flags, save_draft
from utfall.store.models import AuditEvent
from utfall.store.models_care import SelfReportToken

from .conftest import CLINICIAN, LIFE, PNR_WOMAN, SOCIAL, START

NOW = dt.datetime(2025, 7, 10, 8, 0, tzinfo=dt.UTC)
WHO5 = {f"item_{i}": 3 for i in range(1, 6)}


def _person(engine: Engine) -> tuple[str, str]:
    with engine.begin() as conn:
        key = register_person(conn, CLINICIAN, PNR_WOMAN)
        enrolment = enrol(conn, CLINICIAN, key, "vip-beroende", "R-LARO", START)
    return key, enrolment


def test_goals_recorded_reviewed_and_consent_filtered(engine: Engine) -> None:
    key, _ = _person(engine)
    with engine.begin() as conn:
        goal = add_goal(conn, CLINICIAN, key, "housing", "  Eget boende  ", now=NOW)
        with pytest.raises(CareError) as bad:
            add_goal(conn, CLINICIAN, key, "flying", "")
        assert {i.where for i in bad.value.issues} == {"goal.domain", "goal.text"}
        with pytest.raises(CareError):
            review_goal(conn, CLINICIAN, goal, "maybe")
        review_goal(conn, CLINICIAN, goal, "partly", stage="month-6", note="på gång",
                    now=NOW + dt.timedelta(days=180))
        goals = list_goals(conn, CLINICIAN, key)
        assert [(g.text, g.domain, g.status) for g in goals] == [
            ("Eget boende", "housing", "partly")]
        assert goals[0].domain_label == {"sv": "Boende", "en": "Housing"}
        # the municipality has no relation: refused, nothing shown
        with pytest.raises((AccessDenied, PersonNotFound)):
            list_goals(conn, SOCIAL, key)
        events = conn.execute(select(AuditEvent.__table__.c.action, AuditEvent.__table__.c.detail)
                              .where(AuditEvent.__table__.c.person_key == key)).all()
    details = [str(e.detail) for e in events]
    assert any("goal_review" in d for d in details) and any("'goals'" in d or '"goals"' in d
                                                           for d in details)


def test_self_report_drafts_goals_flags_and_is_submitted(engine: Engine) -> None:
    key, enrolment = _person(engine)
    with engine.begin() as conn:
        old = add_goal(conn, CLINICIAN, key, "occupation", "Börja studera", now=NOW)
        token = issue_self_report_link(conn, CLINICIAN, enrolment, "month-6",
                                       instruments=["who-5", "phq-9"], now=NOW)
        token_id = conn.execute(select(SelfReportToken.__table__.c.id)).scalar_one()
        assert not is_submitted(conn, token) and not is_submitted(conn, token_id)
        assert not is_submitted(conn, "unknown") and not is_submitted(conn, 999)
        assert load_draft(conn, token, now=NOW) == ({}, 0)
        save_draft(conn, token, {"who-5": {"item_1": 2}}, 1, now=NOW)
        save_draft(conn, token, {"who-5": WHO5}, 2, now=NOW)
        assert load_draft(conn, token, now=NOW) == ({"who-5": WHO5}, 2)
        assert [g.id for g in open_goals(conn, key, "R-LARO")] == [old]
        phq = {f"item_{i}": 1 for i in range(1, 10)}
        assert raised_flags({"who-5": WHO5, "phq-9": phq}) == {"phq-9": ["suicidal_thoughts"]}
        assert raised_flags({"phq-9": dict(phq, item_9=0)}) == {}
        with pytest.raises(CareError):  # a review of someone else's (unknown) goal
            submit_self_report(conn, token, {"who-5": WHO5, "phq-9": phq},
                               goals={"reviews": [{"goal_id": 12345, "status": "not"}]},
                               now=NOW)
        assert not is_submitted(conn, token)
        submit_self_report(conn, token, {"who-5": WHO5, "phq-9": phq}, goals={
            "new": [{"domain": "health", "text": "Sova bättre"}],
            "reviews": [{"goal_id": old, "status": "achieved"}]}, now=NOW)
        assert is_submitted(conn, token) and is_submitted(conn, token_id)
        goals = {g.text: g for g in list_goals(conn, CLINICIAN, key)}
        assert goals["Börja studera"].status == "achieved"
        assert goals["Börja studera"].reviews[-1]["source"] == "self_report"
        assert goals["Sova bättre"].source == "self_report"
        assert open_goals(conn, key, "R-LARO")[0].text == "Sova bättre"
        from utfall.store.models_goals import SelfReportDraft

        assert conn.execute(select(SelfReportDraft.__table__)).first() is None


def test_own_view_link_open_and_revoke(engine: Engine) -> None:
    key, enrolment = _person(engine)
    with engine.begin() as conn:
        token = issue_self_report_link(conn, CLINICIAN, enrolment, "month-6",
                                       instruments=["who-5", "life-situation"], now=NOW)
        submit_self_report(conn, token, {"who-5": WHO5, "life-situation": LIFE}, now=NOW)
        add_goal(conn, CLINICIAN, key, "housing", "Eget boende", now=NOW)
        link = issue_own_view_link(conn, CLINICIAN, key, now=NOW)
        assert key not in link and PNR_WOMAN not in link
        view = open_own_view(conn, link, now=NOW + dt.timedelta(days=1))
        assert view.unit_name == "LARO-mottagningen"
        assert [s.instrument for s in view.series] == ["who-5"]
        point = view.series[0].points[0]
        assert point["value"] == 15 and point["band_label"]["sv"].startswith("Du har")
        assert [g.text for g in view.goals] == ["Eget boende"]
        profile = {p["measure"]: p for p in view.profile}
        assert profile["housing"]["value"] == 1 and profile["quality_of_life"]["value"] == 8
        assert profile["housing"]["label"]["sv"].startswith("Boende")
        actors = conn.execute(select(AuditEvent.__table__.c.role).where(
            AuditEvent.__table__.c.person_key == key,
            cast(AuditEvent.__table__.c.detail, String).like("%own_view%"))).scalars().all()
        assert "person" in actors  # the person's own read is audited
        with pytest.raises(OwnViewRefused):
            open_own_view(conn, link + "x", now=NOW)
        assert revoke_own_view_links(conn, CLINICIAN, key, now=NOW) == 1
        with pytest.raises(OwnViewRefused) as closed:
            open_own_view(conn, link, now=NOW + dt.timedelta(days=1))
        assert closed.value.code == "own_view_closed"
        with pytest.raises((AccessDenied, PersonNotFound)):
            issue_own_view_link(conn, SOCIAL, key, now=NOW)


def test_goals_reviewed_indicator(engine: Engine) -> None:
    """The external indicator over the store: a follow-up with a review counts in the
    numerator, a follow-up without one only in the denominator."""
    from utfall.analytics.semantics.catalogue import load_catalogue
    from utfall.care import record_assessment
    from utfall.care.goals_indicator import external_rows

    ind = load_catalogue().describe("goals_reviewed_at_followup")
    key, _enrolment = _person(engine)
    with engine.begin() as conn:
        other = register_person(conn, CLINICIAN, "198001011231")
        enrol(conn, CLINICIAN, other, "vip-beroende", "R-LARO", START)
        for person in (key, other):
            goal = add_goal(conn, CLINICIAN, person, "health", "Må bättre", now=NOW)
            record_assessment(conn, CLINICIAN, person, "who-5", WHO5, stage="month-6",
                              unit_id="R-LARO", on_date=dt.date(2025, 7, 15))
            if person == key:
                review_goal(conn, CLINICIAN, goal, "achieved", now=NOW + dt.timedelta(days=5))
        rows = external_rows(conn, [ind], dt.date(2025, 12, 31)).to_pylist()
    cells = {(r["breakdown"], r["level"]): (r["numerator"], r["denominator"]) for r in rows}
    assert cells == {("unit_id", "R-LARO"): (1, 2), ("total", ""): (1, 2)}
    assert {r["period"] for r in rows} == {"2025"}

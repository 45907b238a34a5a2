"""The person's own goals: free text plus a life domain, recorded at intake (by staff
or by the person in the self-report) and reviewed at each follow-up
(achieved / partly / not / changed).

Every read and write goes through :func:`utfall.care._common.access` (policy + audit in
one place). Goals recorded by another principal's unit are shown only with the
person's consent for the category ``plan`` (as the timeline's other entries).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import yaml
from sqlalchemy import Connection, select

from utfall.access.audit import Actor
from utfall.care._common import CareError, Issue, access, now_utc
from utfall.store.models_goals import Goal, GoalReview

MAX_TEXT = 1000
MAX_NEW = 5


@cache
def _content() -> dict[str, Any]:
    text = resources.files("utfall.content").joinpath("goals/domains.yaml").read_text("utf-8")
    data: dict[str, Any] = yaml.safe_load(text)
    return data


def domains() -> list[dict[str, str]]:
    """Life domains ``[{id, sv, en}]`` in screen order."""
    return list(_content()["domains"])


def statuses() -> list[dict[str, str]]:
    """Review statuses ``[{id, sv, en}]``."""
    return list(_content()["statuses"])


def _label(items: list[dict[str, str]], key: str) -> dict[str, str]:
    for item in items:
        if item["id"] == key:
            return {"sv": item["sv"], "en": item["en"]}
    return {"sv": key, "en": key}


@dataclass
class GoalView:
    """A goal with its reviews, newest review last."""

    id: int
    domain: str
    domain_label: dict[str, str]
    text: str
    source: str
    unit_id: str
    recorded_at: dt.datetime
    reviews: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> str | None:
        """The latest status (None: not reviewed yet)."""
        return self.reviews[-1]["status"] if self.reviews else None


def _check_goal(domain: Any, text: Any, where: str) -> tuple[str, str]:
    ids = {d["id"] for d in domains()}
    issues = []
    if domain not in ids:
        issues.append(Issue(f"{where}.domain", "invalid_domain", "välj ett livsområde",
                            "choose a life domain"))
    clean = text.strip() if isinstance(text, str) else ""
    if not clean:
        issues.append(Issue(f"{where}.text", "required", "skriv ditt mål", "write your goal"))
    elif len(clean) > MAX_TEXT:
        issues.append(Issue(f"{where}.text", "too_long", f"högst {MAX_TEXT} tecken",
                            f"at most {MAX_TEXT} characters"))
    if issues:
        raise CareError("invalid_goal", "målet kan inte sparas", "the goal cannot be saved",
                        issues)
    return str(domain), clean


def _check_status(status: Any, where: str) -> str:
    if status not in {s["id"] for s in statuses()}:
        raise CareError("invalid_goal_status", "välj hur det har gått",
                        "choose how it has gone",
                        [Issue(where, "invalid_status", "välj ett av alternativen",
                               "choose one of the options")])
    return str(status)


def _goal_row(conn: Connection, goal_id: int) -> Any:
    row = conn.execute(select(Goal.__table__).where(Goal.__table__.c.id == goal_id)).first()
    if row is None:
        from utfall.care._common import NotFound

        raise NotFound("goal_not_found", "målet finns inte", "no such goal")
    return row


def add_goal(conn: Connection, actor: Actor, person_key: str, domain: str, text: str, *,
             enrolment_id: str | None = None, now: dt.datetime | None = None) -> int:
    """Record a goal of the person (staff at their unit); returns its id."""
    with conn.begin_nested():  # access first: the answer never depends on the input
        access(conn, actor, person_key, "create", {"what": "goal", "domain": str(domain)})
        domain, text = _check_goal(domain, text, "goal")
        return int(conn.execute(Goal.__table__.insert().values(
            person_key=person_key, unit_id=actor.unit_id or "", enrolment_id=enrolment_id,
            domain=domain, text=text, source="staff", recorded_by=actor.user,
            recorded_at=now_utc(now))).inserted_primary_key[0])  # type: ignore[index]


def review_goal(conn: Connection, actor: Actor, goal_id: int, status: str, *,
                stage: str | None = None, note: str | None = None,
                now: dt.datetime | None = None) -> int:
    """Record a goal's status at a follow-up (staff); returns the review id."""
    status = _check_status(status, "status")
    if note is not None and len(note) > 2000:
        raise CareError("too_large", "anteckningen är för lång", "the note is too long",
                        [Issue("note", "too_long", "högst 2000 tecken", "at most 2000 characters")])
    goal = _goal_row(conn, goal_id)
    with conn.begin_nested():
        access(conn, actor, goal.person_key, "change",
               {"what": "goal_review", "goal_id": goal_id, "status": status})
        return int(conn.execute(GoalReview.__table__.insert().values(
            goal_id=goal_id, status=status, stage=stage, note=(note or "").strip() or None,
            source="staff", unit_id=actor.unit_id or "", reviewed_by=actor.user,
            reviewed_at=now_utc(now))).inserted_primary_key[0])  # type: ignore[index]


def _all_goals(conn: Connection, person_key: str) -> list[GoalView]:
    g, r = Goal.__table__, GoalReview.__table__
    views: dict[int, GoalView] = {}
    for row in conn.execute(select(g).where(g.c.person_key == person_key).order_by(g.c.id)):
        views[row.id] = GoalView(
            id=row.id, domain=row.domain, domain_label=_label(domains(), row.domain),
            text=row.text, source=row.source, unit_id=row.unit_id, recorded_at=row.recorded_at)
    if views:
        for row in conn.execute(select(r).where(r.c.goal_id.in_(list(views)))
                                .order_by(r.c.reviewed_at, r.c.id)):
            views[row.goal_id].reviews.append({
                "status": row.status, "status_label": _label(statuses(), row.status),
                "stage": row.stage, "note": row.note, "source": row.source,
                "reviewed_at": row.reviewed_at})
    return list(views.values())


def visible_goals(conn: Connection, scope: Any, person_key: str) -> list[GoalView]:
    """The person's goals an :class:`~utfall.access.policy.AccessScope` allows (no audit:
    callers have logged the read)."""
    from utfall.access.policy import filter_entries, unit_organisations

    return filter_entries(_all_goals(conn, person_key), scope, unit_organisations(conn),
                          category_of=lambda _goal: "plan")


def list_goals(conn: Connection, actor: Actor, person_key: str) -> list[GoalView]:
    """The person's goals the actor may see (audited read)."""
    from utfall.access.policy import access_scope

    grant = access(conn, actor, person_key, "read", {"what": "goals"})
    scope = access_scope(conn, actor, person_key, emergency=bool(grant.emergency))
    return visible_goals(conn, scope, person_key)


# -- the person's goals in the self-report ------------------------------------------------


def open_goals(conn: Connection, person_key: str, unit_id: str) -> list[GoalView]:
    """Goals to review in a self-report: not yet achieved or changed, recorded by the
    link's own organisation (no audit: :func:`open_self_report` logged the read)."""
    from utfall.access.policy import AccessScope, unit_organisations

    org = unit_organisations(conn).get(unit_id)
    scope = AccessScope(person_key, org)
    return [g for g in visible_goals(conn, scope, person_key)
            if g.status not in ("achieved", "changed")]


def check_self_report_goals(conn: Connection, person_key: str, goals: Mapping[str, Any]
                            ) -> dict[str, list[Any]]:
    """Validate ``{"new": [{domain, text}], "reviews": [{goal_id, status}]}`` from the
    self-report (field names ``goals.new.N.text``, ``goals.review.ID``)."""
    new: list[tuple[str, str]] = []
    for n, goal in enumerate(list(goals.get("new") or [])[:MAX_NEW]):
        if not isinstance(goal, Mapping) or not str(goal.get("text") or "").strip():
            continue
        new.append(_check_goal(goal.get("domain"), goal.get("text"), f"goals.new.{n}"))
    reviews: list[tuple[int, str]] = []
    for review in goals.get("reviews") or []:
        if not isinstance(review, Mapping) or not review.get("status"):
            continue
        try:
            goal_id = int(review.get("goal_id"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            goal_id = -1
        row = conn.execute(select(Goal.__table__.c.person_key)
                           .where(Goal.__table__.c.id == goal_id)).first()
        if row is None or row[0] != person_key:
            raise CareError("goal_not_found", "målet finns inte", "no such goal",
                            [Issue(f"goals.review.{goal_id}", "goal_not_found",
                                   "okänt mål", "unknown goal")])
        reviews.append((goal_id, _check_status(review.get("status"),
                                               f"goals.review.{goal_id}")))
    return {"new": new, "reviews": reviews}


def record_self_report_goals(conn: Connection, actor: Actor, person_key: str, unit_id: str,
                             enrolment_id: str | None, stage: str,
                             checked: Mapping[str, list[Any]], *,
                             now: dt.datetime | None = None) -> None:
    """Store the person's own goals and reviews from a self-report (checked first)."""
    if not checked.get("new") and not checked.get("reviews"):
        return
    instant = now_utc(now)
    access(conn, actor, person_key, "create",
           {"what": "goals_self_report", "new": len(checked.get("new") or []),
            "reviews": len(checked.get("reviews") or [])})
    for domain, text in checked.get("new") or []:
        conn.execute(Goal.__table__.insert().values(
            person_key=person_key, unit_id=unit_id, enrolment_id=enrolment_id, domain=domain,
            text=text, source="self_report", recorded_by=actor.user, recorded_at=instant))
    for goal_id, status in checked.get("reviews") or []:
        conn.execute(GoalReview.__table__.insert().values(
            goal_id=goal_id, status=status, stage=stage, note=None, source="self_report",
            unit_id=unit_id, reviewed_by=actor.user, reviewed_at=instant))

"""Helpers shared by the server-rendered pages."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import RedirectResponse

from utfall.domain.identity import IdentityNumberError
from utfall.i18n import t
from utfall.web import services
from utfall.web.security import Principal

CARE = ("clinician", "social_worker", "unit_manager")
PERSON_KEY_LEN = 64


def _text(key: str, locale: str) -> str:
    """A message in ``locale``."""
    return t(key, locale)


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _safe_next(target: str | None) -> str:
    """Only local paths (no open redirects)."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def _home(principal: Principal) -> str:
    return {"clinician": "/worklist", "social_worker": "/worklist", "unit_manager": "/dashboard",
            "analyst": "/analytics", "admin": "/admin/users"}.get(principal.role, "/")


def _date(value: Any, default: dt.date | None = None) -> dt.date | None:
    if value in (None, ""):
        return default
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        return None


def _check_key(request: Request, person_key: str) -> None:
    from fastapi import HTTPException

    if len(person_key) != PERSON_KEY_LEN or not all(c in "0123456789abcdef" for c in person_key):
        raise HTTPException(404)
    request.state.person_key = person_key


def _care_error_fields(exc: Any, locale: str) -> tuple[str, dict[str, str]]:
    """Summary and field-level messages of a CareError."""
    summary = exc.en if locale == "en" else exc.sv
    fields: dict[str, str] = {}
    for issue in getattr(exc, "issues", []):
        text = issue.en if locale == "en" else issue.sv
        key = issue.where or "_"
        fields[key] = f"{fields[key]}; {text}" if key in fields else text
    return summary, fields


def _id_error(exc: IdentityNumberError, locale: str) -> str:
    """The field message for an invalid identity number (never repeats the number)."""
    base = t("web.search.invalid", locale)
    return base if locale != "en" else f"{base} ({exc})"


def _person_context(conn: Any, principal: Principal, person_key: str,
                    emergency_reason: str | None, locale: str) -> dict[str, Any]:
    """Everything the person page shows, from the one checked and logged use case."""
    from utfall.access.relations import BASIS_TEXT, HANDOVER_BASES
    from utfall.care import person_overview

    view = person_overview(conn, principal.actor, person_key,
                           emergency_reason=emergency_reason)
    tl = view["timeline"]
    return {
        "person_key": person_key,
        "overview": view,  # identity, programmes, latest scores, flags, consent, responsible
        "masked": view["masked"],
        "timeline": tl,
        "entries": list(reversed(tl.entries())),
        "hidden": tl.hidden,
        "chart": services.chart_svg(tl, locale),
        "consents": view["consents"],
        "sips": view["sips"],
        "relations": view["relations"],
        "bases": BASIS_TEXT,
        "handover_bases": HANDOVER_BASES,
        "units": services.units(conn),
        "instruments": services.instruments(),
        "emergency": tl.emergency,
        "stages": _stages(tl),
    }


def _stages(tl: Any) -> dict[str, list[tuple[str, Any]]]:
    """Stages per programme of the person's enrolments (for the self-report form)."""
    from utfall.followup import UnknownProgrammeError, get_programme

    out: dict[str, list[tuple[str, Any]]] = {}
    for e in tl.enrolments:
        try:
            out[e.programme] = [(s.id, s.title) for s in get_programme(e.programme).stages]
        except UnknownProgrammeError:
            continue
    return out

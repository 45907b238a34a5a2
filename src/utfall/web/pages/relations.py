"""Care-relation pages: relations of a person, the unit's relations and referrals."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from utfall.domain.identity import IdentityNumberError, parse_identity_number
from utfall.web.deps import checked_form, needs_role
from utfall.web.pages._common import (
    _care_error_fields,
    _check_key,
    _date,
    _id_error,
    _person_context,
    _redirect,
    _text,
)
from utfall.web.render import locale_of, render
from utfall.web.security import (
    Principal,
)

router = APIRouter(include_in_schema=False)


@router.post("/persons/{person_key}/relations", response_class=HTMLResponse)
def relation_post(request: Request, person_key: str,
                  form: dict[str, Any] = Depends(checked_form),
                  principal: Principal = Depends(needs_role("clinician", "social_worker"))
                  ) -> Response:
    """Refer or assign the person to another unit (the user's unit has the relation)."""
    from utfall.access.relations import RelationError, create_relation
    from utfall.care import check_person

    _check_key(request, person_key)
    locale = locale_of(request)
    engine = request.app.state.engine
    with engine.connect() as conn:
        check_person(conn, principal.actor, person_key, "change")
    valid_to = _date(form.get("valid_to")) if form.get("valid_to") else None
    error: str | None = None
    if form.get("valid_to") and valid_to is None:
        error = _text("web.form.bad_date", locale)
    else:
        try:
            with engine.begin() as conn:
                create_relation(conn, principal.actor, person_key,
                                unit_id=str(form.get("unit_id") or ""),
                                basis=str(form.get("basis") or ""), valid_to=valid_to,
                                note=str(form.get("note") or "")[:500] or None)
            return _redirect(f"/persons/{person_key}?saved=relation#relations")
        except RelationError as exc:
            error = exc.en if locale == "en" else exc.sv
    with engine.begin() as conn:
        ctx = _person_context(conn, principal, person_key, None, locale)
    ctx["relation_error"] = error
    return render(request, "person.html", ctx, 422)


@router.get("/relations", response_class=HTMLResponse)
def relations_page(request: Request,
                   principal: Principal = Depends(needs_role("unit_manager"))) -> Response:
    """The unit manager accepts referrals to the unit (identity number in the body)."""
    return render(request, "relations.html", {"values": {}, "errors": {}})


@router.post("/relations/referral", response_class=HTMLResponse)
def referral_post(request: Request, form: dict[str, Any] = Depends(checked_form),
                  principal: Principal = Depends(needs_role("unit_manager"))) -> Response:
    """Accept a referral: the unit gets a care relation with the person (audited)."""
    from utfall.care import CareError, accept_referral

    locale = locale_of(request)
    raw = str(form.get("identity_number", "")).strip()
    valid_to = _date(form.get("valid_to")) if form.get("valid_to") else None
    errors: dict[str, str] = {}
    if form.get("valid_to") and valid_to is None:
        errors["valid_to"] = _text("web.form.bad_date", locale)
    if not str(form.get("note") or "").strip():
        errors["note"] = _text("web.relation.note_needed", locale)
    try:
        parse_identity_number(raw)
    except IdentityNumberError as exc:
        errors["identity_number"] = _id_error(exc, locale)
    if errors:
        return render(request, "relations.html", {"values": form, "errors": errors}, 422)
    try:
        with request.app.state.engine.begin() as conn:
            key = accept_referral(conn, principal.actor, raw,
                                  note=str(form.get("note") or "")[:500], valid_to=valid_to)
    except CareError as exc:
        summary, fields = _care_error_fields(exc, locale)
        return render(request, "relations.html", {"values": form, "errors": fields,
                                                  "summary": summary}, 422)
    return _redirect(f"/persons/{key}?saved=relation#relations")

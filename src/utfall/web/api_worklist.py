"""JSON API of the unit's work list: a page, the CSV export and stage assignment.

``GET /api/worklist`` → ``{"items": [...], "total": N, "page": P, "page_size": S}``;
bad parameters give 422. Identity numbers are never query parameters: find a person's
key with ``POST /api/persons/search`` and filter with ``person=<key>``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from utfall.web.deps import csrf_checked, needs_role
from utfall.web.render import locale_of
from utfall.web.security import Principal
from utfall.web.worklist_view import SortParam, StatusParam, csv_name, csv_text, make_filter

router = APIRouter(prefix="/api")
CARE = ("clinician", "social_worker", "unit_manager")
RECORDERS = ("clinician", "social_worker")
UNAUTH: dict[int | str, dict[str, Any]] = {
    401: {"description": "No valid session or token"},
    403: {"description": "Outside the caller's scope (role, unit or consent)"}}
Programme = Annotated[str | None, Query(max_length=40, pattern=r"^[a-z0-9-]+$")]
Stage = Annotated[str | None, Query(max_length=40, pattern=r"^[a-z0-9-]+$")]
Worker = Annotated[str | None, Query(max_length=100)]
PersonKey = Annotated[str | None, Query(pattern=r"^[0-9a-f]{64}$",
                                        description="pseudonymous person key")]


def _care_error(exc: Any) -> JSONResponse:
    issues = [{"where": i.where, "code": i.code, "sv": i.sv, "en": i.en}
              for i in getattr(exc, "issues", [])]
    status = 404 if type(exc).__name__ == "NotFound" else 422
    return JSONResponse({"detail": exc.en, "code": exc.code, "sv": exc.sv, "en": exc.en,
                         "issues": issues}, status_code=status)


@router.get("/worklist", responses=UNAUTH, tags=["unit"])
def worklist(request: Request,
             page: Annotated[int, Query(ge=1, le=100_000)] = 1,
             page_size: Annotated[int, Query(ge=1, le=200)] = 50,
             status: StatusParam = "open", programme: Programme = None, stage: Stage = None,
             worker: Worker = None, mine: bool = False, person: PersonKey = None,
             sort: SortParam = "status",
             principal: Principal = Depends(needs_role(*CARE))) -> Any:
    """A page of the caller's unit's follow-ups (status ``open``: overdue, due, upcoming
    and missed), filtered and sorted on the server; each person on the page is logged."""
    from utfall.care import CareError
    from utfall.care.worklist import worklist_page

    flt = make_filter(status, programme, stage, worker, mine, person, sort)
    try:
        with request.app.state.engine.begin() as conn:
            result = worklist_page(conn, principal.actor, flt, page=page, page_size=page_size,
                                   unit_id=principal.unit_id, locale=locale_of(request))
    except CareError as exc:
        return _care_error(exc)
    return {"items": [i.as_dict() for i in result.items], "total": result.total,
            "page": result.page, "page_size": result.page_size}


@router.get("/worklist/export", responses={**UNAUTH, 200: {"content": {"text/csv": {}}}},
            tags=["unit"], response_class=Response)
def worklist_export(request: Request, status: StatusParam = "open",
                    programme: Programme = None, stage: Stage = None, worker: Worker = None,
                    mine: bool = False, person: PersonKey = None, sort: SortParam = "status",
                    principal: Principal = Depends(needs_role(*CARE))) -> Response:
    """Every row of the filtered list as CSV (UTF-8 with BOM, ``;``, masked persons)."""
    return export_response(request, principal,
                           make_filter(status, programme, stage, worker, mine, person, sort))


def export_response(request: Request, principal: Principal, flt: Any) -> Response:
    """The CSV download of the filtered list (shared with the page route)."""
    from utfall.care import CareError
    from utfall.care.worklist import export_rows
    from utfall.web import services

    locale = locale_of(request)
    try:
        with request.app.state.engine.begin() as conn:
            items = export_rows(conn, principal.actor, flt, unit_id=principal.unit_id,
                                locale=locale)
    except CareError as exc:
        return _care_error(exc)
    name = csv_name(principal.unit_id, services.today())
    return Response(csv_text(items, locale).encode("utf-8"), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"',
                             "Cache-Control": "no-store"})


class AssignIn(BaseModel):
    enrolment_id: str = Field(max_length=40)
    stage: str = Field(max_length=40)
    worker: str | None = Field(default=None, max_length=100)


@router.post("/worklist/assignments", responses=UNAUTH, tags=["unit"])
def worklist_assign(body: AssignIn, request: Request,
                    principal: Principal = Depends(needs_role(*RECORDERS))) -> Any:
    """Make a staff member of the caller's unit responsible for a stage (``worker``
    null or empty: nobody). Audited as a change of the person's data."""
    from utfall.care import CareError
    from utfall.care.worklist import assign_worker

    csrf_checked(request, principal)
    try:
        with request.app.state.engine.begin() as conn:
            owner = assign_worker(conn, principal.actor, body.enrolment_id, body.stage,
                                  body.worker)
    except CareError as exc:
        return _care_error(exc)
    return {"enrolment_id": body.enrolment_id, "stage": owner.stage,
            "worker": owner.worker or None, "unit_id": owner.unit_id}

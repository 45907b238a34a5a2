"""The unit's page of missing register data (``/register/gaps``), so staff can fill
the gaps before the next export. Thin over ``utfall.interop.register.export``."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from utfall.web.deps import needs_role
from utfall.web.render import locale_of, render
from utfall.web.security import Principal

router = APIRouter(include_in_schema=False)  # a page, like web/pages/
CARE = ("clinician", "social_worker", "unit_manager")


@router.get("/register/gaps", response_class=HTMLResponse)
def register_gaps(request: Request,
                  register: str = Query(default="sbr", pattern=r"^[a-z][a-z0-9-]{0,39}$"),
                  principal: Principal = Depends(needs_role(*CARE))) -> HTMLResponse:
    """Forms of the caller's unit that lack required data (person, form, variable, why)."""
    from utfall.followup import local_today
    from utfall.interop.register import MappingError, load_mapping
    from utfall.interop.register.export import unit_gaps

    try:
        mapping = load_mapping(register)
    except MappingError:
        return render(request, "error.html", {"status": 404, "key": "web.error.404"}, 404)
    with request.app.state.engine.begin() as conn:
        gaps = unit_gaps(conn, principal.actor, mapping, principal.unit_id, local_today())
    locale = locale_of(request)
    forms = {f.id: (f.title.en if locale == "en" else f.title.sv) for f in mapping.forms}
    return render(request, "register_gaps.html", {
        "gaps": gaps, "forms": forms, "register": mapping.register_id,
        "version": mapping.version, "provisional": mapping.provisional})

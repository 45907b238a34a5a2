"""File downloads of the web app: the person's access log as CSV or JSON.

``GET /persons/<key>/access-log/download?format=csv|json`` hands out the same rows
as the ``/persons/<key>/access-log`` page, through the same checked and logged use
case (``utfall.access.extracts.access_log_for``); CSV cells are neutralised against
formula injection.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response

from utfall.access.person_log import media_type, render_person_log
from utfall.web.deps import needs_role
from utfall.web.security import Principal

router = APIRouter(include_in_schema=False)
CARE = ("clinician", "social_worker", "unit_manager")


@router.get("/persons/{person_key}/access-log/download")
def access_log_download(request: Request, person_key: str,
                        format: Literal["csv", "json"] = "csv",
                        principal: Principal = Depends(needs_role(*CARE))) -> Response:
    """The person's access extract as a file to hand over."""
    from utfall.access.extracts import access_log_for

    if len(person_key) != 64 or not all(c in "0123456789abcdef" for c in person_key):
        raise HTTPException(404)
    request.state.person_key = person_key  # a refusal is itself logged
    with request.app.state.engine.begin() as conn:
        rows = access_log_for(conn, principal.actor, person_key)
    body = render_person_log(rows, format)
    name = f"atkomstlogg-{person_key[:12]}.{format}"
    return Response(body, media_type=media_type(format),
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})

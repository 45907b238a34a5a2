"""JSON API of invitations: send a self-report link by e-mail or SMS, list what was sent.

``POST /api/persons/{key}/self-report-links/{link_id}/invitations`` ``{channel, to}`` →
201 ``{invitation_id, channel, to (masked), status, reminders_at}``; a bad address is a
422 with ``issues[].where == "address"``, an answered or closed link 409. ``GET
…/messages`` → the link's state and message log (recipients masked). The link id is
the ``link_id`` returned when the link was issued. Checked and audited in
``utfall.messaging.invitations``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from utfall.web.deps import csrf_checked, needs_role
from utfall.web.security import Principal

router = APIRouter(prefix="/api")
SENDERS = ("clinician", "social_worker")
UNAUTH: dict[int | str, dict[str, Any]] = {
    401: {"description": "No valid session or token"},
    403: {"description": "Outside the caller's scope (role, unit or consent)"},
    404: {"description": "No such person or link"}}
PersonKey = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$", description="pseudonymous person key")]
LinkId = Annotated[int, Path(ge=1, le=2**31 - 1, description="id of the self-report link")]


class InvitationIn(BaseModel):
    channel: Literal["email", "sms"]
    to: str = Field(max_length=300, description="e-mail address or mobile number")


def _error(exc: Any) -> JSONResponse:
    from utfall.care import NotFound
    from utfall.messaging.invitations import LinkClosed

    status = 404 if isinstance(exc, NotFound) else 409 if isinstance(exc, LinkClosed) else 422
    issues = [{"where": i.where, "code": i.code, "sv": i.sv, "en": i.en} for i in exc.issues]
    return JSONResponse({"detail": exc.en, "code": exc.code, "sv": exc.sv, "en": exc.en,
                         "issues": issues}, status_code=status)


@router.post("/persons/{person_key}/self-report-links/{link_id}/invitations", status_code=201,
             responses=UNAUTH, tags=["persons"])
def invite(person_key: PersonKey, link_id: LinkId, body: InvitationIn, request: Request,
           principal: Principal = Depends(needs_role(*SENDERS))) -> Any:
    """Send the link to the person by e-mail or SMS; reminders follow until answered."""
    from utfall.care import CareError
    from utfall.messaging.invitations import send_invitation

    request.state.person_key = person_key
    csrf_checked(request, principal)
    try:
        with request.app.state.engine.begin() as conn:
            sent = send_invitation(conn, principal.actor, person_key, link_id, body.channel,
                                   body.to)
    except CareError as exc:
        return _error(exc)
    return {"invitation_id": sent.invitation_id, "channel": sent.channel,
            "to": sent.to_masked, "status": sent.status,
            "reminders_at": [at.isoformat() for at in sent.reminders_at]}


@router.get("/persons/{person_key}/self-report-links/{link_id}/messages", responses=UNAUTH,
            tags=["persons"])
def messages(person_key: PersonKey, link_id: LinkId, request: Request,
             principal: Principal = Depends(needs_role(*SENDERS))) -> Any:
    """The link's state and the messages sent for it (recipients masked)."""
    from utfall.care import CareError
    from utfall.messaging.invitations import link_messages

    request.state.person_key = person_key
    try:
        with request.app.state.engine.begin() as conn:
            view = link_messages(conn, principal.actor, person_key, link_id)
    except CareError as exc:
        return _error(exc)
    return {"state": view.state, "expires_at": view.expires_at.isoformat(),
            "messages": [{**m, "sent_at": m["sent_at"].isoformat()} for m in view.messages],
            "invitations": view.invitations}

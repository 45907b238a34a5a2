"""Invitation pages: a self-report link's QR code, sending it by e-mail or SMS, and
what was sent. Every use case is in ``utfall.messaging.invitations`` (checked and
audited there); the recipient's address is used to send and never shown again."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from fastapi.responses import HTMLResponse, Response

from utfall.config import get_settings
from utfall.web.deps import checked_form, needs_role
from utfall.web.pages._common import _check_key, _redirect, _text
from utfall.web.render import locale_of, render
from utfall.web.security import Principal

router = APIRouter(include_in_schema=False)
SENDERS = ("clinician", "social_worker")
LinkId = Path(ge=1, le=2**31 - 1)


def _page(request: Request, principal: Principal, person_key: str, link_id: int,
          errors: dict[str, str] | None = None, values: dict[str, str] | None = None,
          status: int = 200, **extra: Any) -> Response:
    from utfall.care import CareError
    from utfall.messaging.invitations import LinkClosed, link_messages, link_url

    with request.app.state.engine.begin() as conn:
        try:
            view = link_messages(conn, principal.actor, person_key, link_id)
        except CareError:
            raise HTTPException(404) from None
        url = None
        if view.state == "open":
            try:
                url = link_url(conn, principal.actor, person_key, link_id,
                               what="self_report_link_shown")
            except LinkClosed:
                url = None
    days = sorted(set(get_settings().reminder_days_before), reverse=True)
    and_ = f" {_text('invitations.and', locale_of(request))} "
    return render(request, "invite.html", {
        "person_key": person_key, "link_id": link_id, "link": url, "view": view,
        "reminder_days": and_.join(", ".join(str(d) for d in days).rsplit(", ", 1)),
        "invite_errors": errors or {}, "invite_values": values or {}, **extra}, status)


@router.get("/persons/{person_key}/self-report/{link_id}", response_class=HTMLResponse)
def invite_page(request: Request, person_key: str, link_id: int = LinkId,
                principal: Principal = Depends(needs_role(*SENDERS))) -> Response:
    """The link with its QR code, the send forms and the messages sent."""
    _check_key(request, person_key)
    return _page(request, principal, person_key, link_id)


@router.get("/persons/{person_key}/self-report/{link_id}/qr.svg")
def qr_code(request: Request, person_key: str, link_id: int = LinkId,
            principal: Principal = Depends(needs_role(*SENDERS))) -> Response:
    """The QR code of an open link as SVG (checked and audited; never cached)."""
    from utfall.care import CareError
    from utfall.messaging.invitations import LinkClosed, link_qr_svg

    _check_key(request, person_key)
    try:
        with request.app.state.engine.begin() as conn:
            svg = link_qr_svg(conn, principal.actor, person_key, link_id,
                              locale=locale_of(request))
    except LinkClosed:
        raise HTTPException(410) from None
    except CareError:
        raise HTTPException(404) from None
    return Response(svg, media_type="image/svg+xml",
                    headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})


@router.post("/persons/{person_key}/self-report/{link_id}/send", response_class=HTMLResponse)
def send(request: Request, person_key: str, link_id: int = LinkId,
         form: dict[str, Any] = Depends(checked_form),
         principal: Principal = Depends(needs_role(*SENDERS))) -> Response:
    """Send the link by e-mail or SMS; a bad address gets a message at its field."""
    from utfall.care import CareError, NotFound
    from utfall.messaging.invitations import LinkClosed, send_invitation

    _check_key(request, person_key)
    locale = locale_of(request)
    channel = str(form.get("channel") or "")
    address = str(form.get("address") or "")[:300]
    try:
        with request.app.state.engine.begin() as conn:
            sent = send_invitation(conn, principal.actor, person_key, link_id, channel,
                                   address)
    except LinkClosed:
        return _page(request, principal, person_key, link_id, status=409,
                     invite_notice=_text("invitations.closed", locale))
    except NotFound:
        raise HTTPException(404) from None
    except CareError as exc:
        issue = exc.issues[0] if exc.issues else None
        message = (issue.en if locale == "en" else issue.sv) if issue else (
            exc.en if locale == "en" else exc.sv)
        return _page(request, principal, person_key, link_id,
                     errors={channel if channel in ("email", "sms") else "email": message},
                     values={channel: address}, status=422,
                     invite_summary=_text("invitations.fix", locale))
    return _redirect(f"/persons/{person_key}/self-report/{link_id}?sent={sent.status}#invite")

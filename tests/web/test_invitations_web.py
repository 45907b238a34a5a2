"""Invitation routes by role: the QR code, the send form and the JSON API of a
self-report link are for the clinician / social worker who may issue it, checked and
audited; everyone else is refused, unknown or foreign links are 404."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.web.conftest import page_login
from tests.web.factory import World
from utfall.config import get_settings
from utfall.store.models import AuditEvent
from utfall.store.models_messages import MessageInvitation, MessageLog


def _link(client: TestClient, world: World) -> tuple[str, int, str]:
    key = world.keys["region"]
    r = client.post(f"/api/persons/{key}/enrolments", json={
        "programme": "vip-beroende", "start_date": dt.date.today().isoformat()})
    assert r.status_code == 201, r.text
    r = client.post(f"/api/persons/{key}/self-report-links", json={
        "enrolment_id": r.json()["enrolment_id"], "stage": "intake",
        "instruments": ["who-5"]})
    assert r.status_code == 201, r.text
    return key, int(r.json()["link_id"]), r.json()["token"]


def _routes(key: str, link_id: int) -> list[tuple[str, str]]:
    base = f"/persons/{key}/self-report/{link_id}"
    api = f"/api/persons/{key}/self-report-links/{link_id}"
    return [("GET", base), ("GET", f"{base}/qr.svg"), ("GET", f"{api}/messages"),
            ("POST", f"{api}/invitations")]


def test_roles(login, anon: TestClient, world: World) -> None:
    clin = login("clin")
    key, link_id, token = _link(clin, world)
    body = {"channel": "sms", "to": "070-123 45 67"}
    # the issuing clinician: everything
    page = clin.get(f"/persons/{key}/self-report/{link_id}")
    assert page.status_code == 200 and "Skicka via e-post" in page.text
    assert "Skicka via sms" in page.text and f"/r/{token}" in page.text
    assert "skickas en påminnelse 3 dagar innan länken stänger" in page.text
    qr = clin.get(f"/persons/{key}/self-report/{link_id}/qr.svg")
    assert qr.status_code == 200 and qr.headers["content-type"].startswith("image/svg+xml")
    assert qr.headers["cache-control"] == "no-store" and qr.text.startswith("<svg")
    sent = clin.post(f"/api/persons/{key}/self-report-links/{link_id}/invitations", json=body)
    assert sent.status_code == 201, sent.text
    assert sent.json()["to"] == "+46 70 … 67" and sent.json()["status"] == "sent"
    assert len(sent.json()["reminders_at"]) == 1
    msgs = clin.get(f"/api/persons/{key}/self-report-links/{link_id}/messages").json()
    assert msgs["state"] == "open" and [m["kind"] for m in msgs["messages"]] == ["invitation"]
    assert "0701234567" not in json.dumps(msgs) and "+46701234567" not in json.dumps(msgs)
    bad = clin.post(f"/api/persons/{key}/self-report-links/{link_id}/invitations",
                    json={"channel": "email", "to": "not-an-address"})
    assert bad.status_code == 422 and bad.json()["issues"][0]["where"] == "address"
    no_smtp = clin.post(f"/api/persons/{key}/self-report-links/{link_id}/invitations",
                        json={"channel": "email", "to": "person@example.se"})
    assert no_smtp.status_code == 422 and no_smtp.json()["code"] == "email_not_configured"
    assert "ingen e-postserver är inställd" in no_smtp.json()["sv"]
    outbox = Path(get_settings().sms_file or get_settings().data_dir / "sms-outbox.jsonl")
    assert [json.loads(line)["to"] for line in outbox.read_text().splitlines()] == [
        "+46701234567"]

    # other roles and principals: refused, and nothing more is sent
    # (no relation to the person: 404 like every person route; wrong role: 403)
    for user, expected in (("soc", 404), ("soc_lund", 404), ("boss", 403), ("ana", 403),
                           ("root", 403)):
        client = login(user)
        if user.startswith("soc"):
            assert client.get(f"/api/persons/{key}/timeline").status_code == expected
        for method, path in _routes(key, link_id):
            r = client.request(method, path, json=body if method == "POST" else None)
            assert r.status_code == expected, (user, path, r.status_code)
    for method, path in _routes(key, link_id):
        r = anon.request(method, path, json=body if method == "POST" else None,
                         follow_redirects=False)
        assert r.status_code in (401, 303), (path, r.status_code)
        if path.startswith("/api/"):
            assert r.status_code == 401
        else:
            assert r.status_code == 303 and "/login" in r.headers["location"]
    # unknown link, or the link under another person's key: 404
    for method, path in _routes(key, link_id + 1000) + _routes(world.keys["both"], link_id):
        r = clin.request(method, path, json=body if method == "POST" else None)
        assert r.status_code == 404, (path, r.status_code)
    with world.engine.connect() as conn:
        assert len(conn.execute(select(MessageLog.__table__)).all()) == 1
        whats = [e.detail.get("what") for e in conn.execute(select(AuditEvent.__table__))]
    assert {"self_report_qr", "self_report_invitation", "self_report_messages"} <= set(whats)


def test_person_page_form_and_field_errors(app, world: World) -> None:
    key = world.keys["region"]
    with TestClient(app, raise_server_exceptions=False) as client:
        csrf = page_login(client, "clin")
        r = client.post(f"/api/persons/{key}/enrolments", headers={"X-CSRF-Token": csrf},
                        json={"programme": "vip-beroende",
                              "start_date": dt.date.today().isoformat()})
        enrolment = r.json()["enrolment_id"]
        page = client.post(f"/persons/{key}/self-report", data={
            "csrf_token": csrf, "enrolment_stage": f"{enrolment}|intake", "locale": "sv"})
        assert page.status_code == 200
        found = re.search(rf"/persons/{key}/self-report/(\d+)/qr\.svg", page.text)
        assert found, "the person page shows the QR code of the new link"
        link_id = int(found.group(1))
        assert 'alt="QR-kod som öppnar länken till formuläret"' in page.text
        assert "skickas en påminnelse innan länken stänger" in page.text
        send = f"/persons/{key}/self-report/{link_id}/send"
        bad = client.post(send, data={"csrf_token": csrf, "channel": "sms",
                                      "address": "12345"})
        assert bad.status_code == 422
        assert 'id="invite-phone-err"' in bad.text and 'aria-invalid="true"' in bad.text
        assert "Skriv mobilnumret som 070-123 45 67" in bad.text
        assert 'value="12345"' in bad.text  # what was typed is kept
        no_csrf = client.post(send, data={"channel": "sms", "address": "0701234567"})
        assert no_csrf.status_code == 403
        ok = client.post(send, data={"csrf_token": csrf, "channel": "sms",
                                     "address": "0701234567"}, follow_redirects=False)
        assert ok.status_code == 303 and ok.headers["location"].endswith("?sent=sent#invite")
        shown = client.get(ok.headers["location"].split("#")[0])
        assert "Länken skickades till +46 70 … 67." in shown.text
        assert "0701234567" not in shown.text and "Inbjudan (sms)" in shown.text
    with world.engine.connect() as conn:
        [inv] = conn.execute(select(MessageInvitation.__table__)).all()
    assert inv.recipient_masked == "+46 70 … 67" and "0701234567" not in inv.recipient_enc

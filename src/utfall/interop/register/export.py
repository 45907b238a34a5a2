"""Export a register's forms to a folder: JSON or a FHIR Bundle, a gaps report and a
manifest; every sent form goes into the delivery log (what, when, content hash) so
an incremental export sends only new forms and changed ones (as updates). Receipts
from the register are recorded against the export."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select, update

from utfall.access.audit import Actor, log_event
from utfall.interop.register.build import FormRecord, Gap, build_forms, load_data
from utfall.interop.register.mapping import Mapping
from utfall.store.models_register import RegisterDelivery, RegisterExport

ACTOR = Actor("register-export", "system")
RECEIPT_STATUSES = ("accepted", "rejected", "partial")


@dataclass
class ExportResult:
    """What an export wrote and why forms were left out."""

    export_id: str
    folder: Path
    sent: list[tuple[FormRecord, str]] = field(default_factory=list)  # (form, operation)
    unchanged: int = 0
    gaps: list[Gap] = field(default_factory=list)
    invalid_forms: int = 0
    files: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        ops = [op for _f, op in self.sent]
        return {"sent": len(self.sent), "new": ops.count("new"), "update": ops.count("update"),
                "resend": ops.count("resend"), "unchanged_not_sent": self.unchanged,
                "invalid_not_sent": self.invalid_forms, "gaps": len(self.gaps)}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def last_hashes(conn: Any, register: str) -> dict[str, str]:
    """form_key → content hash of its latest delivery that was not rejected."""
    t = RegisterDelivery.__table__
    rows = conn.execute(select(t.c.form_key, t.c.content_hash).where(
        t.c.register == register, t.c.rejected.is_(False)).order_by(t.c.id))
    return {r.form_key: r.content_hash for r in rows}


def _fhir_bundle(mapping: Mapping, export_id: str, sent: list[tuple[FormRecord, str]]
                 ) -> dict[str, Any]:
    """A CREDS-style submission: one Bundle of QuestionnaireResponses (one per form)."""
    from utfall.interop.fhir.common import CANONICAL, SYSTEM_PERSON_KEY, validated

    entries = []
    for form, op in sent:
        items = []
        for ident, value in form.variables.items():
            if value is None:
                continue
            answer: dict[str, Any] = {"valueInteger": value} if isinstance(
                value, int) and not isinstance(value, bool) else {"valueDecimal": value} \
                if isinstance(value, float) else {"valueString": str(value)}
            items.append({"linkId": ident, "answer": [answer]})
        qr: dict[str, Any] = {
            "resourceType": "QuestionnaireResponse", "id": form.form_key,
            "identifier": {"system": f"{CANONICAL}/identifier/register-form",
                           "value": form.form_key},
            "questionnaire": f"{CANONICAL}/Questionnaire/{mapping.register_id}-{form.form}"
                             f"|{mapping.version}",
            "status": "amended" if op == "update" else "completed",
            "subject": {"identifier": {"system": SYSTEM_PERSON_KEY, "value": form.person_key}},
            "authored": form.trigger_date.isoformat(),
            "author": {"identifier": {"system": f"{CANONICAL}/identifier/unit",
                                      "value": form.unit_id}}}
        if items:
            qr["item"] = items
        entries.append({"fullUrl": f"urn:uuid:{uuid.UUID(form.form_key)}",
                        "resource": validated(qr)})
    return validated({
        "resourceType": "Bundle", "type": "collection",
        "identifier": {"system": f"{CANONICAL}/identifier/register-export", "value": export_id},
        "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "entry": entries})


def export_register(engine: Engine, mapping: Mapping, out: Path, *, as_of: dt.date,
                    since: dt.date | None = None, incremental: bool = False,
                    fmt: str = "json") -> ExportResult:
    """Build, validate and write the forms; log what was sent (one transaction)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    export_id = now.strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:8]
    result = ExportResult(export_id, out)
    with engine.begin() as conn:
        forms = build_forms(mapping, load_data(conn), as_of)
        if since is not None:
            forms = [f for f in forms if f.trigger_date >= since]
        previous = last_hashes(conn, mapping.register_id)
        for form in forms:
            if not form.valid:
                result.gaps.extend(form.gaps)
                result.invalid_forms += 1
                continue
            before = previous.get(form.form_key)
            if incremental and before == form.content_hash:
                result.unchanged += 1
                continue
            op = "new" if before is None else "update" if before != form.content_hash \
                else "resend"
            result.sent.append((form, op))
        body: dict[str, Any]
        if fmt == "fhir":
            body = _fhir_bundle(mapping, export_id, result.sent)
            name = f"{mapping.register_id}-{export_id}.fhir.json"
        else:
            body = {"register": mapping.register_id, "mapping_version": mapping.version,
                    "provisional": mapping.provisional, "export_id": export_id,
                    "forms": [{**f.content, "operation": op,
                               "content_hash": f.content_hash} for f, op in result.sent]}
            name = f"{mapping.register_id}-{export_id}.json"
        (out / name).write_text(json.dumps(body, ensure_ascii=False, indent=1),
                                encoding="utf-8")
        gaps_name = f"{mapping.register_id}-{export_id}.gaps.txt"
        (out / gaps_name).write_text("".join(f"{g}\n" for g in result.gaps), encoding="utf-8")
        result.files = [name, gaps_name]
        manifest = {
            "register": mapping.register_id, "mapping_version": mapping.version,
            "provisional": mapping.provisional, "identity": mapping.identity,
            "export_id": export_id, "created_at": now.isoformat(timespec="seconds"),
            "mode": "incremental" if incremental else "since" if since else "full",
            "since": since.isoformat() if since else None, "as_of": as_of.isoformat(),
            "format": fmt, "counts": result.counts(),
            "files": [{"name": n, "sha256": _sha256(out / n), "bytes": (out / n).stat().st_size}
                      for n in result.files]}
        manifest_path = out / f"{mapping.register_id}-{export_id}.manifest.json"
        manifest_path.write_text(json.dumps(manifest, ensure_ascii=False, indent=1),
                                 encoding="utf-8")
        result.files.append(manifest_path.name)
        conn.execute(RegisterExport.__table__.insert().values(
            export_id=export_id, register=mapping.register_id,
            mapping_version=mapping.version, mode=manifest["mode"], since=since, as_of=as_of,
            format=fmt, created_at=now, forms=len(result.sent),
            manifest_sha256=_sha256(manifest_path)))
        if result.sent:
            conn.execute(RegisterDelivery.__table__.insert(), [
                {"export_id": export_id, "register": mapping.register_id,
                 "form_key": f.form_key, "form": f.form, "person_key": f.person_key,
                 "unit_id": f.unit_id, "trigger_date": f.trigger_date,
                 "content_hash": f.content_hash, "operation": op, "delivered_at": now,
                 "rejected": False} for f, op in result.sent])
        by_person: dict[str, list[str]] = {}
        for f, _op in result.sent:
            by_person.setdefault(f.person_key, []).append(f.form)
        for person_key, names in sorted(by_person.items()):  # disclosure to the register
            log_event(conn, ACTOR, "disclose", person_key, {
                "what": "register_export", "register": mapping.register_id,
                "export_id": export_id, "forms": names})
    return result


class ReceiptError(ValueError):
    """A receipt file that cannot be recorded (``file: reason``)."""


def record_receipt(engine: Engine, path: Path) -> dict[str, Any]:
    """Record a register's receipt: ``{"export_id", "status": accepted|rejected|partial,
    "received_at"?, "rejected_forms"?: [form_key…], "messages"?: […]}``. Rejected forms
    (all of a rejected export) are sent again by the next incremental export."""
    try:
        receipt = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReceiptError(f"{path}: {exc}") from None
    if not isinstance(receipt, dict):
        raise ReceiptError(f"{path}: a JSON object is expected")
    export_id, status = receipt.get("export_id"), receipt.get("status")
    if status not in RECEIPT_STATUSES:
        raise ReceiptError(f"{path}: status: must be one of {', '.join(RECEIPT_STATUSES)}")
    rejected = receipt.get("rejected_forms") or []
    if not isinstance(rejected, list) or not all(isinstance(k, str) for k in rejected):
        raise ReceiptError(f"{path}: rejected_forms: must be a list of form keys")
    e, d = RegisterExport.__table__, RegisterDelivery.__table__
    with engine.begin() as conn:
        row = conn.execute(select(e.c.export_id).where(e.c.export_id == export_id)).first()
        if row is None:
            raise ReceiptError(f"{path}: export_id: unknown export {export_id!r}")
        conn.execute(update(e).where(e.c.export_id == export_id).values(
            receipt_status=status, receipt_at=dt.datetime.now(dt.UTC), receipt_detail=receipt))
        marked = conn.execute(update(d).where(d.c.export_id == export_id).where(
            d.c.form_key.in_(rejected) if status == "partial" else d.c.export_id == export_id)
            .values(rejected=status != "accepted")).rowcount if status != "accepted" else 0
    return {"export_id": export_id, "status": status, "rejected_forms": marked}


@dataclass(frozen=True)
class UnitGap:
    """A gap shown to the unit: the person (masked identity) and what is missing."""

    person_key: str
    person: str
    form: str
    trigger_date: dt.date
    variable: str
    reason: str
    reason_sv: str


def unit_gaps(conn: Any, actor: Actor, mapping: Mapping, unit_id: str | None,
              as_of: dt.date) -> list[UnitGap]:
    """Missing required data in the forms of the actor's unit, so staff can fill it.

    Unit-level access as the work list (own unit, care roles); every person listed is
    checked with the access policy and the read is audited (``register_gaps``).
    """
    from utfall.access.policy import AccessDenied, require_unit_scope
    from utfall.care._common import access
    from utfall.care.persons import masked_identity
    from utfall.store.models import Contact, Enrolment

    require_unit_scope(conn, actor, unit_id)
    persons = {r[0] for r in conn.execute(select(Contact.person_key).where(
        Contact.unit_id == unit_id).distinct())}
    persons |= {r[0] for r in conn.execute(select(Enrolment.person_key).where(
        Enrolment.unit_id == unit_id).distinct())}
    forms = [f for f in build_forms(mapping, load_data(conn), as_of, persons)
             if f.unit_id == unit_id and f.gaps]
    out: list[UnitGap] = []
    by_person: dict[str, list[FormRecord]] = {}
    for f in forms:
        by_person.setdefault(f.person_key, []).append(f)
    for person_key, items in sorted(by_person.items()):
        try:
            access(conn, actor, person_key, "read", {
                "what": "register_gaps", "register": mapping.register_id,
                "unit_id": unit_id, "forms": len(items)})
        except AccessDenied:
            continue
        label = masked_identity(conn, person_key)
        out.extend(UnitGap(person_key, label, f.form, f.trigger_date, g.variable, g.reason,
                           g.reason_sv)
                   for f in items for g in f.gaps)
    return sorted(out, key=lambda g: (g.trigger_date, g.person, g.form, g.variable))

"""No raw code, English word or unit id in the Swedish UI; sv and en messages match.

A demo-like person (LARO enrolment taken through phases, contacts in several care
settings with ICD-10 codes, KVÅ, ATC, AUDIT, PHQ-9 with item 9 answered, life
situation) is rendered in Swedish: the person page with its timeline and chart, the
worklist and the recording forms. Their visible text is checked against the label
tables of :mod:`utfall.domain.labels`: a code that has a readable label must never
appear raw, and no unit id may appear.
"""

from __future__ import annotations

import datetime as dt
import re
from html.parser import HTMLParser

import pytest
from sqlalchemy import insert, select

from tests.web.conftest import page_login
from tests.web.factory import SYSTEM
from utfall.domain import labels
from utfall.store.models import Contact, Medication, Procedure, Unit

CLINICIAN_UNIT = "reg-ber"
TODAY = dt.date.today()

# Codes that are also ordinary Swedish words (or names) and may appear as such.
SWEDISH_WORDS = {"person", "region", "import", "digital", "total", "LARO", "SIP", "ADHD"}
# Kinds whose codes users never see raw in the Swedish UI.
CHECKED_KINDS = ("care_setting", "principal_type", "care_level", "event_kind", "source",
                 "role", "audit_what", "status", "comparison", "direction", "responsible",
                 "method", "stage_kind", "dx_group", "psych_group", "kva", "atc", "programme",
                 "phase", "stage", "end_reason", "subscale", "band", "flag", "item")
# English words seen leaking before (issue 9) that no label table holds as a code.
ENGLISH = ("Contact", "unscheduled", "Unscheduled", "self_report", "social_services",
           "outpatient", "inpatient", "below", "above", "person_lookup", "None", "null",
           "True", "False", "undefined")


class _Visible(HTMLParser):
    """Text nodes a reader sees (not scripts, styles or attribute values)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in ("script", "style", "template"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "template") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip and data.strip():
            self.parts.append(data.strip())


def visible_text(html: str) -> str:
    parser = _Visible()
    parser.feed(html)
    return "\n".join(parser.parts)


def _raw_codes() -> dict[str, str]:
    """code → kind of every labelled code that must not appear raw.

    Left out: codes shorter than three characters, codes equal to their Swedish label,
    ordinary Swedish words, and codes that occur inside some Swedish label (e.g. the
    AUDIT zone "III" in "Zon III")."""
    tables = labels.all_tables()
    swedish = "\n".join(lab.sv for table in tables.values() for lab in table.values())
    out: dict[str, str] = {}
    for kind in CHECKED_KINDS:
        for code, lab in tables.get(kind, {}).items():
            code = code.split("/", 1)[1] if "/" in code else code
            if len(code) < 3 or code in SWEDISH_WORDS or code.lower() == lab.sv.lower():
                continue
            if re.search(rf"(?<![\w-]){re.escape(code)}(?![\w-])", swedish):
                continue
            out.setdefault(code, kind)
    return out


def leaks(text: str, unit_ids: list[str]) -> list[str]:
    """Raw codes, unit ids and English words found in ``text``.

    A code in parentheses after its name ("Återfallsprevention (DU119)", "Metadon
    (N07BC02)") is labelled, not raw: parenthesised groups are left out of the check."""
    text = re.sub(r"\([^()]*\)", " ", text)
    found = []
    for code, kind in _raw_codes().items():
        if re.search(rf"(?<![\w-]){re.escape(code)}(?![\w-])", text):
            found.append(f"{kind}:{code}")
    for unit in unit_ids:
        if re.search(rf"(?<![\w-]){re.escape(unit)}(?![\w-])", text):
            found.append(f"unit:{unit}")
    for word in ENGLISH:
        if re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text):
            found.append(f"english:{word}")
    return found


def _laro_facts() -> dict[str, object]:
    return {"opioid_dependence_months": 36, "dependence_assessed_by_physician": True,
            "responsible_physician_specialist": True, "medication": "buprenorphine",
            "treatment_plan": True, "supervised_intake": True,
            "concurrent_dependence_clear_risk": False}


@pytest.fixture
def demo_person(world) -> str:
    """The region's person with a demo-like record at the clinician's unit."""
    from utfall.care import enrol, record_assessment

    key = world.keys["region"]
    start = TODAY - dt.timedelta(days=400)
    with world.engine.begin() as conn:
        enrolment = enrol(conn, SYSTEM, key, "laro", CLINICIAN_UNIT, start, facts=_laro_facts(),
                          responsible_worker="Anna Andersson")
        try:  # the phase use case (issue 9, item 2); older trees only have change_phase
            from utfall.care.phases import set_phase

            set_phase(conn, SYSTEM, enrolment, "treatment-start",
                      on_date=start + dt.timedelta(days=20), today=TODAY)
        except ImportError:  # pragma: no cover
            from utfall.care import change_phase

            change_phase(conn, SYSTEM, enrolment, "treatment-start",
                         on_date=start + dt.timedelta(days=20))
        for i, (setting, dx) in enumerate((("outpatient", "F102"), ("inpatient", "F11.2"),
                                          ("social_services", None), ("digital", "F32"),
                                          ("outpatient", "Z721"))):
            day = start + dt.timedelta(days=30 * i + 3)
            conn.execute(insert(Contact).values(
                contact_id=f"lbl{i}", person_key=key, unit_id=CLINICIAN_UNIT, date=day,
                contact_type=setting, main_dx=dx,
                dx_group=dx[:3] if dx and dx.startswith("F1") else None))
        conn.execute(insert(Procedure).values(row_key="lblp", person_key=key,
                                              unit_id=CLINICIAN_UNIT, date=start,
                                              kva_code="DU119"))
        conn.execute(insert(Medication).values(row_key="lblm", person_key=key,
                                               unit_id=CLINICIAN_UNIT, atc="N07BC01",
                                               start_date=start, end_date=None))
        for n in range(3):
            day = start + dt.timedelta(days=100 * n + 5)
            record_assessment(conn, SYSTEM, key, "phq-9",
                              {f"item_{i}": 1 for i in range(1, 9)} | {"item_9": 3},
                              unit_id=CLINICIAN_UNIT, on_date=day)
            record_assessment(conn, SYSTEM, key, "audit",
                              {f"item_{i}": 1 for i in range(1, 9)}
                              | {"item_9": 0, "item_10": 2},
                              unit_id=CLINICIAN_UNIT, on_date=day)
            record_assessment(conn, SYSTEM, key, "life-situation",
                              {"item_1": 10, "item_2": 0, "item_3": 4, "item_4": 2,
                               "item_5": 0, "item_6": 0, "item_7": 0, "item_9": 0,
                               "item_10": 8, "item_11": 9, "item_12": 0, "item_13": 0,
                               "item_14": 1, "item_15": 0, "item_16": 0, "item_17": 10,
                               "item_18": 8, "item_19": 3, "goal_text": "Eget boende"},
                              unit_id=CLINICIAN_UNIT, on_date=day)
    return key


def test_label_tables_cover_what_users_see() -> None:
    assert labels.label("care_setting", "outpatient") == "öppenvård"
    assert labels.label("principal_type", "municipality") == "kommun"
    assert labels.label("audit_what", "person_lookup") == "sökning på person"
    assert labels.label("comparison", "below") == "under"
    assert labels.label("item", "life-situation/item_4").startswith("Hur många dagar")
    assert labels.label("phase", "laro/assessment") != "assessment"
    assert labels.label("dx", "F102") == "Alkohol – beroendesyndrom"
    assert labels.label("unit", "reg-ber", units={"reg-ber": "Beroendemottagning"}) \
        == "Beroendemottagning"
    assert labels.label("care_setting", "outpatient", "en") == "outpatient care"
    assert labels.label("care_setting", "no-such-code") == "no-such-code"
    for kind in CHECKED_KINDS:
        assert labels.table(kind), kind
    # the checker finds what it is meant to find
    assert "care_setting:outpatient" in leaks("F102 outpatient", [])
    assert leaks("Återfallsprevention (DU119)", []) == []
    assert "kva:DU119" in leaks("DU119", [])
    assert "unit:reg-ber" in leaks("Enhet reg-ber", ["reg-ber"])
    assert leaks("Öppenvård, Beroendemottagning Malmö, 12 mars 2026", ["reg-ber"]) == []


def test_swedish_pages_show_no_raw_codes(world, app, demo_person) -> None:
    from fastapi.testclient import TestClient

    with world.engine.connect() as conn:
        unit_ids = list(conn.execute(select(Unit.unit_id)).scalars())
    key = demo_person
    pages = {
        "person": f"/persons/{key}",
        "worklist": "/worklist",
        "assess-phq9": f"/persons/{key}/assess?instrument=phq-9",
        "assess-life": f"/persons/{key}/assess?instrument=life-situation",
        "enrol": f"/persons/{key}/enrol",
        "enrol-laro": f"/persons/{key}/enrol?programme=laro",
        "access-log": f"/persons/{key}/access-log",
    }
    problems = {}
    with TestClient(app) as client:
        csrf = page_login(client, "clin")
        for name, path in pages.items():
            r = client.get(path)
            assert r.status_code == 200, (name, r.status_code)
            text = visible_text(r.text)
            assert len(text) > 100, name
            found = leaks(text, unit_ids)
            if found:
                problems[name] = found
        # a form shown again with errors names the questions in words
        r = client.post(f"/persons/{key}/assess?instrument=phq-9",
                        data={"csrf_token": csrf, "on_date": TODAY.isoformat(),
                              "item_1": "7", "item_4": "x"})
        assert r.status_code == 422, r.status_code
        text = visible_text(r.text)
        found = leaks(text, unit_ids) + [f"item:{w}" for w in re.findall(r"\bitem_\d+\b", text)]
        if found:
            problems["assess-errors"] = found
    assert problems == {}, f"raw codes in the Swedish UI: {problems}"


def _message_keys(locale: str) -> set[str]:
    from utfall.i18n import messages

    messages.cache_clear()
    return set(messages(locale))


def test_sv_and_en_messages_have_the_same_keys() -> None:
    """Main files plus every area file (messages/<locale>/*.yaml), merged."""
    sv, en = _message_keys("sv"), _message_keys("en")
    assert sorted(sv - en) == [], "keys only in Swedish"
    assert sorted(en - sv) == [], "keys only in English"
    assert len(sv) > 100



"""Every rejection rule of shared/spec/extract-v1.md, reported as file:line: column: reason."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.foundation.extract_factory import P1, P2, P3, TABLES, pnr, write_extract
from utfall.interop.extract_validate import ExtractRejected, ValidatedExtract, validate_extract

SECRET = b"test-secret"
TODAY = dt.date(2026, 11, 23)


def _tables() -> dict[str, list[dict[str, str]]]:
    return copy.deepcopy(TABLES)


def _errors(folder: Path) -> list[str]:
    with pytest.raises(ExtractRejected) as info:
        validate_extract(folder, SECRET, today=TODAY)
    return [str(p) for p in info.value.errors]


def _validate(folder: Path) -> ValidatedExtract:
    return validate_extract(folder, SECRET, today=TODAY)


def test_the_factory_extract_is_valid(tmp_path: Path) -> None:
    result = _validate(write_extract(tmp_path))
    assert result.row_counts == {"units": 3, "persons": 4, "contacts": 6, "procedures": 3,
                                 "medications": 2, "enrolments": 2, "assessments": 2}
    assert result.warnings == []


def _with(tmp_path: Path, table: str, index: int, **changes: str) -> Path:
    tables = _tables()
    tables[table][index].update(changes)
    return write_extract(tmp_path, tables)


# (table, row index, changes, expected error line)
CASES = [
    ("units", 1, {"unit_id": "U1"}, "units.csv:3: unit_id: duplicate unit_id (first on line 2)"),
    ("units", 0, {"name": ""}, "units.csv:2: name: required value is missing"),
    ("units", 0, {"organisation": ""}, "units.csv:2: organisation: required value is missing"),
    ("units", 0, {"principal_type": "county"},
     "units.csv:2: principal_type: 'county' is not one of: region, municipality, private"),
    ("units", 1, {"principal_type": "private"},
     "units.csv:3: principal_type: organisation 'Region Skåne' is 'region' on line 2"),
    ("units", 0, {"care_level": "hospital"}, "units.csv:2: care_level: 'hospital' is not one of"),
    ("units", 0, {"municipality_code": "128"},
     "units.csv:2: municipality_code: '128' is not a 4-digit municipality code"),
    ("persons", 0, {"person_id": "19800101-1230"},
     "persons.csv:2: person_id: not a valid identity number: the check digit is wrong"),
    ("persons", 1, {"person_id": P1.replace("19", "", 1)},
     "persons.csv:3: person_id: the same person appears twice (first on line 2)"),
    ("persons", 0, {"sex": "X"}, "persons.csv:2: sex: 'X' is not one of: M, F"),
    ("persons", 0, {"death_date": "2021-13-01"},
     "persons.csv:2: death_date: '2021-13-01' is not a date in the form YYYY-MM-DD"),
    ("persons", 0, {"death_date": "2027-01-01"}, "persons.csv:2: death_date: 2027-01-01 is in"),
    ("contacts", 1, {"contact_id": "C1"},
     "contacts.csv:3: contact_id: duplicate contact_id (first on line 2)"),
    ("contacts", 0, {"contact_id": ""}, "contacts.csv:2: contact_id: required value is missing"),
    ("contacts", 0, {"person_id": pnr("700101", "123")},
     "contacts.csv:2: person_id: no such person in persons"),
    ("contacts", 0, {"person_id": "19700101-0000"},
     "contacts.csv:2: person_id: not a valid identity number"),
    ("contacts", 0, {"unit_id": "U99"}, "contacts.csv:2: unit_id: no unit 'U99' in units"),
    ("contacts", 0, {"date": ""}, "contacts.csv:2: date: required value is missing"),
    ("contacts", 0, {"date": "21-03-01"},
     "contacts.csv:2: date: '21-03-01' is not a date in the form YYYY-MM-DD"),
    ("contacts", 0, {"date": "2026-12-24"}, "contacts.csv:2: date: 2026-12-24 is in the future"),
    ("contacts", 0, {"date": "1979-12-31"},
     "contacts.csv:2: date: before the person's date of birth"),
    ("contacts", 3, {"end_date": "2020-11-19"}, "contacts.csv:5: end_date: before date"),
    ("contacts", 0, {"contact_type": "phone"},
     "contacts.csv:2: contact_type: 'phone' is not one of"),
    ("contacts", 0, {"main_dx": ""},
     "contacts.csv:2: main_dx: required value is missing (optional only for social_services"),
    ("contacts", 0, {"main_dx": "F1X.2"},
     "contacts.csv:2: main_dx: 'F1X.2' is not a well-formed ICD-10-SE code"),
    ("contacts", 0, {"other_dx": "F32.1;banana"},
     "contacts.csv:2: other_dx: not well-formed ICD-10-SE code(s): 'BANANA'"),
    ("procedures", 0, {"contact_id": "C99"},
     "procedures.csv:2: contact_id: no contact 'C99' in contacts"),
    ("procedures", 0, {"contact_id": "C3"},
     "procedures.csv:2: contact_id: contact 'C3' belongs to another person"),
    ("procedures", 0, {"kva_code": "A119"},
     "procedures.csv:2: kva_code: 'A119' is not a well-formed KVÅ code"),
    ("procedures", 0, {"unit_id": ""}, "procedures.csv:2: unit_id: required value is missing"),
    ("medications", 0, {"atc": "N07-BB03"},
     "medications.csv:2: atc: 'N07-BB03' is not a well-formed ATC code"),
    ("medications", 0, {"start_date": ""},
     "medications.csv:2: start_date: required value is missing"),
    ("medications", 0, {"end_date": "2021-01-01"},
     "medications.csv:2: end_date: before start_date"),
    ("enrolments", 0, {"programme": "detox"},
     "enrolments.csv:2: programme: 'detox' is not one of: laro, vip-beroende, rop"),
    ("enrolments", 1, {"end_reason": "bored"}, "enrolments.csv:3: end_reason: 'bored' is not"),
    ("enrolments", 1, {"end_date": ""}, "enrolments.csv:3: end_reason: given without an end_date"),
    ("assessments", 0, {"item_3": "three"},
     "assessments.csv:2: item_3: 'three' is not a whole number"),
    ("assessments", 0, {"instrument": ""},
     "assessments.csv:2: instrument: required value is missing"),
    ("assessments", 0, {"instrument": "asi-full"},
     "assessments.csv:2: instrument: unknown instrument 'asi-full'"),
    ("assessments", 1, {"item_9": "3"}, "assessments.csv:3: item_9: "),
    ("assessments", 1, {"item_2": "7"}, "assessments.csv:3: item_2: "),
]


@pytest.mark.parametrize(("table", "index", "changes", "expected"), CASES,
                         ids=[f"{c[0]}-{next(iter(c[2]))}-{i}" for i, c in enumerate(CASES)])
def test_rejection_rule(tmp_path: Path, table: str, index: int, changes: dict[str, str],
                        expected: str) -> None:
    errors = _errors(_with(tmp_path, table, index, **changes))
    assert any(e.startswith(expected) for e in errors), errors


def test_all_errors_are_reported_not_just_the_first(tmp_path: Path) -> None:
    tables = _tables()
    tables["contacts"][0]["unit_id"] = "U98"
    tables["contacts"][2]["date"] = "yesterday"
    tables["medications"][1]["atc"] = "??"
    errors = _errors(write_extract(tmp_path, tables))
    assert "contacts.csv:2: unit_id: no unit 'U98' in units" in errors
    assert "contacts.csv:4: date: 'yesterday' is not a date in the form YYYY-MM-DD" in errors
    assert "medications.csv:3: atc: '??' is not a well-formed ATC code" in errors
    assert len(errors) == 3


def test_unknown_extra_column_is_an_error(tmp_path: Path) -> None:
    tables = _tables()
    for row in tables["persons"]:
        row["shoe_size"] = "42"
    errors = _errors(write_extract(tmp_path, tables))
    assert errors == ["persons.csv:1: shoe_size: unknown column (not in extract format v1)"]


def test_missing_required_column(tmp_path: Path) -> None:
    tables = _tables()
    for row in tables["contacts"]:
        del row["contact_type"]
    assert "contacts.csv:1: contact_type: required column is missing" in _errors(
        write_extract(tmp_path, tables))


def test_optional_columns_may_be_absent(tmp_path: Path) -> None:
    tables = _tables()
    for row in tables["contacts"]:
        del row["other_dx"]
        del row["end_date"]
    for row in tables["procedures"]:
        del row["contact_id"]
    assert _validate(write_extract(tmp_path, tables)).row_counts["contacts"] == 6


def test_missing_required_file(tmp_path: Path) -> None:
    folder = write_extract(tmp_path)
    (folder / "units.csv").unlink()
    assert "units.csv:1: (file): required file is missing" in _errors(folder)


def test_unknown_table_file_is_an_error(tmp_path: Path) -> None:
    folder = write_extract(tmp_path)
    (folder / "contacts_old.csv").write_text("a,b\n1,2\n")
    assert "contacts_old.csv:1: (file): not a table of extract format v1" in _errors(folder)


def test_csv_and_parquet_for_the_same_table(tmp_path: Path) -> None:
    folder = write_extract(tmp_path)
    pq.write_table(pa.table({"unit_id": ["X"]}), folder / "units.parquet")
    assert any("both units.csv and units.parquet" in e for e in _errors(folder))


def test_ragged_row_and_non_utf8(tmp_path: Path) -> None:
    folder = write_extract(tmp_path)
    with (folder / "medications.csv").open("a") as fh:
        fh.write("a,b,c,d,e,f,g\n")
    assert "medications.csv:4: (file): 7 fields, the header has 5" in _errors(folder)
    folder2 = write_extract(tmp_path / "b")
    (folder2 / "units.csv").write_bytes((folder2 / "units.csv").read_bytes()
                                        .replace("Malmö".encode(), "Malm\xf6".encode("latin-1")))
    assert any(e.startswith("units.csv:") and "not valid UTF-8" in e for e in _errors(folder2))


def test_quoted_newline_keeps_editor_line_numbers(tmp_path: Path) -> None:
    tables = _tables()
    tables["units"][0]["name"] = "Beroende-\nmottagningen"
    tables["units"][2]["care_level"] = "bad"
    errors = _errors(write_extract(tmp_path, tables))
    # row 3 starts on editor line 5 because row 1 spans two lines
    assert errors == ["units.csv:5: care_level: 'bad' is not one of: primary_care, "
                      "specialist_outpatient, specialist_inpatient, laro, social_services, youth"]


def test_social_services_contact_may_lack_main_dx(tmp_path: Path) -> None:
    result = _validate(write_extract(tmp_path))
    contacts = result.frames["contacts"]
    row = contacts.filter(contacts["contact_id"] == "C5")
    assert row["main_dx"][0] is None


def test_codes_are_normalised_and_classified(tmp_path: Path) -> None:
    contacts = _validate(write_extract(tmp_path)).frames["contacts"]
    by_id = {r["contact_id"]: r for r in contacts.iter_rows(named=True)}
    assert by_id["C1"]["main_dx"] == "F102" and by_id["C1"]["dx_group"] == "F10"
    assert by_id["C1"]["psych_groups"] == "mood"
    assert by_id["C3"]["other_dx"] == "F411;F900"
    assert by_id["C3"]["psych_groups"] == "adhd;anxiety"
    assert by_id["C5"]["dx_group"] is None


def test_sex_mismatch_is_a_warning_not_an_error(tmp_path: Path) -> None:
    result = _validate(_with(tmp_path, "persons", 0, sex="F"))
    assert [str(w) for w in result.warnings] == [
        "persons.csv:2: sex: 'F' does not match the identity number's sex digit"]


def test_unknown_but_wellformed_kva_is_a_warning(tmp_path: Path) -> None:
    result = _validate(_with(tmp_path, "procedures", 2, kva_code="ZZ999"))
    assert any("unknown KVÅ code 'ZZ999' kept as registered" in str(w) for w in result.warnings)


def test_samordningsnummer_and_ten_digit_references_resolve(tmp_path: Path) -> None:
    tables = _tables()
    tables["contacts"][0]["person_id"] = P1.replace("19", "", 1)  # 10-digit form of P1
    result = _validate(write_extract(tmp_path, tables))
    keys = dict(zip(result.frames["contacts"]["contact_id"],
                    result.frames["contacts"]["person_key"], strict=True))
    assert keys["C1"] == keys["C2"]
    assert result.frames["persons"].filter(result.frames["persons"]["coordination_number"]
                                           ).height == 1  # P3


def test_identity_numbers_never_appear_in_messages(tmp_path: Path) -> None:
    tables = _tables()
    tables["persons"][1]["person_id"] = P2[:-1] + str((int(P2[-1]) + 1) % 10)
    tables["contacts"][2]["person_id"] = P3[:-1] + str((int(P3[-1]) + 1) % 10)
    with pytest.raises(ExtractRejected) as info:
        validate_extract(write_extract(tmp_path, tables), SECRET, today=TODAY)
    text = "\n".join(str(p) for p in info.value.errors + info.value.warnings)
    for number in (P1, P2, P3):
        digits = number.replace("-", "")
        assert digits[2:8] not in text and digits[-4:] not in text


def test_parquet_extract_line_numbers_are_row_plus_one(tmp_path: Path) -> None:
    folder = write_extract(tmp_path)
    rows = copy.deepcopy(TABLES["contacts"])
    rows[1]["contact_type"] = "telepathy"
    table = pa.Table.from_pylist(rows)
    table = table.set_column(3, "date", pa.array(
        [dt.date.fromisoformat(r["date"]) for r in rows], pa.date32()))
    (folder / "contacts.csv").unlink()
    pq.write_table(table, folder / "contacts.parquet")
    errors = _errors(folder)
    assert errors == ["contacts.parquet:3: contact_type: 'telepathy' is not one of: outpatient, "
                      "inpatient, social_services, digital"]


def test_parquet_and_csv_give_the_same_frames(tmp_path: Path) -> None:
    csv_result = _validate(write_extract(tmp_path / "csv"))
    folder = write_extract(tmp_path / "pq")
    for name in ("contacts", "procedures"):
        rows = list(csv_result.frames[name].columns)
        assert rows
        table = pa.Table.from_pylist(TABLES[name])
        (folder / f"{name}.csv").unlink()
        pq.write_table(table, folder / f"{name}.parquet")
    pq_result = _validate(folder)
    for name in ("contacts", "procedures"):
        assert csv_result.frames[name].equals(pq_result.frames[name])


def test_assessments_are_scored_on_import(tmp_path: Path) -> None:
    # AUDIT (WHO manual, Babor et al. 2001): items 1-8 score 0-4, items 9-10 0/2/4.
    # Intake answers 4,3,3,2,2,1,1,2,2,4 sum to 24: consumption (1-3) 10, dependence
    # (4-6) 5, harm (7-10) 9; a man with 24 is in Swedish zone IV (>= 20).
    # Six months: 2,1,1,0,1,0,0,1,0,2 = 8 -> zone II (8-15 for men).
    frame = _validate(write_extract(tmp_path)).frames["assessments"]
    rows = {r["stage"]: r for r in frame.iter_rows(named=True)}
    assert rows["intake"]["score"] == 24.0 and rows["intake"]["band"] == "IV"
    assert json.loads(rows["intake"]["subscores"]) == {
        "consumption": 10, "dependence": 5, "harm": 9}
    assert rows["month-6"]["score"] == 8.0 and rows["month-6"]["band"] == "II"


def test_bands_depend_on_the_persons_sex(tmp_path: Path) -> None:
    tables = _tables()
    for row in tables["assessments"]:
        row["person_id"] = P2  # a woman: zones I 0-5, II 6-13, III 14-17, IV >= 18
    tables["assessments"][1]["unit_id"] = "U2"
    frame = _validate(write_extract(tmp_path, tables)).frames["assessments"]
    assert sorted(frame["band"].to_list()) == ["II", "IV"]
    tables["assessments"][1]["item_1"] = "0"  # 8 - 2 = 6: still zone II for a woman
    tables["assessments"][1]["item_10"] = "0"  # 6 - 2 = 4: zone I for a woman
    frame = _validate(write_extract(tmp_path / "b", tables)).frames["assessments"]
    assert sorted(frame["band"].to_list()) == ["I", "IV"]

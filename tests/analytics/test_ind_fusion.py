"""The fused contact pass (utfall.analytics.executor.fusion) equals each indicator's own expression.

``compute_catalogue(..., materialize=False)`` executes every indicator's single Ibis
expression; the default executor fuses all contact indicators into one pass with
bit flags. These tests push the fused path into its corners: persons missing from
the person table, more facts than fit in one int64, and the bit plan itself.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from utfall.analytics.example import AS_OF, YEARS, example_population, example_tables
from utfall.analytics.executor import levelwords
from utfall.analytics.executor.backends import duckdb_tables
from utfall.analytics.executor.fusion import MAX_BITS, fusable, plan_fusions
from utfall.analytics.executor.levelwords import decode, plan_words, unit_codes, wide_cells
from utfall.analytics.executor.run import compute_catalogue
from utfall.analytics.semantics.catalogue import build_catalogue, load_catalogue

KW = dict(years=YEARS, as_of=AS_OF, population=example_population())


def _both(tables: dict[str, pa.Table], **kw) -> tuple[pa.Table, pa.Table]:
    fused = compute_catalogue(duckdb_tables(tables), **KW, **kw)
    single = compute_catalogue(duckdb_tables(tables), materialize=False, **KW, **kw)
    return fused, single


def test_plan_shares_bits_between_indicators() -> None:
    cat = load_catalogue()
    kva = [cat.get(i) for i in ("kva_au119", "kva_du119", "kva_au124", "persons_substance_dx")]
    (plan,) = plan_fusions(kva)
    # one population bit (F10–F19) shared by all four, one KVÅ bit per code
    assert [b.kind for b in plan.bits] == ["population", "procedure", "procedure", "procedure"]
    assert plan.den_masks == (1, 1, 1, 1)
    assert plan.num_masks == (2, 4, 8, 1)  # the count's numerator is its denominator
    rate = cat.get("rate_alcohol_dx")
    (plan,) = plan_fusions([rate])
    assert [b.kind for b in plan.bits] == ["population", "resident"]
    assert plan.den_masks == plan.num_masks == (3,)


def test_only_person_counting_contact_indicators_fuse() -> None:
    cat = load_catalogue()
    fused = {i.id for i in cat.indicators if fusable(i)}
    assert {"kva_au119", "alcohol_relapse_medication", "laro_opioid_dependence_treated",
            "cooccurring_psych_parallel", "rate_substance_dx"} <= fused
    # enrolments, paired measurements and time_to are not contact-person counts
    assert not fused & {"laro_persons", "laro_retention_12m", "alcohol_mean_change",
                        "continuity_within_7d", "continuity_median_days", "rate_laro"}


def test_fused_equals_single_expressions_with_persons_missing_from_person_table() -> None:
    tables = example_tables()
    person = tables["person"]
    # p1 and p2 have F10–F19 contacts, KVÅ codes and medication in the example
    keep = pc.invert(pc.is_in(person["person_key"], pa.array(["p1", "p2"])))
    tables["person"] = person.filter(keep)
    fused, single = _both(tables)
    assert fused.equals(single)
    # and the orphans are counted (in the total, at unknown sex)
    full = compute_catalogue(duckdb_tables(example_tables()), **KW)

    def total(res: pa.Table, ind: str) -> int:
        row = [r for r in res.to_pylist() if r["indicator_id"] == ind
               and r["breakdown"] == "total" and r["period"] == "2021"]
        return row[0]["numerator"]

    assert total(fused, "persons_substance_dx") == total(full, "persons_substance_dx")
    unknown_sex = [r for r in fused.to_pylist() if r["indicator_id"] == "persons_substance_dx"
                   and r["breakdown"] == "sex" and r["level"] == "unknown"]
    assert unknown_sex and sum(r["numerator"] for r in unknown_sex) >= 1


MANY = """
indicators:
{items}
"""
ITEM = """  - id: code_{n}
    kind: proportion
    title: {{sv: a, en: b}}
    definition: {{sv: a, en: b}}
    data_source: {{sv: a, en: b}}
    population: {{source: contact, dx_groups: [{group}], contact_types: [{ctype}]}}
    numerator: {{event: procedure, kva_codes: [{code}]}}
"""


def test_more_facts_than_one_int64_split_into_several_passes() -> None:
    groups = ["F10", "F11", "F12", "F13", "F15", "F19"]
    ctypes = ["outpatient", "inpatient", "social_services", "digital", "outpatient, inpatient",
              "outpatient, digital"]
    codes = ["AU119", "DU119", "AU124"]
    items = [
        ITEM.format(n=k, group=g, ctype=t, code=codes[k % 3])
        for k, (g, t) in enumerate((g, t) for g in groups for t in ctypes)
    ]
    catalogue = build_catalogue({"many.yaml": MANY.format(items="".join(items))})
    plans = plan_fusions(catalogue.indicators)
    # 36 populations and 36 KVÅ facts: 72 bits do not fit in one word
    assert len(plans) == 2
    assert all(len(p.bits) <= MAX_BITS for p in plans)
    assert sum(len(p.indicators) for p in plans) == 36
    fused, single = _both(example_tables(), catalogue=catalogue)
    assert fused.num_rows > 0
    assert fused.equals(single)


@pytest.mark.parametrize("breakdowns", [
    ["total"], ["dx_group", "total"], ["organisation", "sex"], ["principal_type", "total"],
    ["unit_id", "total"], ["unit_id", "dx_group", "care_level", "sex"],
])
def test_fused_equals_single_for_breakdown_subsets(breakdowns: list[str]) -> None:
    fused, single = _both(example_tables(), breakdowns=breakdowns)
    assert set(fused["breakdown"].to_pylist()) == set(breakdowns)
    assert fused.equals(single)


# ------------------------------------------------------------------------- level words


def test_level_words_encode_and_decode_by_hand() -> None:
    unit = pa.table({
        "unit_id": ["A", "B", "C"],
        "principal_type": ["region", "region", None],
    })
    (lw,) = plan_words(unit, ["principal_type"], bits=3).values()
    # levels sorted, "unknown" always present; 63 // 3 = 21 slots per word
    assert lw.levels == ("region", "unknown") and lw.words == 1 and lw.per == 21
    codes = unit_codes(unit, [lw]).to_pylist()
    assert [c[lw.column(0)] for c in codes] == [1, 1, 1 << 3]  # region slot 0, unknown slot 1
    # three persons in 2021 (bits: 0b001 population, 0b010 numerator):
    #   p1: a region unit with 0b011 -> word 0b011
    #   p2: region 0b001 and an unknown-type unit 0b011 -> word 0b011_001
    #   p3: only the unknown-type unit, 0b001 -> word 0b001_000
    counts = pa.table({"period": [2021, 2021, 2021], "word": [0b011, 0b011001, 0b001000],
                       "n": [1, 1, 1]})
    masks = [0b001, 0b011]
    periods, levels, cells = decode(counts, lw, 0, masks)
    got = {(int(p), lv): list(c) for p, lv, c in zip(periods, levels, cells, strict=True)}
    assert got == {(2021, "region"): [2, 1], (2021, "unknown"): [2, 1]}
    assert wide_cells([(periods, levels, cells)], masks).column_names == [
        "period", "level", "m0", "m1"]


def test_too_many_levels_fall_back_to_deduplication(monkeypatch) -> None:
    unit = example_tables()["unit"]
    assert set(plan_words(unit, ["organisation", "principal_type", "care_level"], 14)) == {
        "organisation", "principal_type", "care_level"}
    monkeypatch.setattr(levelwords, "MAX_WORDS", 0)
    assert plan_words(unit, ["organisation"], 14) == {}
    fused, single = _both(example_tables(), breakdowns=["total", "organisation", "principal_type",
                                                         "care_level", "unit_id"])
    assert fused.equals(single)


def test_units_missing_from_unit_table_count_as_unknown() -> None:
    tables = example_tables()
    unit = tables["unit"]
    tables["unit"] = unit.filter(pc.invert(pc.is_in(unit["unit_id"], pa.array(["U1"]))))
    for max_words in (2, 0):
        levelwords.MAX_WORDS = max_words
        try:
            fused, single = _both(tables, breakdowns=["total", "principal_type", "care_level",
                                                    "unit_id"])
        finally:
            levelwords.MAX_WORDS = 2
        assert fused.equals(single)
        levels = set(fused.filter(pc.equal(fused["breakdown"], "principal_type"))["level"]
                     .to_pylist())
        assert "unknown" in levels


def test_time_to_group_with_duplicate_contact_ids_counts_distinct_events() -> None:
    tables = example_tables()
    c = tables["contact"]
    inpatient = c.filter(pc.equal(c["contact_type"], "inpatient"))
    assert inpatient.num_rows > 0
    tables["contact"] = pa.concat_tables([c, inpatient])  # the same contact ids twice
    ids = [i.id for i in load_catalogue().indicators if i.kind == "time_to"]
    fused, single = _both(tables, indicators=ids)
    assert fused.num_rows > 0
    assert fused.equals(single)


def test_discharges_by_reason_share_one_base() -> None:
    from utfall.analytics.semantics.compiler import variant_key

    cat = load_catalogue()
    keys = {i.id: variant_key(i) for i in cat.indicators}
    discharges = [k for k in keys if k.startswith("laro_discharge.")]
    assert len(discharges) == 6
    assert len({keys[k] for k in discharges}) == 1 and keys[discharges[0]] is not None
    # other numerators, kinds and sources have no variant key
    assert keys["laro_retention_12m"] is None and keys["kva_au119"] is None
    fused, single = _both(example_tables(), indicators=discharges,
                          breakdowns=["total", "unit_id", "organisation", "sex"])
    assert fused.num_rows > 0
    assert fused.equals(single)

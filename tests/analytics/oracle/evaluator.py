"""A reference evaluator of the indicator catalogue in plain Python (the ehrQL pattern).

Written from ``docs/indicators.md`` and the YAML definitions only: it reads the
validated definitions (``catalogue.Indicator``, data) and the code tables
(``domain.codes``), but never the compiler or the executor. Rows are plain dicts,
every rule is a loop over them, so a wrong join or a missed NULL in the Ibis code
shows up as a different cell.

``evaluate(...)`` returns ``{(indicator_id, period, breakdown, level): (numerator,
denominator, stat)}`` — the raw cells before values and intervals are added
(``stat`` is the mean/median rounded to 9 decimals, else None).
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from utfall.analytics.semantics.catalogue import Indicator
from utfall.domain.codes import code_systems

Row = Mapping[str, Any]
Cell = tuple[int | None, int | None, float | None]
UNKNOWN = "unknown"
PERSON_ATTRS = {"sex": "sex", "municipality": "municipality", "age_band": "age_band"}
UNIT_ATTRS = ("organisation", "principal_type", "care_level")


@dataclass(frozen=True)
class Band:
    label: str
    low: int
    high: int | None


@dataclass
class Member:
    """One row of an indicator's population (before counting distinct subjects)."""

    period: int
    subject: Any
    person_key: str | None
    unit_id: str | None
    dx_group: str | None = None
    num: bool = False
    val: float | None = None


def _year(d: dt.date | None) -> int | None:
    return d.year if d is not None else None


def _starts(code: str | None, prefixes: Iterable[str]) -> bool:
    return code is not None and any(code.startswith(p) for p in prefixes)


def _active(start: dt.date | None, end: dt.date | None, year: int, as_of: dt.date) -> bool:
    """Active on some day of ``year``: started by 31 Dec, ended (or cut-off) from 1 Jan."""
    if start is None:
        return False
    return start.year <= year <= (end or as_of).year


class Oracle:
    """Evaluates indicators over plain row lists (``tables[name] = [dict, …]``)."""

    def __init__(self, tables: Mapping[str, list[Row]], *, years: Sequence[int],
                 as_of: dt.date, age_bands: Sequence[Band], population: list[Row]) -> None:
        self.t = {k: list(v) for k, v in tables.items()}
        self.years = set(years)
        self.as_of = as_of
        self.bands = list(age_bands)
        self.population = population
        self.persons = {p["person_key"]: p for p in self.t.get("person", [])}
        self.units = {u["unit_id"]: u for u in self.t.get("unit", [])}

    # ------------------------------------------------------------------ populations

    def _contact_in(self, c: Row, ind: Indicator) -> bool:
        pop = ind.population
        if pop.dx_groups and c["dx_group"] not in pop.dx_groups:
            return False
        if pop.dx_prefixes and not _starts(c["main_dx"], pop.dx_prefixes):
            return False
        if pop.contact_types and c["contact_type"] not in pop.contact_types:
            return False
        return not (pop.require_psych_group and not c["psych_groups"])

    def _kva_on(self, c: Row, codes: Sequence[str]) -> bool:
        """A code on the contact: linked by contact_id, or (no contact_id) same person,
        unit and date. SQL equality: NULL never matches."""
        for p in self.t.get("procedure", []):
            if p["kva_code"] not in codes:
                continue
            if p["contact_id"] is not None:
                if c["contact_id"] is not None and p["contact_id"] == c["contact_id"]:
                    return True
            elif (None not in (p["person_key"], p["unit_id"], p["date"])
                  and (p["person_key"], p["unit_id"], p["date"])
                  == (c["person_key"], c["unit_id"], c["date"])):
                return True
        return False

    def _medication(self, person: str, year: int, ind: Indicator) -> bool:
        n = ind.numerator
        codes: set[str] = set()
        for cls in n.atc_classes or ():
            codes.update(code_systems().atc_codes_of_class(cls))
        for m in self.t.get("medication", []):
            if m["person_key"] != person or m["atc"] is None:
                continue
            if (m["atc"] in codes or _starts(m["atc"], n.atc_prefixes or ())) and _active(
                    m["start_date"], m["end_date"], year, self.as_of):
                return True
        return False

    def _person_event(self, person: str | None, year: int, ind: Indicator) -> bool:
        n = ind.numerator
        if person is None:
            return False
        if n.event == "medication":
            return self._medication(person, year, ind)
        if n.event == "enrolment_or_medication":
            for e in self.t.get("enrolment", []):
                if (e["person_key"] == person and e["programme"] in (n.programmes or [])
                        and _active(e["start_date"], e["end_date"], year, self.as_of)):
                    return True
            return bool(n.atc_classes or n.atc_prefixes) and self._medication(person, year, ind)
        if n.event == "psych_contact":
            prefixes = n.psych_prefixes or [
                p for spec in code_systems().psychiatric_groups.values() for p in spec["prefixes"]
            ]
            return any(c["person_key"] == person and _year(c["date"]) == year
                       and _starts(c["main_dx"], prefixes) for c in self.t.get("contact", []))
        raise ValueError(n.event)

    def _residents(self) -> set[str]:
        munis = {str(r["municipality"]) for r in self.population}
        return {k for k, p in self.persons.items() if p["municipality"] in munis}

    def contact_members(self, ind: Indicator) -> list[Member]:
        out = []
        n = ind.numerator
        for c in self.t.get("contact", []):
            year = _year(c["date"])
            if year not in self.years or not self._contact_in(c, ind):
                continue
            if ind.kind in ("count", "rate") or n is None:
                num = True
            elif n.event == "procedure":
                num = self._kva_on(c, n.kva_codes or [])
            else:
                num = self._person_event(c["person_key"], year, ind)
            out.append(Member(year, c["person_key"], c["person_key"], c["unit_id"],
                              c["dx_group"], num))
        if ind.kind == "rate" and ind.population.residents_only:
            res = self._residents()
            out = [m for m in out if m.person_key in res]
        return out

    def enrolment_members(self, ind: Indicator) -> list[Member]:
        pop, n, w = ind.population, ind.numerator, ind.window
        anchor = ind.period.anchor
        out = []
        for e in self.t.get("enrolment", []):
            if pop.programmes and e["programme"] not in pop.programmes:
                continue
            start, end = e["start_date"], e["end_date"]
            due = None
            if anchor == "active":
                periods = [y for y in sorted(self.years) if _active(start, end, y, self.as_of)]
            elif anchor == "start_date":
                periods = [_year(start)]
            elif anchor == "end_date":
                periods = [_year(end)] if end is not None else []
            elif anchor == "due_date":
                if start is None:
                    continue
                due = start + dt.timedelta(days=w.offset_days or 0)
                # the window must have closed by the cut-off (the cut-off day counts)
                if (self.as_of - due).days < w.after_days:
                    continue
                periods = [due.year]
            else:
                raise ValueError(anchor)
            for period in periods:
                if period not in self.years:
                    continue
                num = self._enrolment_num(e, ind, period, due)
                if num is None:  # not observable
                    continue
                subject = (e["person_key"] if pop.count_persons or n is None
                           else e["enrolment_id"])
                out.append(Member(period, subject, e["person_key"], e["unit_id"], None, num))
        if ind.kind == "rate" and ind.population.residents_only:
            res = self._residents()
            out = [m for m in out if m.person_key in res]
        return out

    def _enrolment_num(self, e: Row, ind: Indicator, period: int,
                       due: dt.date | None) -> bool | None:
        n = ind.numerator
        if n is None:
            return True
        reasons = n.end_reasons or []
        start, end, reason = e["start_date"], e["end_date"], e["end_reason"]
        in_reasons = reason in reasons
        if n.event == "end_reason":
            return in_reasons
        if n.event == "favourable_status":
            return end is None or end.year > period or in_reasons
        if n.event == "retained":
            days = ind.window.days or 0
            if end is None and (self.as_of - start).days < days:
                return None
            return ((end or self.as_of) - start).days >= days or in_reasons
        if n.event == "death_in_treatment":
            person = self.persons.get(e["person_key"]) or {}
            death = person.get("death_date")
            died = (death is not None and death.year == period and death >= start
                    and (end is None or death <= end))
            ended_dead = reason == "deceased" and end is not None and end.year == period
            return died or ended_dead
        if n.event == "assessment_in_window":
            w = ind.window
            for a in self.t.get("assessment", []):
                if (a["stage"] in (n.stages or []) and a["person_key"] is not None
                        and a["person_key"] == e["person_key"] and a["date"] is not None
                        and -w.before_days <= (a["date"] - due).days <= w.after_days):
                    return True
            return False
        raise ValueError(n.event)

    def time_to_members(self, ind: Indicator) -> list[Member]:
        types = ind.numerator.contact_types or []
        out = []
        for c in self.t.get("contact", []):
            end = c["end_date"]
            if end is None or end.year not in self.years or not self._contact_in(c, ind):
                continue
            later = [x["date"] for x in self.t["contact"]
                     if c["person_key"] is not None and x["person_key"] == c["person_key"]
                     and x["contact_type"] in types and x["date"] is not None
                     and x["date"] >= end]
            days = (min(later) - end).days if later else None
            # the discharge: person and contact id
            subject = f"{c['person_key'] or ''}/{c['contact_id'] or ''}"
            m = Member(end.year, subject, c["person_key"], c["unit_id"], c["dx_group"])
            if ind.statistic == "share":
                within = ind.window.days or 0
                if (self.as_of - end).days < within:
                    continue
                m.num = days is not None and days <= within
            else:
                if days is None:
                    continue
                m.val = float(days)
            out.append(m)
        return out

    def change_members(self, ind: Indicator) -> list[Member]:
        ch = ind.change
        instruments = list(ind.population.instruments or [])
        rows = [a for a in self.t.get("assessment", [])
                if a["instrument"] in instruments and a["score"] is not None]
        best: dict[str, tuple] = {}
        for person in sorted({a["person_key"] for a in rows if a["person_key"] is not None}):
            for rank, ins in enumerate(instruments):
                mine = [a for a in rows if a["person_key"] == person and a["instrument"] == ins]
                base = sorted((a for a in mine if a["stage"] == ch.baseline_stage),
                              key=lambda a: (a["date"], a["unit_id"], a["score"]))
                if not base:
                    continue
                b = base[0]  # the first intake measurement
                fups = [a for a in mine if a["stage"] in ch.followup_stages
                        and a["date"] > b["date"]]
                if not fups:
                    continue
                f = sorted(fups, key=lambda a: (-a["date"].toordinal(), a["score"]))[0]
                if person not in best or rank < best[person][0]:
                    best[person] = (rank, b, f)
        out = []
        for person, (_, b, f) in best.items():
            if ch.require_dx_groups and not any(
                    c["person_key"] == person and c["dx_group"] in ch.require_dx_groups
                    and _year(c["date"]) == b["date"].year for c in self.t.get("contact", [])):
                continue
            if f["date"].year not in self.years:
                continue
            out.append(Member(f["date"].year, person, person, b["unit_id"], None,
                              f["score"] < b["score"], f["score"] - b["score"]))
        return out

    def members(self, ind: Indicator) -> list[Member]:
        if ind.kind == "change":
            return self.change_members(ind)
        if ind.kind == "time_to":
            return self.time_to_members(ind)
        if ind.population.source == "enrolment":
            return self.enrolment_members(ind)
        return self.contact_members(ind)

    # ------------------------------------------------------------------ cells

    def level(self, m: Member, breakdown: str) -> str:
        if breakdown == "total":
            return ""
        if breakdown == "unit_id":
            value = m.unit_id
        elif breakdown in UNIT_ATTRS:
            value = (self.units.get(m.unit_id) or {}).get(breakdown)
        elif breakdown == "dx_group":
            value = m.dx_group
        elif breakdown == "age_band":
            birth = (self.persons.get(m.person_key) or {}).get("birth_year")
            value = None
            if birth is not None:
                age = m.period - birth
                for b in self.bands:
                    if age >= b.low and (b.high is None or age <= b.high):
                        value = b.label
                        break
        else:
            value = (self.persons.get(m.person_key) or {}).get(breakdown)
        return UNKNOWN if value is None else str(value)

    def cells(self, ind: Indicator, breakdowns: Sequence[str]) -> dict[tuple, Cell]:
        members = self.members(ind)
        out: dict[tuple, Cell] = {}
        statistic = (ind.kind == "change" and ind.change.statistic == "mean_change") or (
            ind.kind == "time_to" and ind.statistic == "median")
        for b in breakdowns:
            if b not in ind.allowed_breakdowns:
                continue
            subjects: dict[tuple[int, str], dict[Any, bool]] = defaultdict(dict)
            values: dict[tuple[int, str], list[float]] = defaultdict(list)
            for m in members:
                key = (m.period, self.level(m, b))
                s = subjects[key]
                s[m.subject] = s.get(m.subject, False) or bool(m.num)
                if m.val is not None:
                    values[key].append(m.val)
            cells: dict[tuple[int, str], Cell] = {}
            for key, s in subjects.items():
                if statistic:
                    vals = values[key]
                    stat = statistics.mean(vals) if ind.kind == "change" else statistics.median(
                        vals)
                    cells[key] = (None, len(s), round(stat, 9))
                elif ind.kind in ("count", "rate"):
                    cells[key] = (len(s), None, None)
                else:
                    cells[key] = (sum(s.values()), len(s), None)
            if ind.kind == "rate":
                cells = self._rate_cells(cells, b)
            for (period, level), cell in cells.items():
                out[(ind.id, str(period), b, level)] = cell
        return out

    def _rate_cells(self, cells: dict, breakdown: str) -> dict:
        """Every (year, level) of the population table is a cell (0 without cases)."""
        inhabitants: dict[tuple[int, str], int] = defaultdict(int)
        for r in self.population:
            level = "" if breakdown == "total" else str(r[breakdown])
            inhabitants[(int(r["year"]), level)] += int(r["population"])
        out = {}
        for key in set(cells) | {k for k in inhabitants if k[0] in self.years}:
            num = cells[key][0] if key in cells else 0
            out[key] = (num, inhabitants.get(key), None)
        return out


def evaluate(tables: Mapping[str, list[Row]], indicators: Sequence[Indicator], *,
             years: Sequence[int], as_of: dt.date, age_bands: Sequence[Band],
             population: list[Row], breakdowns: Sequence[str]) -> dict[tuple, Cell]:
    """Raw cells of ``indicators`` × ``breakdowns`` (see the module docstring)."""
    oracle = Oracle(tables, years=years, as_of=as_of, age_bands=age_bands,
                    population=population)
    out: dict[tuple, Cell] = {}
    for ind in indicators:
        out.update(oracle.cells(ind, breakdowns))
    return out

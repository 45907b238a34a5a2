"""Vectorised generator of a synthetic region's extract in format v1.

The model, in order: persons (birth, sex, municipality, death) → substance-group
memberships → LARO enrolments → which persons have a contact in each substance
group and year (exactly the calibrated count, chosen by a persistent per-person
score so that careers span several years) → contacts → procedures → other
contacts → enrolments, medications and assessments. No Python loop runs over
rows; loops run over groups, years, codes or stages only.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from utfall.synth import region as R
from utfall.synth.identities import identity_numbers
from utfall.synth.writer import FORMATS, write_table

Progress = Callable[[str, float], None]

CONTACTS_PER_PERSON_YEAR = 2.5  # 20 per person over 2017-2024
CHUNK_ROWS = 2_000_000
_EPOCH = np.datetime64("1970-01-01", "D")
_NULL = -1
# Clinical state (4th character) of a contact given the person's usual state.
_STATE_P_DEPENDENCE = np.array([0.03, 0.04, 0.80, 0.06, 0.004, 0.01, 0.0, 0.0, 0.016, 0.04])
_STATE_P_HARMFUL = np.array([0.05, 0.82, 0.04, 0.0, 0.0, 0.0, 0.0, 0.0, 0.02, 0.07])
# Unit category of a substance contact by group: BER, AVG, PSYK, VC.
_CATEGORY_P = {
    "F10": [0.50, 0.10, 0.10, 0.30], "F11": [0.55, 0.20, 0.10, 0.15],
    "F12": [0.60, 0.08, 0.17, 0.15], "F13": [0.45, 0.15, 0.25, 0.15],
    "F14": [0.65, 0.10, 0.15, 0.10], "F15": [0.55, 0.15, 0.20, 0.10],
    "F16": [0.50, 0.10, 0.30, 0.10], "F18": [0.50, 0.10, 0.30, 0.10],
    "F19": [0.55, 0.18, 0.17, 0.10],
}
# Mean number of extra contacts (beyond the first) per person-group-year.
_EXTRA_CONTACTS = {"F10": 1.4, "F11": 2.2, "F12": 1.1, "F13": 1.5, "F14": 1.0, "F15": 1.6,
                   "F16": 0.6, "F18": 0.6, "F19": 2.0}
_DIGITAL_SHARE = {2017: 0.02, 2018: 0.03, 2019: 0.03, 2020: 0.12, 2021: 0.14, 2022: 0.11}
_END_REASONS = ["completed", "dropout", "involuntary_discharge", "transferred", "deceased", "other"]
_STAGES = ["intake", "month-6", "month-12", "discharge"]


def _day(year: int, month: int = 1, day: int = 1) -> int:
    return int((np.datetime64(f"{year:04d}-{month:02d}-{day:02d}") - _EPOCH).astype(np.int64))


def _year_of(days: np.ndarray) -> np.ndarray:
    return days.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970


def _trend(v_first: float, v_2021: float, year: int) -> float:
    """Linear 2017 → 2021, half the slope outside (gentle extrapolation), never negative."""
    slope = (v_2021 - v_first) / 4
    if year <= 2021 and year >= 2017:
        return v_first + slope * (year - 2017)
    if year > 2021:
        return max(0.0, v_2021 + slope * 0.5 * (year - 2021))
    return max(0.0, v_first - slope * 0.5 * (2017 - year))


def _uniform_days(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """A uniform day in [lo, hi] (inclusive) for each pair."""
    span = np.maximum(hi - lo + 1, 1)
    return (lo + np.floor(rng.random(len(lo)) * span)).astype(np.int32)


def _office_days(rng: np.random.Generator, date: np.ndarray, lo: np.ndarray,
                 hi: np.ndarray) -> np.ndarray:
    """Fewer visits in July and at weekends; dates stay within [lo, hi]."""
    n = len(date)
    month = date.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) % 12 + 1
    later = date + 31
    date = np.where((month == 7) & (rng.random(n) < 0.4) & (later <= hi), later, date)
    weekday = (date + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    back = date - np.where(weekday == 5, 1, np.where(weekday == 6, 2, 0))
    forward = date + np.where(weekday == 5, 2, np.where(weekday == 6, 1, 0))
    moved = np.where(back >= lo, back, np.where(forward <= hi, forward, date))
    return np.where(rng.random(n) < 0.08, date, moved).astype(np.int32)


def _categorical(rng: np.random.Generator, cum: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Draw a category per element from the cumulative distribution ``cum[rows]``."""
    u = rng.random(len(rows))
    return (u[:, None] > cum[rows]).sum(axis=1).astype(np.int8)


def _first_per_key(keys: np.ndarray) -> np.ndarray:
    """Index of the first element of each distinct key (rows are sorted by person, date)."""
    return np.unique(keys, return_index=True)[1]


class _Generator:
    """Holds the random state and intermediate arrays of one generation run."""

    proc_contact: np.ndarray  # contact index of each procedure (set by procedures())

    def __init__(self, persons: int, seed: int, first_year: int, last_year: int) -> None:
        if persons < 1:
            raise ValueError("persons must be at least 1")
        if not 2000 <= first_year <= last_year <= 2100:
            raise ValueError("need 2000 <= first_year <= last_year")
        self.rng = np.random.default_rng(seed)
        self.n = persons
        self.scale = persons / R.REFERENCE_PERSONS
        self.years = np.arange(first_year, last_year + 1)
        self.ny = len(self.years)
        self.ystart = np.array([_day(int(y)) for y in self.years], dtype=np.int32)
        self.yend = np.array([_day(int(y), 12, 31) for y in self.years], dtype=np.int32)
        self.period_end = int(self.yend[-1])
        self.ng = len(R.GROUPS)
        self.unit_dot = np.array([u.dot_codes for u in R.UNITS], dtype=bool)
        self._build_dx_dictionaries()

    # ------------------------------------------------------------------ codes
    def _build_dx_dictionaries(self) -> None:
        """String dictionaries for main_dx and other_dx; rows index into them."""
        main: list[str] = []
        for g in R.GROUP_CODES:
            for s in range(10):
                main += [f"{g}.{s}", f"{g}{s}"]
        self.psych_codes = sorted({c for combo, _ in R.COMORBIDITY for c in combo.split(";")}
                                  | set(R.FILLER_PSYCH_DX))
        self.main_psych0 = len(main)
        for c in self.psych_codes:
            main += [c, c.replace(".", "")]
        self.main_somatic0 = len(main)
        for c in R.SOMATIC_DX:
            main += [c, c.replace(".", "")]
        self.main_counselling0 = len(main)
        for c in R.COUNSELLING_DX:
            main += [c, c.replace(".", "")]
        self.main_dict = pa.array(main)
        other: list[str] = []
        for combo, _ in R.COMORBIDITY:
            other += [combo, combo.replace(".", "")]
        self.other_tobacco = len(other)
        other += [R.TOBACCO, R.TOBACCO.replace(".", "")]
        self.other_f1 = len(other)
        for g in R.GROUP_CODES:
            other += [f"{g}.1", f"{g}1"]
        self.other_dict = pa.array(other)

    def _fmt(self, index: np.ndarray, unit: np.ndarray) -> np.ndarray:
        """Offset a dictionary pair index by the unit's code style (0 dotted, 1 undotted)."""
        return (index + (~self.unit_dot[unit]).astype(np.int16)).astype(np.int16)

    # ---------------------------------------------------------------- persons
    def persons(self) -> None:
        rng, n = self.rng, self.n
        g_targets = np.array([[_trend(g[1], g[2], int(y)) for y in self.years] for g in R.GROUPS])
        self.targets = np.rint(g_targets * self.scale).astype(np.int64)  # (G, Y)
        peak = np.array([max(g[1], g[2], *(_trend(g[1], g[2], int(y)) for y in self.years))
                         for g in R.GROUPS])
        q = 1.3 * peak / R.REFERENCE_PERSONS / 1.2
        q = q / max(1.0, q.sum() / 0.9)
        self.primary = rng.choice(self.ng + 1, size=n, p=[*q, 1 - q.sum()]).astype(np.int8)
        self.primary[self.primary == self.ng] = _NULL
        secondary = rng.choice(self.ng, size=n, p=q / q.sum()).astype(np.int8)
        f19 = R.GROUP_CODES.index("F19")
        secondary = np.where(secondary == self.primary, np.where(self.primary == f19, 0, f19),
                             secondary).astype(np.int8)
        has_secondary = (self.primary >= 0) & (rng.random(n) < 0.2)
        self.secondary = np.where(has_secondary, secondary, _NULL).astype(np.int8)

        mid = (self.years[0] + self.years[-1]) / 2
        grp = np.where(self.primary >= 0, self.primary, self.ng)
        mean_age = np.array([g[4] for g in R.GROUPS] + [R.NO_GROUP_AGE])[grp]
        young = rng.random(n) < np.array([g[5] for g in R.GROUPS] + [0.03])[grp]
        age = np.where(young, rng.uniform(12, 21, n),
                       np.clip(rng.normal(mean_age, 13, n), 18, 84))
        birth_year = np.clip(np.rint(mid - age), self.years[0] - 80, self.years[-1] - 14)
        self.birth_year = birth_year.astype(np.int32)
        y0 = (self.birth_year - 1970).astype("datetime64[Y]").astype("datetime64[D]")
        y1 = (self.birth_year - 1969).astype("datetime64[Y]").astype("datetime64[D]")
        span = (y1 - y0).astype(np.int64)
        self.birth = (y0.astype(np.int64) + np.floor(rng.random(n) * span)).astype(np.int32)
        male = rng.random(n) < np.array([g[6] for g in R.GROUPS] + [0.55])[grp]
        self.male = male

        weights = np.array([m[2] for m in R.MUNICIPALITIES], dtype=float)
        muni = rng.choice(len(weights), size=n, p=weights / weights.sum()).astype(np.int8)
        muni[rng.random(n) < 0.015] = _NULL
        self.muni = muni
        area_of = np.array([m[3] for m in R.MUNICIPALITIES], dtype=np.int8)
        self.area = np.where(muni >= 0, area_of[np.maximum(muni, 0)], 0).astype(np.int8)

        p_death = (0.04 + 0.07 * (age > 60) + 0.06 * (age > 72)
                   + 0.10 * (self.primary == R.G_F11) + 0.04 * (self.primary == f19))
        dies = rng.random(n) < p_death
        first_ok = np.maximum(self.ystart[0], self.birth + 14 * 366)
        death = _uniform_days(rng, first_ok, np.full(n, self.period_end))
        self.death = np.where(dies, death, _NULL).astype(np.int32)
        self.death_or_end = np.where(dies, self.death, self.period_end).astype(np.int32)

        # identity numbers
        coordination = rng.random(n) < 0.015
        ten_digit = rng.random(n) < 0.15
        self.pid, _ = identity_numbers(rng, self.birth, male.astype(np.int64),
                                       coordination.astype(np.int64), ten_digit)
        sex = male.copy()
        mismatch = rng.random(n) < 1 / 4000
        sex[mismatch] = ~sex[mismatch]
        self.sex_mismatch = int(mismatch.sum())
        self.sex = sex

        # persistent traits
        self.comorb = np.where(rng.random(n) < R.COMORBIDITY_SHARE,
                               rng.choice(len(R.COMORBIDITY), size=n,
                                          p=self._norm([w for _, w in R.COMORBIDITY])),
                               _NULL).astype(np.int8)
        self._home_units()

    @staticmethod
    def _norm(weights: list[float]) -> np.ndarray:
        w = np.asarray(weights, dtype=float)
        return w / w.sum()

    def _home_units(self) -> None:
        """Each person's unit per category, from the catchment area of their municipality."""
        rng, n = self.rng, self.n
        home = np.zeros((n, 7), dtype=np.int8)
        for cat, ids in R.AREA_HOME.items():
            lookup = np.array([R.UNIT_INDEX[u] for u in ids], dtype=np.int8)
            home[:, cat] = lookup[self.area]
        private = rng.random(n) < np.array(R.PRIVATE_BER_SHARE)[self.area]
        home[private, R.BER] = R.UNIT_INDEX[R.PRIVATE_BER]
        other = (~private) & (rng.random(n) < 0.03)
        bers = np.array([R.UNIT_INDEX[u] for u in R.AREA_HOME[R.BER]], dtype=np.int8)
        home[other, R.BER] = bers[rng.integers(0, 4, int(other.sum()))]
        soc0 = len(R.HEALTH_UNITS)
        home[:, R.SOC] = np.where(self.muni >= 0, soc0 + self.muni, soc0)
        self.home = home

    # ------------------------------------------------------------- memberships
    def memberships(self) -> None:
        """Substance-group memberships (primary and secondary) with usual clinical state."""
        rng = self.rng
        p1 = np.flatnonzero(self.primary >= 0)
        p2 = np.flatnonzero(self.secondary >= 0)
        self.m_person = np.concatenate([p1, p2]).astype(np.int32)
        self.m_group = np.concatenate([self.primary[p1], self.secondary[p2]]).astype(np.int8)
        self.m_primary = np.concatenate([np.ones(len(p1), bool), np.zeros(len(p2), bool)])
        dep_share = np.array([g[3] for g in R.GROUPS])
        self.m_dependence = rng.random(len(self.m_person)) < dep_share[self.m_group]

    def laro(self) -> None:
        """LARO enrolments for part of the persons with opioid dependence (F11.2)."""
        rng = self.rng
        cand = np.flatnonzero((self.m_group == R.G_F11) & self.m_primary & self.m_dependence)
        cand = cand[rng.random(len(cand)) < 0.85]
        person = self.m_person[cand]
        k = len(person)
        prevalent = rng.random(k) < 0.35
        fy = int(self.ystart[0])
        # incident starts become more frequent over the years (LARO expands)
        incident = fy + (np.sqrt(rng.random(k)) * (self.period_end - 30 - fy)).astype(np.int64)
        start = np.where(prevalent,
                         _uniform_days(rng, np.full(k, _day(int(self.years[0]) - 7)),
                                       np.full(k, fy - 1)),
                         incident)
        adult = ((self.birth_year[person] + 21 - 1970).astype("datetime64[Y]")
                 .astype("datetime64[D]").astype(np.int64))
        start = np.maximum(start, adult).astype(np.int32)
        ok = start < self.death_or_end[person] - 1
        ok &= ~(prevalent & (start >= fy))  # a late adult birthday turned it into an incident one
        person, start, prevalent = person[ok], start[ok], prevalent[ok]
        k = len(person)
        unit = self.home[person, R.LARO].astype(np.int8)
        early_p = np.full(k, R.LARO_EARLY_END["default"])
        early_p[unit == R.UNIT_INDEX[R.LOW_RETENTION_UNIT]] = R.LARO_EARLY_END[R.LOW_RETENTION_UNIT]
        u = rng.random(k)
        early = (~prevalent) & (u < early_p)
        later = (~early) & (rng.random(k) < 0.40)
        end = np.full(k, _NULL, dtype=np.int64)
        end[early] = start[early] + rng.integers(21, 365, int(early.sum()))
        base = np.maximum(start + 366, self.ystart[0])
        end[later] = base[later] + rng.integers(0, 2200, int(later.sum()))
        reason = np.full(k, _NULL, dtype=np.int8)
        low = unit == R.UNIT_INDEX[R.LOW_RETENTION_UNIT]
        early_reasons = np.where(low[:, None], [[0.05, 0.70, 0.20, 0.05, 0, 0.0]],
                                 [[0.10, 0.55, 0.20, 0.10, 0, 0.05]])
        r_early = (rng.random(k)[:, None] > np.cumsum(early_reasons, axis=1)).sum(axis=1)
        r_early = np.minimum(r_early, 5)
        r_later = rng.choice(6, size=k, p=[0.3, 0.3, 0.1, 0.2, 0.0, 0.1])
        reason[early] = r_early[early]
        reason[later] = r_later[later]
        self.laro_enrol = self._close(person, unit, start, end, reason)
        self.laro_person = person
        self.laro_start = start
        self.laro_stop = np.where(self.laro_enrol["end"] >= 0,
                                  self.laro_enrol["end"],
                                  self.death_or_end[person]).astype(np.int32)
        self.laro_unit = unit
        self.laro_of_person = np.full(self.n, _NULL, dtype=np.int32)
        self.laro_of_person[person] = np.arange(k)

    @staticmethod
    def _laro_at(values: np.ndarray, index: np.ndarray) -> np.ndarray:
        """``values[index]`` where index -1 (no LARO enrolment) gives 0."""
        return np.append(values, values.dtype.type(0))[index]

    def _close(self, person: np.ndarray, unit: np.ndarray, start: np.ndarray,
               end: np.ndarray, reason: np.ndarray) -> dict[str, np.ndarray]:
        """Apply death (reason ``deceased``) and the end of the period to enrolments."""
        death = self.death[person]
        died = (death >= 0) & (death >= start) & ((end < 0) | (end >= death))
        end = np.where(died, death, end)
        reason = np.where(died, _END_REASONS.index("deceased"), reason)
        beyond = end > self.period_end
        end = np.where(beyond, _NULL, end)
        reason = np.where(beyond | (end < 0), _NULL, reason)
        end = np.where((end >= 0) & (end < start), start, end)
        return {"person": person.astype(np.int32), "unit": unit.astype(np.int8),
                "start": start.astype(np.int32), "end": end.astype(np.int32),
                "reason": reason.astype(np.int8)}

    # --------------------------------------------------------------- selection
    def select(self) -> None:
        """Choose, per group and year, exactly the calibrated number of persons."""
        rng = self.rng
        yr = self.years
        rel = (yr - yr.mean()) / 3.5
        out_p: list[np.ndarray] = [np.zeros(0, np.int32)]
        out_m: list[np.ndarray] = [np.zeros(0, np.int32)]
        out_y: list[np.ndarray] = [np.zeros(0, np.int8)]
        for g in range(self.ng):
            m = np.flatnonzero(self.m_group == g)
            p = self.m_person[m]
            by = self.birth_year[p][:, None]
            dy = _year_of(self.death_or_end[p])[:, None]
            eligible = (yr[None, :] >= by + 14) & (yr[None, :] <= by + 85) & (yr[None, :] <= dy)
            a = rng.normal(0, 1, len(m)) + 0.8 * self.m_primary[m]
            b = rng.normal(0, 0.6, len(m))
            score = a[:, None] + b[:, None] * rel[None, :] + rng.normal(0, 0.7, (len(m), self.ny))
            if g == R.G_F11:
                li = self.laro_of_person[p]
                has = li >= 0
                ls = np.where(has, self._laro_at(self.laro_start, li), 0)[:, None]
                le = np.where(has, self._laro_at(self.laro_stop, li), 0)[:, None]
                in_laro = has[:, None] & (ls <= self.yend[None, :]) & (le >= self.ystart[None, :])
                score = score + 3.0 * in_laro
            score = np.where(eligible, score, -np.inf)
            for j in range(self.ny):
                t = int(min(self.targets[g, j], eligible[:, j].sum()))
                if t <= 0:
                    continue
                top = np.argpartition(-score[:, j], t - 1)[:t]
                top.sort()
                out_p.append(p[top])
                out_m.append(m[top])
                out_y.append(np.full(t, j, dtype=np.int8))
        self.pgy_person = np.concatenate(out_p).astype(np.int32)
        self.pgy_member = np.concatenate(out_m).astype(np.int32)
        self.pgy_group = self.m_group[self.pgy_member]
        self.pgy_year = np.concatenate(out_y).astype(np.int8)

    # ---------------------------------------------------------------- contacts
    def contacts(self) -> None:
        """Substance contacts (one or more per selected person-group-year)."""
        rng = self.rng
        n_pgy = len(self.pgy_person)
        g, y, p = self.pgy_group, self.pgy_year, self.pgy_person
        lam = np.array([_EXTRA_CONTACTS[c] for c in R.GROUP_CODES])[g]
        k = 1 + rng.poisson(lam * rng.gamma(2.0, 0.5, n_pgy))
        li = self.laro_of_person[p]
        laro_pgy = (g == R.G_F11) & (li >= 0)
        ov_lo = np.maximum(self._laro_at(self.laro_start, li), self.ystart[y])
        ov_hi = np.minimum(self._laro_at(self.laro_stop, li), self.yend[y])
        frac = np.where(laro_pgy, np.clip((ov_hi - ov_lo + 1) / 365.0, 0, 1), 0)
        k = k + rng.poisson(9.0 * frac)
        self.pgy_k = k.astype(np.int32)
        self.pgy_off = (np.cumsum(k) - k).astype(np.int64)
        c_pgy = np.repeat(np.arange(n_pgy, dtype=np.int32), k)
        nc = len(c_pgy)
        cp = p[c_pgy]
        cy = y[c_pgy]
        cg = g[c_pgy]
        lo = self.ystart[cy]
        hi = np.minimum(self.yend[cy], self.death_or_end[cp])
        date = _office_days(rng, _uniform_days(rng, lo, hi), lo, hi)
        # clinical state
        dep = self.m_dependence[self.pgy_member][c_pgy]
        cum_dep = np.cumsum(_STATE_P_DEPENDENCE / _STATE_P_DEPENDENCE.sum())
        cum_harm = np.cumsum(_STATE_P_HARMFUL / _STATE_P_HARMFUL.sum())
        u = rng.random(nc)
        state = np.where(dep, np.searchsorted(cum_dep, u, side="right"),
                         np.searchsorted(cum_harm, u, side="right")).astype(np.int8)
        state = np.minimum(state, 9)
        # unit category
        cum = np.cumsum(np.array([_CATEGORY_P[c] for c in R.GROUP_CODES]), axis=1)
        cum = cum / cum[:, -1:]
        cat = _categorical(rng, cum[:, :-1], cg)  # 0..3 = BER, AVG, PSYK, VC
        young = (date - self.birth[cp]) < int(21 * 365.25)
        cat = np.where((cat == R.BER) & young & (rng.random(nc) < 0.8), R.UNG, cat)
        cli = self.laro_of_person[cp]
        in_laro = ((cg == R.G_F11) & (cli >= 0) & (date >= self._laro_at(self.laro_start, cli))
                   & (date <= self._laro_at(self.laro_stop, cli)))
        cat = np.where(in_laro & (rng.random(nc) < 0.85), R.LARO, cat).astype(np.int8)
        unit = self.home[cp, cat]
        laro_unit = self._laro_at(self.laro_unit, cli)
        unit = np.where((cat == R.LARO) & (cli >= 0), laro_unit, unit)
        unit = unit.astype(np.int8)
        inpatient = cat == R.AVG
        withdrawal = inpatient & (rng.random(nc) < 0.45) & np.isin(cg, [0, 1, 3, 8])
        state = np.where(withdrawal, 3, state).astype(np.int8)
        # LARO visits, and the first opioid visit of the year of a LARO patient, are F11.2
        laro_anchor = np.zeros(nc, dtype=bool)
        laro_anchor[self.pgy_off[laro_pgy]] = True
        state = np.where((cat == R.LARO) | laro_anchor, 2, state).astype(np.int8)
        # codes
        main = self._fmt((cg.astype(np.int16) * 10 + state) * 2, unit)
        other = np.full(nc, _NULL, dtype=np.int16)
        cm = self.comorb[cp]
        u = rng.random(nc)
        with_comorb = (cm >= 0) & (u < 0.45)
        other = np.where(with_comorb, self._fmt(np.maximum(cm, 0).astype(np.int16) * 2, unit),
                         other)
        tobacco = (~with_comorb) & (rng.random(nc) < 0.08)
        other = np.where(tobacco, self._fmt(np.full(nc, self.other_tobacco, np.int16), unit), other)
        limit = self.death_or_end[cp]
        end = np.where(inpatient, np.minimum(date + rng.geometric(1 / 6, nc), limit), _NULL)
        self.c = {
            "person": cp, "date": date, "unit": unit, "cat": cat, "main": main,
            "other": other.astype(np.int16), "group": cg, "year": cy,
            "anchor": np.zeros(nc, dtype=bool), "end": end.astype(np.int32),
        }
        self.c["anchor"][self.pgy_off] = True
        self._after_detox(np.flatnonzero(inpatient))
        self.n_substance_contacts = len(self.c["person"])
        # a LARO enrolment needs opioid contacts in the period: drop the (rare) others
        seen = np.zeros(self.n, dtype=bool)
        seen[p[laro_pgy]] = True
        keep = seen[self.laro_enrol["person"]]
        self.laro_enrol = {key: value[keep] for key, value in self.laro_enrol.items()}
        for name in ("laro_person", "laro_start", "laro_stop", "laro_unit"):
            setattr(self, name, getattr(self, name)[keep])
        self.laro_of_person = np.full(self.n, _NULL, dtype=np.int32)
        self.laro_of_person[self.laro_person] = np.arange(len(self.laro_person))

    def _after_detox(self, stays: np.ndarray) -> None:
        """Outpatient follow-up visits after detox stays, within the same year.

        The share followed up within 30 days differs by catchment area and is recorded in
        the manifest (Kristianstad area lowest, long travel to the ward in Malmö).
        """
        rng = self.rng
        c = self.c
        person = c["person"][stays]
        area = self.area[person]
        share = np.array(R.DETOX_FOLLOW_UP_SHARE)[area]
        gap = 1 + rng.gamma(1.5, np.array(R.DETOX_FOLLOW_UP_DAYS)[area] / 1.5)
        date = c["end"][stays] + gap.astype(np.int64)
        year = c["year"][stays]
        ok = (rng.random(len(stays)) < share) & (date <= np.minimum(
            self.yend[year], self.death_or_end[person]))
        stays, person, date = stays[ok], person[ok], date[ok].astype(np.int32)
        n = len(stays)
        li = self.laro_of_person[person]
        in_laro = (li >= 0) & (date >= self._laro_at(self.laro_start, li)) & (
            date <= self._laro_at(self.laro_stop, li))
        young = (date - self.birth[person]) < int(21 * 365.25)
        cat = np.where(in_laro, R.LARO, np.where(young, R.UNG, R.BER)).astype(np.int8)
        unit = np.where(in_laro, self._laro_at(self.laro_unit, li),
                        self.home[person, cat]).astype(np.int8)
        group = c["group"][stays]
        state = np.where((c["main"][stays] // 2) % 10 == 1, 1, 2)  # harmful use stays so
        main = self._fmt(((group.astype(np.int16) * 10 + state) * 2).astype(np.int16), unit)
        add = {"person": person, "date": date, "unit": unit, "cat": cat, "main": main,
               "other": c["other"][stays], "group": group, "year": c["year"][stays],
               "anchor": np.zeros(n, bool), "end": np.full(n, _NULL, np.int32)}
        self.c = {key: np.concatenate([c[key], add[key]]) for key in c}

    def filler(self) -> None:
        """Social-services, psychiatric and primary-care contacts without an F1x main diagnosis."""
        rng = self.rng
        ny = self.ny
        active = np.unique(self.pgy_person.astype(np.int64) * ny + self.pgy_year)
        a_person = (active // ny).astype(np.int32)
        a_year = (active % ny).astype(np.int8)
        # persons with no substance contact: psychiatric / social-services clients
        lonely = np.ones(self.n, dtype=bool)
        lonely[a_person] = False
        lp = np.flatnonzero(lonely)
        yr = self.years[None, :]
        by = self.birth_year[lp][:, None]
        dy = _year_of(self.death_or_end[lp])[:, None]
        eligible = (yr >= by + 14) & (yr <= by + 85) & (yr <= dy)
        prop = rng.beta(2, 2, len(lp))[:, None]
        draw = rng.random((len(lp), ny))
        on = eligible & (draw < prop)
        none_on = ~on.any(axis=1)
        best = np.argmax(np.where(eligible, draw, -1.0), axis=1)
        on[np.flatnonzero(none_on), best[none_on]] = True
        li, lj = np.nonzero(on)
        l_person = lp[li].astype(np.int32)
        l_year = lj.astype(np.int8)
        l_k = 1 + rng.poisson(1.2, len(l_person))
        target = round(CONTACTS_PER_PERSON_YEAR * self.ny * self.n)
        rest = target - self.n_substance_contacts - int(l_k.sum())
        mu = max(rest, 0) / max(len(a_person), 1)
        a_k = rng.poisson(mu, len(a_person))
        person = np.concatenate([np.repeat(a_person, a_k), np.repeat(l_person, l_k)])
        year = np.concatenate([np.repeat(a_year, a_k), np.repeat(l_year, l_k)])
        is_lonely = np.concatenate([np.zeros(int(a_k.sum()), bool), np.ones(int(l_k.sum()), bool)])
        nf = len(person)
        lo = self.ystart[year]
        hi = np.minimum(self.yend[year], self.death_or_end[person])
        date = _office_days(rng, _uniform_days(rng, lo, hi), lo, hi)
        u = rng.random(nf)
        cat = np.where(u < 0.5, R.SOC, np.where(u < np.where(is_lonely, 0.88, 0.8), R.PSYK, R.VC))
        cat = cat.astype(np.int8)
        unit = self.home[person, cat].astype(np.int8)
        cm = self.comorb[person]
        combo_first = np.array([self.psych_codes.index(c.split(";")[0]) for c, _ in R.COMORBIDITY])
        plain = np.array([self.psych_codes.index(c) for c in R.FILLER_PSYCH_DX])
        psych = np.where(cm >= 0, combo_first[np.maximum(cm, 0)],
                         plain[rng.integers(0, len(plain), nf)])
        main = np.full(nf, _NULL, dtype=np.int16)
        main = np.where(cat == R.PSYK, self._fmt((self.main_psych0 + 2 * psych).astype(np.int16),
                                                 unit), main)
        somatic = rng.integers(0, len(R.SOMATIC_DX), nf)
        main = np.where(cat == R.VC, self._fmt((self.main_somatic0 + 2 * somatic).astype(np.int16),
                                               unit), main)
        # psychiatric contacts of persons without substance contacts carry an F1x other_dx
        grp = np.where(self.primary[person] >= 0, self.primary[person], 0)
        f1 = self._fmt((self.other_f1 + 2 * grp).astype(np.int16), unit)
        other = np.where((cat == R.PSYK) & is_lonely & (rng.random(nf) < 0.7), f1, _NULL)
        with_comorb = (other < 0) & (cat != R.SOC) & (cm >= 0) & (rng.random(nf) < 0.3)
        other = np.where(with_comorb, self._fmt(np.maximum(cm, 0).astype(np.int16) * 2, unit),
                         other)
        other = np.where(cat == R.SOC, _NULL, other).astype(np.int16)
        main = np.where(cat == R.SOC, _NULL, main).astype(np.int16)
        f = {"person": person, "date": date, "unit": unit, "cat": cat, "main": main,
             "other": other, "group": np.full(nf, _NULL, np.int8), "year": year,
             "anchor": np.zeros(nf, bool), "end": np.full(nf, _NULL, np.int32)}
        self.c = {key: np.concatenate([self.c[key], f[key]]) for key in self.c}

    def finish_contacts(self) -> None:
        """Contact types, inpatient end dates, missing codes; sort by person and date."""
        rng = self.rng
        c = self.c
        nc = len(c["person"])
        cat, date = c["cat"], c["date"]
        digital_p = np.array([_DIGITAL_SHARE.get(int(y), 0.10) for y in self.years])[c["year"]]
        ctype = np.where(cat == R.SOC, 2, np.where(cat == R.AVG, 1, 0)).astype(np.int8)
        ctype = np.where((ctype == 0) & (rng.random(nc) < digital_p), 3, ctype).astype(np.int8)
        c["ctype"] = ctype
        # non-specific counselling code instead of F1x: never on the anchor or a coded contact
        coded = np.zeros(nc, dtype=bool)
        coded[self.proc_contact] = True
        unit = c["unit"]
        share = np.where(unit == R.UNIT_INDEX[R.UNSPECIFIC_DX_UNIT], R.UNSPECIFIC_DX_SHARE,
                         R.UNSPECIFIC_DX_BASELINE)
        vague = (c["group"] >= 0) & ~c["anchor"] & ~coded & (rng.random(nc) < share)
        z = self._fmt((self.main_counselling0 + 2 * (c["group"] != R.G_F10)).astype(np.int16),
                      unit)
        c["main"] = np.where(vague, z, c["main"]).astype(np.int16)
        # sort by person, date, unit
        key = (c["person"].astype(np.int64) << 26) | ((date.astype(np.int64) - _day(1990)) << 6) \
            | unit.astype(np.int64)
        order = np.argsort(key, kind="stable")
        inverse = np.empty(nc, dtype=np.int64)
        inverse[order] = np.arange(nc)
        for name in list(c):
            c[name] = c[name][order]
        self.proc_contact = inverse[self.proc_contact]

    # -------------------------------------------------------------- procedures
    def procedures(self) -> None:
        """KVÅ codes per person-group-year at calibrated rates, with unit differences."""
        rng = self.rng
        c = self.c
        g, y = self.pgy_group, self.pgy_year
        n_pgy = len(g)
        gy = g.astype(np.int64) * self.ny + y
        year_of_pgy = self.years[y]
        codes = ["AU119", "AU124", "DU119", *R.KVA_OTHER]
        self.kva_codes = codes
        under = R.UNIT_INDEX[R.UNDERCODE_UNIT]
        gap = R.UNIT_INDEX[R.KVA_GAP_UNIT]
        out_c, out_k = [], []
        for ci, code in enumerate(codes):
            if code in R.KVA_OTHER:
                rate = np.full((self.ng, self.ny), R.KVA_OTHER[code])
            else:
                rate = np.zeros((self.ng, self.ny))
                for gi, (gc, v17, v21, *_rest) in enumerate(R.GROUPS):
                    ref = R.KVA_CALIBRATED.get(gc)
                    src = (v17, v21)
                    if ref is None:
                        ref = R.KVA_CALIBRATED[R.KVA_FALLBACK_GROUP]
                        fb = next(x for x in R.GROUPS if x[0] == R.KVA_FALLBACK_GROUP)
                        src = (fb[1], fb[2])
                    n17, n21 = ref[code]
                    for j, yy in enumerate(self.years):
                        rate[gi, j] = min(0.9, _trend(n17 / src[0], n21 / src[1], int(yy)))
            contact = self.pgy_off + np.floor(rng.random(n_pgy) * self.pgy_k).astype(np.int64)
            unit = c["unit"][contact]
            weight = np.ones(n_pgy)
            if code in R.KVA_CATEGORY_WEIGHT:
                weight = np.array(R.KVA_CATEGORY_WEIGHT[code] + [0.0])[c["cat"][contact]]
            if code == "AU119":
                weight = np.where(unit == under, weight * R.UNDERCODE_FACTOR, weight)
            weight = np.where((unit == gap) & (year_of_pgy == R.KVA_GAP_YEAR), 0.0, weight)
            mean_w = np.bincount(gy, weight, minlength=self.ng * self.ny) / np.maximum(
                np.bincount(gy, minlength=self.ng * self.ny), 1)
            p = rate[g, y] * weight / np.where(mean_w[gy] > 0, mean_w[gy], 1.0)
            chosen = np.flatnonzero(rng.random(n_pgy) < np.minimum(p, 0.95))
            out_c.append(contact[chosen])
            out_k.append(np.full(len(chosen), ci, dtype=np.int8))
            if code in R.KVA_REPEATS and len(chosen):
                reps = rng.poisson(R.KVA_REPEATS[code], len(chosen))
                rep = np.repeat(chosen, reps)
                first = np.repeat(contact[chosen], reps)
                extra = self.pgy_off[rep] + np.floor(rng.random(len(rep)) * self.pgy_k[rep]).astype(
                    np.int64)
                keep = (c["unit"][extra] == c["unit"][first]) & (extra != first)
                extra = np.unique(extra[keep])
                out_c.append(extra)
                out_k.append(np.full(len(extra), ci, dtype=np.int8))
        # psychiatric assessments on other psychiatric contacts
        filler = np.arange(self.n_substance_contacts, len(c["person"]))
        psych = filler[c["cat"][filler] == R.PSYK]
        for code, share in (("AU118", 0.05), ("AU006", 0.015)):
            hit = psych[rng.random(len(psych)) < share]
            out_c.append(hit)
            out_k.append(np.full(len(hit), codes.index(code), dtype=np.int8))
        pc_ = np.concatenate(out_c).astype(np.int64)
        pk = np.concatenate(out_k).astype(np.int8)
        # one code per contact at most once
        key = np.unique(pc_ * 64 + pk)
        self.proc_contact = key // 64
        self.proc_code = (key % 64).astype(np.int8)

    def finish_procedures(self) -> None:
        """Sort procedures by contact and drop contact_id on about 10 % of rows."""
        order = np.lexsort((self.proc_code, self.proc_contact))
        self.proc_contact = self.proc_contact[order]
        self.proc_code = self.proc_code[order]
        self.proc_linked = self.rng.random(len(order)) >= 0.10

    # -------------------------------------------------------------- enrolments
    def programmes(self) -> None:
        """vip-beroende and rop enrolments, with vip-beroende assessments."""
        rng = self.rng
        c = self.c
        vip_groups = np.array([i for i, gc in enumerate(R.GROUP_CODES) if gc != "F11"])
        mask = (c["cat"] == R.BER) & np.isin(c["group"], vip_groups) & \
            (self.laro_of_person[c["person"]] < 0)
        idx = np.flatnonzero(mask)
        first = _first_per_key(c["person"][idx])
        cand = idx[first]
        cand = cand[rng.random(len(cand)) < 0.35]
        person = c["person"][cand]
        unit = c["unit"][cand]
        start = c["date"][cand]
        k = len(cand)
        u = rng.random(k)
        end = np.full(k, _NULL, dtype=np.int64)
        reason = np.full(k, _NULL, dtype=np.int8)
        done = u < 0.45
        drop = (u >= 0.45) & (u < 0.70)
        moved = (u >= 0.70) & (u < 0.75)
        end[done] = start[done] + rng.integers(150, 540, int(done.sum()))
        end[drop] = start[drop] + rng.integers(20, 270, int(drop.sum()))
        end[moved] = start[moved] + rng.integers(30, 400, int(moved.sum()))
        reason[done], reason[drop], reason[moved] = 0, 1, 3
        vip = self._close(person, unit, start, end, reason)
        vip_group = c["group"][cand]
        f1_code = (c["main"][cand] >= 0) & (c["main"][cand] < self.main_psych0)
        vip_dep = f1_code & (((c["main"][cand] // 2) % 10) == 2)
        self._assessments(vip, vip_group, vip_dep)

        # rop: persons with a co-occurring psychiatric diagnosis seen in psychiatry for F1x
        mask = (c["cat"] == R.PSYK) & (c["group"] >= 0) & (self.comorb[c["person"]] >= 0)
        idx = np.flatnonzero(mask)
        first = _first_per_key(c["person"][idx])
        cand = idx[first]
        cand = cand[rng.random(len(cand)) < 0.5]
        # the enrolling visit records the co-occurring diagnosis
        cm = self.comorb[c["person"][cand]].astype(np.int16)
        c["other"][cand] = self._fmt(cm * 2, c["unit"][cand])
        k = len(cand)
        start = c["date"][cand]
        ends = rng.random(k) < 0.45
        end = np.where(ends, start + rng.integers(90, 900, k), _NULL)
        reason = np.where(ends, rng.choice([0, 1, 3, 5], size=k, p=[0.5, 0.3, 0.1, 0.1]), _NULL)
        rop = self._close(c["person"][cand], c["unit"][cand], start, end, reason.astype(np.int8))
        self.enrol_parts = [("laro", self.laro_enrol), ("vip-beroende", vip), ("rop", rop)]

    def _assessments(self, vip: dict[str, np.ndarray], group: np.ndarray,
                     dependence: np.ndarray) -> None:
        rng = self.rng
        k = len(vip["person"])
        person, unit, start, end = vip["person"], vip["unit"], vip["start"], vip["end"]
        limit = self.death_or_end[person]
        completion = np.array([R.FOLLOWUP_COMPLETION.get(u.unit_id, (0.75, 0.5, 0.35, 0.4))
                               for u in R.UNITS])
        f10 = R.GROUP_CODES.index("F10")
        f19 = R.GROUP_CODES.index("F19")
        alcohol = (group == f10) | (group == f19)
        drugs = group != f10
        # latent totals: intake and relative level at follow-ups
        improved = rng.random(k) < 0.72
        abstinent = improved & (rng.random(k) < 0.25)  # no drinking at follow-up
        f6 = np.where(improved, rng.uniform(0.35, 0.85, k), rng.uniform(0.95, 1.3, k))
        factor = np.stack([np.ones(k), f6, f6 * rng.uniform(0.8, 1.08, k),
                           f6 * rng.uniform(0.75, 1.05, k)])
        audit0 = np.where(dependence, rng.normal(22, 6, k), rng.normal(13, 5, k))
        dudit0 = np.where(dependence, rng.normal(26, 8, k), rng.normal(14, 6, k))
        short_unit = np.isin(unit, [R.UNIT_INDEX[x] for x in R.AUDIT_C_FOLLOWUP_UNITS])
        rows: list[dict[str, np.ndarray]] = []
        self.vip_due: list[np.ndarray] = []
        self.vip_done: list[np.ndarray] = []
        for s, stage in enumerate(_STAGES):
            if stage == "intake":
                due = start.astype(np.int64)
                date = due + rng.integers(0, 15, k)
                valid = np.ones(k, bool)
            elif stage == "discharge":
                due = end.astype(np.int64)
                date = due + rng.integers(-7, 3, k)
                valid = (end >= 0) & (vip["reason"] == 0)
            else:
                due = start + (182 if stage == "month-6" else 365)
                date = due + rng.integers(-10, 25, k)
                valid = (end < 0) | (end >= due - 14)
            date = np.clip(date, start, limit)
            due_ok = valid & (due <= limit)
            valid = due_ok & (rng.random(k) < completion[unit, s])
            self.vip_due.append(np.bincount(unit[due_ok], minlength=len(R.UNITS)))
            self.vip_done.append(np.bincount(unit[valid], minlength=len(R.UNITS)))
            ix = np.flatnonzero(valid)
            for instrument, use, total0, top in (
                ("audit", alcohol, audit0, 40), ("dudit", drugs, dudit0, 44)
            ):
                sel = ix[use[ix]]
                name = np.full(len(sel), 0 if instrument == "audit" else 2, dtype=np.int8)
                if instrument == "audit" and stage == "month-6":
                    name[short_unit[sel]] = 1  # audit-c
                total = np.clip(total0[sel] * factor[s, sel], 0, top)
                dry = abstinent[sel] if instrument == "audit" and s > 0 else None
                items = self._items(instrument, total / top, dry)
                if instrument == "audit":
                    items[name == 1, 3:] = _NULL
                rows.append({"person": person[sel], "unit": unit[sel], "date": date[sel],
                             "instrument": name, "stage": np.full(len(sel), s, np.int8),
                             "items": items})
        self.assess = {key: np.concatenate([r[key] for r in rows]) for key in rows[0]}

    def _items(self, instrument: str, level: np.ndarray,
               dry: np.ndarray | None = None) -> np.ndarray:
        """Item answers around a relative level (0–1): 0–4 items and 0/2/4 items.

        ``dry`` marks AUDIT answers of persons who no longer drink (items 1–8 are 0,
        the last-year items 9–10 keep their level).
        """
        n = len(level)
        out = np.full((n, 11), _NULL, dtype=np.int8)
        steps = [1] * 8 + [2, 2] if instrument == "audit" else [1] * 9 + [2, 2]
        noise = self.rng.normal(0, 0.8, (n, len(steps)))
        raw = level[:, None] * 4 + noise
        step = np.array(steps)
        val = np.clip(np.rint(raw / step) * step, 0, 4)
        out[:, : len(steps)] = val.astype(np.int8)
        if instrument == "audit":  # AUDIT's skip rules: items not asked are left empty
            if dry is not None:
                out[dry, :8] = 0
            never = out[:, 0] == 0
            out[never, 1:8] = _NULL
            light = ~never & (out[:, 1] == 0) & (out[:, 2] == 0)
            out[light, 3:8] = _NULL
        return out

    # ------------------------------------------------------------- medications
    def medications(self) -> None:
        """Alcohol relapse prevention, LARO agonists, analgesic opioids and naloxone."""
        rng = self.rng
        c = self.c
        parts: list[tuple[np.ndarray, ...]] = []
        atc = [a for a, _ in R.ALCOHOL_DRUGS + R.LARO_DRUGS + R.ANALGESIC_OPIOIDS] + [R.NALOXONE]
        self.atc_codes = atc
        alc_p = self._norm([w for _, w in R.ALCOHOL_DRUGS])
        laro_p = self._norm([w for _, w in R.LARO_DRUGS])
        anal_p = self._norm([w for _, w in R.ANALGESIC_OPIOIDS])
        na, nl = len(R.ALCOHOL_DRUGS), len(R.LARO_DRUGS)

        def clip_end(person: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
            lim = self.death_or_end[person]
            end = np.where(end > lim, np.where(self.death[person] >= 0, lim, _NULL), end)
            return np.where((end >= 0) & (end < start), start, end).astype(np.int32)

        # alcohol relapse prevention for part of F10 dependence
        f10_dep = (c["group"] == R.G_F10) & (c["main"] >= 0) & (c["main"] < self.main_psych0) \
            & ((c["main"] // 2) % 10 == 2) & (c["cat"] != R.SOC)
        idx = np.flatnonzero(f10_dep)
        first = _first_per_key(c["person"][idx])
        cand = idx[first]
        cand = cand[rng.random(len(cand)) < 0.32]
        person = c["person"][cand]
        k = len(cand)
        start = np.minimum(c["date"][cand] + rng.integers(0, 30, k), self.death_or_end[person])
        end = np.where(rng.random(k) < 0.2, _NULL, start + rng.integers(30, 365, k))
        end = clip_end(person, start, end)
        drug = rng.choice(na, size=k, p=alc_p)
        parts.append((person, c["unit"][cand], drug, start, end))
        again = (end >= 0) & (rng.random(k) < 0.25)
        s2 = end[again] + rng.integers(30, 400, int(again.sum()))
        p2 = person[again]
        ok = s2 <= self.death_or_end[p2]
        s2, p2 = s2[ok], p2[ok]
        e2 = clip_end(p2, s2, s2 + rng.integers(30, 365, len(s2)))
        parts.append((p2, c["unit"][cand][again][ok], rng.choice(na, size=len(p2), p=alc_p),
                      s2, e2))

        # LARO agonists follow the enrolment, sometimes with one switch
        e = self.laro_enrol
        k = len(e["person"])
        stop = np.where(e["end"] >= 0, e["end"], self.death_or_end[e["person"]])
        start = np.minimum(e["start"] + rng.integers(0, 8, k), stop)
        drug = na + rng.choice(nl, size=k, p=laro_p)
        switch = ((stop - start) > 120) & (rng.random(k) < 0.15)
        cut = start + ((stop - start) * rng.uniform(0.2, 0.8, k)).astype(np.int64)
        end1 = np.where(switch, cut - 1, e["end"])
        parts.append((e["person"], e["unit"], drug, start, end1))
        other = na + (drug - na + rng.integers(1, nl, k)) % nl
        parts.append((e["person"][switch], e["unit"][switch], other[switch], cut[switch],
                      e["end"][switch]))

        # analgesic opioids in primary care (never LARO)
        first_any = _first_per_key(c["person"])
        pick = first_any[rng.random(len(first_any)) < 0.05]
        person = c["person"][pick]
        k = len(pick)
        start = np.minimum(c["date"][pick] + rng.integers(0, 60, k), self.death_or_end[person])
        end = clip_end(person, start, start + rng.integers(5, 90, k))
        parts.append((person, self.home[person, R.VC], na + nl + rng.choice(3, size=k, p=anal_p),
                      start, end))

        # naloxone kits (from mid-2018) for LARO patients and others with opioid use
        nal_from = max(_day(2018, 6, 1), int(self.ystart[0]))
        take = rng.random(len(e["person"])) < 0.45
        person = e["person"][take]
        s = np.maximum(e["start"][take], nal_from) + rng.integers(0, 400, int(take.sum()))
        ok = s <= self.death_or_end[person]
        parts.append((person[ok], e["unit"][take][ok], np.full(int(ok.sum()), len(atc) - 1),
                      s[ok], np.full(int(ok.sum()), _NULL)))
        f11 = (c["group"] == R.G_F11) & (self.laro_of_person[c["person"]] < 0)
        idx = np.flatnonzero(f11)
        first = _first_per_key(c["person"][idx])
        cand = idx[first]
        cand = cand[rng.random(len(cand)) < 0.15]
        person = c["person"][cand]
        s = np.maximum(c["date"][cand], nal_from) + rng.integers(0, 60, len(cand))
        ok = s <= self.death_or_end[person]
        parts.append((person[ok], c["unit"][cand][ok], np.full(int(ok.sum()), len(atc) - 1),
                      s[ok], np.full(int(ok.sum()), _NULL)))

        cols = [np.concatenate([np.asarray(p[i]) for p in parts]) for i in range(5)]
        order = np.lexsort((cols[2], cols[3], cols[0]))
        self.meds: dict[str, np.ndarray] = {
            "person": cols[0][order].astype(np.int32), "unit": cols[1][order].astype(np.int8),
            "atc": cols[2][order].astype(np.int8), "start": cols[3][order].astype(np.int32),
            "end": cols[4][order].astype(np.int32),
        }

    # ---------------------------------------------------------------- findings
    def findings(self) -> dict:
        """The planted truths, with their measured values in this data set."""
        c = self.c
        years = self.years
        au119 = self.kva_codes.index("AU119")
        sub = c["group"] >= 0

        def au119_rate(unit_mask: np.ndarray) -> float:
            """Share of person-years with a substance contact at the units that got AU119."""
            base = np.unique(c["person"][sub & unit_mask].astype(np.int64) * 100 + c["year"][sub &
                                                                                    unit_mask])
            pc_ = self.proc_contact[self.proc_code == au119]
            pc_ = pc_[unit_mask[pc_] & sub[pc_]]
            hit = np.unique(c["person"][pc_].astype(np.int64) * 100 + c["year"][pc_])
            return round(len(hit) / max(len(base), 1), 4)

        ber = np.isin(c["unit"], [R.UNIT_INDEX[u] for u in R.AREA_HOME[R.BER]])
        under = c["unit"] == R.UNIT_INDEX[R.UNDERCODE_UNIT]
        gap_unit = R.UNIT_INDEX[R.KVA_GAP_UNIT]
        proc_units = c["unit"][self.proc_contact]
        proc_years = years[c["year"][self.proc_contact]]
        per_year = {int(y): int(((proc_units == gap_unit) & (proc_years == y)).sum())
                    for y in years}
        vague_unit = R.UNIT_INDEX[R.UNSPECIFIC_DX_UNIT]
        health = c["cat"] != R.SOC
        at_vague = c["unit"] == vague_unit
        counselling = (c["main"] >= self.main_counselling0) & (
            c["main"] < self.main_counselling0 + 2 * len(R.COUNSELLING_DX))
        e = self.laro_enrol
        retention = self._retention(e)
        completion = self._completion()
        follow_up = self._detox_follow_up()
        return {
            "au119_under_coding": {
                "unit_id": R.UNDERCODE_UNIT,
                "description": "AU119 registered at a fifth of the rate of other addiction clinics",
                "planted_relative_rate": R.UNDERCODE_FACTOR,
                "measured_au119_share_unit": au119_rate(under),
                "measured_au119_share_other_addiction_clinics": au119_rate(ber & ~under),
            },
            "kva_coding_gap": {
                "unit_id": R.KVA_GAP_UNIT, "year": R.KVA_GAP_YEAR,
                "description": "the unit registers no KVÅ codes at all in one year",
                "measured_procedure_rows_per_year": per_year,
            },
            "unspecific_main_dx": {
                "unit_id": R.UNSPECIFIC_DX_UNIT,
                "description": "many visits registered with a counselling Z-code (Z71.4/Z71.5) "
                               "as main diagnosis instead of F10-F19: the substance diagnosis "
                               "is missing (format v1 needs a main_dx outside social services)",
                "measured_share_counselling_main_dx_unit": round(
                    float(counselling[at_vague].mean()) if at_vague.any() else 0.0, 4),
                "measured_share_counselling_main_dx_other_health_units": round(
                    float(counselling[health & ~at_vague].mean()), 4),
            },
            "low_laro_retention": {
                "unit_id": R.LOW_RETENTION_UNIT,
                "description": "many LARO enrolments end (mostly dropout) within the first year",
                "definition": "enrolments starting in the period with at least 365 days of "
                              "observation: share still enrolled 365 days after start",
                "measured_12_month_retention": retention,
            },
            "low_followup_completion": {
                "unit_id": R.LOW_FOLLOWUP_UNIT,
                "description": "few vip-beroende follow-up assessments are registered",
                "planted_completion": dict(zip(_STAGES, R.FOLLOWUP_COMPLETION[R.LOW_FOLLOWUP_UNIT],
                                               strict=True)),
                "measured_completion_definition": "registered / due (due date in the period, "
                                                  "person alive, enrolment not ended before)",
                "measured_completion": completion,
            },
            "slow_follow_up_after_detox": {
                "unit_id": R.AREA_HOME[R.BER][3],
                "area": R.DETOX_FOLLOW_UP_AREA,
                "description": "after a stay at the detox ward, persons from the Kristianstad "
                               "area get an outpatient visit later and less often",
                "definition": "inpatient stays ending by 1 December: share with an outpatient "
                              "or digital health-care visit 1-30 days after end_date, by the "
                              "person's home addiction clinic",
                "measured_share_within_30_days": follow_up,
            },
            "sex_mismatch": {"count": self.sex_mismatch,
                             "description": "sex differs from the identity number's 9th digit"},
            "unknown_kva_codes": R.UNKNOWN_KVA,
        }

    def _detox_follow_up(self) -> dict[str, float]:
        c = self.c
        visit = np.flatnonzero((c["ctype"] == 0) | (c["ctype"] == 3))
        key = c["person"][visit].astype(np.int64) * 100_000 + c["date"][visit]
        stays = np.flatnonzero((c["ctype"] == 1) & (c["end"] <= self.period_end - 30))
        person = c["person"][stays].astype(np.int64)
        pos = np.searchsorted(key, person * 100_000 + c["end"][stays], side="right")
        pos = np.minimum(pos, len(key) - 1)
        nxt = visit[pos]
        hit = (c["person"][nxt] == person) & (c["date"][nxt] > c["end"][stays]) & (
            c["date"][nxt] <= c["end"][stays] + 30)
        home = self.home[person, R.BER]
        return {R.UNITS[u].unit_id: round(float(hit[home == u].mean()), 4)
                for u in np.unique(home)}

    def _retention(self, e: dict[str, np.ndarray]) -> dict[str, float]:
        out = {}
        observed = (e["start"] >= self.ystart[0]) & (e["start"] + 365 <= self.period_end)
        for ui in np.unique(e["unit"]):
            m = observed & (e["unit"] == ui)
            stayed = (e["end"][m] < 0) | (e["end"][m] >= e["start"][m] + 365)
            out[R.UNITS[ui].unit_id] = round(float(stayed.mean()) if m.any() else 0.0, 4)
        return out

    def _completion(self) -> dict[str, dict[str, float]]:
        """Per unit and stage: share of due vip-beroende assessments that were registered."""
        out = {}
        for ui in np.flatnonzero(self.vip_due[0]):
            out[R.UNITS[ui].unit_id] = {
                stage: round(float(self.vip_done[s][ui] / max(self.vip_due[s][ui], 1)), 4)
                for s, stage in enumerate(_STAGES)
            }
        return out

    # ------------------------------------------------------------------ output
    def write(self, out: Path, fmt: str, progress: Progress | None) -> dict[str, int]:
        """Write every table; return row counts."""
        d32 = pa.date32()
        unit_ids = pa.array([u.unit_id for u in R.UNITS])
        rows: dict[str, int] = {}

        def dates(a: np.ndarray) -> pa.Array:
            return pa.array(a.astype(np.int32), mask=a < 0).cast(d32)

        def take(dictionary: pa.Array, index: np.ndarray) -> pa.Array:
            return pc.take(dictionary, pa.array(index.astype(np.int32), mask=index < 0))

        def one(table: pa.Table) -> Iterator[pa.Table]:
            yield table

        units = pa.table({
            "unit_id": unit_ids,
            "name": [u.name for u in R.UNITS],
            "organisation": [u.organisation for u in R.UNITS],
            "principal_type": [u.principal_type for u in R.UNITS],
            "care_level": [u.care_level for u in R.UNITS],
            "municipality_code": [u.municipality_code for u in R.UNITS],
        })
        schema = pa.schema([(name, pa.string()) for name in units.column_names])
        rows["units"] = write_table(out, "units", fmt, schema, one(units))

        muni_codes = pa.array([m[0] for m in R.MUNICIPALITIES])
        persons = pa.table({
            "person_id": self.pid,
            "sex": pa.array(np.where(self.sex, "M", "F")),
            "municipality_code": take(muni_codes, self.muni),
            "death_date": dates(self.death),
        })
        schema = pa.schema([("person_id", pa.string()), ("sex", pa.string()),
                            ("municipality_code", pa.string()), ("death_date", d32)])
        rows["persons"] = write_table(out, "persons", fmt, schema, one(persons))
        if progress:
            progress("writing contacts", 0.0)

        c = self.c
        nc = len(c["person"])
        ctypes = pa.array(["outpatient", "inpatient", "social_services", "digital"])

        def contact_chunks() -> Iterator[pa.Table]:
            for a in range(0, nc, CHUNK_ROWS):
                b = min(nc, a + CHUNK_ROWS)
                ids = pc.binary_join_element_wise(
                    "K", pc.utf8_lpad(pc.cast(pa.array(np.arange(a + 1, b + 1)), pa.string()),
                                      9, "0"), "")
                yield pa.table({
                    "contact_id": ids,
                    "person_id": pc.take(self.pid, pa.array(c["person"][a:b])),
                    "unit_id": pc.take(unit_ids, pa.array(c["unit"][a:b].astype(np.int32))),
                    "date": dates(c["date"][a:b]),
                    "end_date": dates(c["end"][a:b]),
                    "contact_type": pc.take(ctypes, pa.array(c["ctype"][a:b].astype(np.int32))),
                    "main_dx": take(self.main_dict, c["main"][a:b]),
                    "other_dx": take(self.other_dict, c["other"][a:b]),
                })
                if progress:
                    progress("writing contacts", 0.8 * b / nc)

        schema = pa.schema([("contact_id", pa.string()), ("person_id", pa.string()),
                            ("unit_id", pa.string()), ("date", d32), ("end_date", d32),
                            ("contact_type", pa.string()), ("main_dx", pa.string()),
                            ("other_dx", pa.string())])
        rows["contacts"] = write_table(out, "contacts", fmt, schema, contact_chunks())

        pcon = self.proc_contact
        link = np.where(self.proc_linked, pcon, _NULL)
        procedures = pa.table({
            "person_id": pc.take(self.pid, pa.array(c["person"][pcon])),
            "unit_id": pc.take(unit_ids, pa.array(c["unit"][pcon].astype(np.int32))),
            "date": dates(c["date"][pcon]),
            "contact_id": pc.binary_join_element_wise(
                "K", pc.utf8_lpad(pc.cast(pa.array(link + 1, mask=link < 0), pa.string()),
                                  9, "0"), ""),
            "kva_code": take(pa.array(self.kva_codes), self.proc_code),
        })
        schema = pa.schema([(n, d32 if n == "date" else pa.string())
                            for n in procedures.column_names])
        rows["procedures"] = write_table(out, "procedures", fmt, schema, one(procedures))
        if progress:
            progress("writing other tables", 0.9)

        m = self.meds
        medications = pa.table({
            "person_id": pc.take(self.pid, pa.array(m["person"])),
            "unit_id": pc.take(unit_ids, pa.array(m["unit"].astype(np.int32))),
            "atc": take(pa.array(self.atc_codes), m["atc"]),
            "start_date": dates(m["start"]),
            "end_date": dates(m["end"]),
        })
        schema = pa.schema([("person_id", pa.string()), ("unit_id", pa.string()),
                            ("atc", pa.string()), ("start_date", d32), ("end_date", d32)])
        rows["medications"] = write_table(out, "medications", fmt, schema, one(medications))

        prog_names = [name for name, _ in self.enrol_parts]
        e = {key: np.concatenate([part[key] for _, part in self.enrol_parts])
             for key in self.enrol_parts[0][1]}
        e_prog = np.concatenate([np.full(len(part["person"]), i, np.int8)
                                 for i, (_, part) in enumerate(self.enrol_parts)])
        order = np.lexsort((e_prog, e["start"], e["person"]))
        enrolments = pa.table({
            "person_id": pc.take(self.pid, pa.array(e["person"][order])),
            "unit_id": pc.take(unit_ids, pa.array(e["unit"][order].astype(np.int32))),
            "programme": take(pa.array(prog_names), e_prog[order]),
            "start_date": dates(e["start"][order]),
            "end_date": dates(e["end"][order]),
            "end_reason": take(pa.array(_END_REASONS), e["reason"][order]),
        })
        schema = pa.schema([("person_id", pa.string()), ("unit_id", pa.string()),
                            ("programme", pa.string()), ("start_date", d32), ("end_date", d32),
                            ("end_reason", pa.string())])
        rows["enrolments"] = write_table(out, "enrolments", fmt, schema, one(enrolments))

        a = self.assess
        inst_names = ["audit", "audit-c", "dudit"]
        inst = a["instrument"]
        order = np.lexsort((inst, a["stage"], a["date"], a["person"]))
        cols: dict[str, pa.Array] = {
            "person_id": pc.take(self.pid, pa.array(a["person"][order])),
            "unit_id": pc.take(unit_ids, pa.array(a["unit"][order].astype(np.int32))),
            "date": dates(a["date"][order]),
            "instrument": take(pa.array(inst_names), inst[order]),
            "stage": take(pa.array(_STAGES), a["stage"][order]),
        }
        items = a["items"][order]
        for i in range(11):
            cols[f"item_{i + 1}"] = pa.array(items[:, i], mask=items[:, i] < 0, type=pa.int8())
        assessments = pa.table(cols)
        schema = pa.schema([(n, d32 if n == "date" else pa.int8() if n.startswith("item_")
                             else pa.string()) for n in assessments.column_names])
        rows["assessments"] = write_table(out, "assessments", fmt, schema, one(assessments))
        return rows


def generate(out: Path, persons: int, seed: int, fmt: str = "csv", first_year: int = 2017,
             last_year: int = 2024, progress: Progress | None = None) -> dict:
    """Generate a synthetic region's extract (format v1) into the folder ``out``.

    ``progress(step, fraction)`` is called as work advances. Returns a summary:
    row counts per table, seconds, and the planted findings also written to
    ``manifest.json``. The same seed gives byte-identical files.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; use one of {FORMATS}")
    began = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    gen = _Generator(persons, seed, first_year, last_year)
    steps: list[tuple[str, Callable[[], None]]] = [
        ("persons", gen.persons), ("substance groups", gen.memberships), ("LARO", gen.laro),
        ("contact years", gen.select), ("contacts", gen.contacts),
        ("other contacts", gen.filler), ("procedures", gen.procedures),
        ("sorting contacts", gen.finish_contacts), ("procedures", gen.finish_procedures),
        ("programmes", gen.programmes), ("medications", gen.medications),
    ]
    for i, (label, step) in enumerate(steps):
        if progress:
            progress(label, i / (len(steps) + 4))
        step()
    base = len(steps) / (len(steps) + 4)

    def write_progress(label: str, frac: float) -> None:
        if progress:
            progress(label, base + (1 - base) * frac)

    rows = gen.write(out, fmt, write_progress)
    findings = gen.findings()
    manifest = {
        "format": "utfall-extract", "version": 1, "synthetic": True,
        "generator": "utfall.synth", "seed": seed, "persons": persons,
        "file_format": fmt, "first_year": first_year, "last_year": last_year,
        "planted_findings": findings,
    }
    (out / "manifest.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    if progress:
        progress("done", 1.0)
    return {"out": str(out), "format": fmt, "seed": seed, "persons": persons, "rows": rows,
            "seconds": round(time.perf_counter() - began, 2), "planted_findings": findings}

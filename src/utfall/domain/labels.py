"""One home for the readable labels (Swedish first, English) of every code users see.

Tables come from content, never from code: ``content/labels/codes.yaml`` (care settings,
principal types, roles, audit actions, statuses, comparisons…) and the labels that
already live in other content files — ICD-10 substance and psychiatric groups and
clinical states, KVÅ and ATC codes, programmes with their phases, stages and end
reasons, instruments with their items and bands. Unit ids are data in the store, so
their names are passed in (``units=``) by the caller that has a connection.

``label(kind, code, locale)`` gives the text (the code itself when no label is known);
``table(kind)`` gives every code of a kind (the label-check tests use these tables to
assert no labelled code is shown raw).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from utfall.content import load_yaml

STATIC_FILE = "labels/codes.yaml"


@dataclass(frozen=True)
class Label:
    """A Swedish and an English text (``.sv``/``.en`` like ``LocalText``)."""

    sv: str
    en: str

    def get(self, locale: str = "sv") -> str:
        """The text in ``locale`` (Swedish unless English is asked for)."""
        return self.en if locale == "en" else self.sv

    def __str__(self) -> str:
        return self.sv


def _lab(spec: Any) -> Label:
    if isinstance(spec, Mapping):
        return Label(str(spec.get("sv") or spec.get("en")), str(spec.get("en") or spec.get("sv")))
    if hasattr(spec, "sv"):
        return Label(str(spec.sv), str(getattr(spec, "en", None) or spec.sv))
    return Label(str(spec), str(spec))


@cache
def _static() -> dict[str, dict[str, Label]]:
    data = load_yaml(STATIC_FILE) or {}
    return {kind: {str(code): _lab(spec) for code, spec in codes.items()}
            for kind, codes in data.items()}


@cache
def _codes() -> dict[str, dict[str, Label]]:
    from utfall.domain.codes import code_systems

    cs = code_systems()
    return {
        "dx_group": {k: _lab(v) for k, v in cs.substance_groups.items()},
        "clinical_state": {k: _lab(v) for k, v in cs.clinical_states.items()},
        "psych_group": {k: _lab(v) for k, v in cs.psychiatric_groups.items()},
        "kva": {k: _lab(v) for k, v in cs.kva.items()},
        "atc": {k: _lab(v) for k, v in cs.atc.items()},
    }


@cache
def _programmes() -> dict[str, dict[str, Label]]:
    """Programme titles, phases, stages and end reasons; keyed both ``id`` and
    ``programme/id`` (the first programme defining a bare id wins)."""
    from utfall.followup import default_programmes

    out: dict[str, dict[str, Label]] = {"programme": {}, "phase": {}, "stage": {},
                                        "end_reason": {}}

    def put(kind: str, programme: str, code: str, text: Any) -> None:
        out[kind][f"{programme}/{code}"] = _lab(text)
        out[kind].setdefault(code, _lab(text))

    for prog in default_programmes():
        out["programme"][prog.id] = _lab(prog.title)
        if prog.phase_model is not None:
            for phase in prog.phase_model.phases:
                put("phase", prog.id, phase.id, phase.name)
        for stage in prog.stages:
            put("stage", prog.id, stage.id, stage.title)
        for reason in prog.end_reasons:
            put("end_reason", prog.id, reason.id, reason.label)
    return out


@cache
def _instruments() -> dict[str, dict[str, Label]]:
    """Instrument titles, items (``instrument/linkId`` → question text), subscales and
    bands (``instrument/band`` and the bare band id)."""
    from utfall.instruments import default_registry

    out: dict[str, dict[str, Label]] = {"instrument": {}, "item": {}, "subscale": {},
                                        "band": {}, "flag": {}}
    for d in default_registry():
        out["instrument"][d.id] = _lab(d.title)
        for item in d.items:
            out["item"][f"{d.id}/{item.linkId}"] = _lab(item.text)
        for sub in d.scoring.subscales:
            out["subscale"][f"{d.id}/{sub.id}"] = _lab(sub.title)
            out["subscale"].setdefault(sub.id, _lab(sub.title))
        for flag in d.scoring.flags:
            out["flag"][f"{d.id}/{flag.id}"] = _lab(flag.label)
            out["flag"].setdefault(flag.id, _lab(flag.label))
        for band_set in d.bands:
            for band in band_set.bands:
                out["band"].setdefault(f"{d.id}/{band.id}", _lab(band.label))
                out["band"].setdefault(band.id, _lab(band.label))
    return out


_SOURCES = (_static, _codes, _programmes, _instruments)


def kinds() -> tuple[str, ...]:
    """Every kind of code with a label table."""
    names: list[str] = []
    for source in _SOURCES:
        names.extend(k for k in source() if k not in names)
    return tuple(names)


def table(kind: str) -> dict[str, Label]:
    """All labelled codes of ``kind`` (empty for an unknown kind)."""
    for source in _SOURCES:
        tables = source()
        if kind in tables:
            return tables[kind]
    return {}


def lookup(kind: str, code: str | None) -> Label | None:
    """The label of ``code``, or None when none is known."""
    if code is None:
        return None
    if kind == "dx":
        return dx_label(code)
    return table(kind).get(str(code))


def label(kind: str, code: str | None, locale: str = "sv", *,
          units: Mapping[str, str] | None = None) -> str:
    """The readable text of ``code`` in ``locale``; the code itself if none is known.

    ``kind == "unit"`` looks the id up in ``units`` (unit id → name)."""
    if code is None or code == "":
        return ""
    if kind == "unit":
        return str((units or {}).get(code, code))
    found = lookup(kind, code)
    return found.get(locale) if found else str(code)


@cache
def dx_label(code: str | None) -> Label | None:
    """A readable ICD-10 diagnosis: ``F102`` → "Alkohol – beroendesyndrom"; a
    psychiatric group name for F20–F99 codes of interest; None when unknown."""
    if not code:
        return None
    from utfall.domain.codes import clinical_state, code_systems, normalise_icd10, substance_group

    norm = normalise_icd10(code)
    cs = code_systems()
    group = substance_group(norm)
    if group and group in cs.substance_groups:
        g = _lab(cs.substance_groups[group])
        state = clinical_state(norm)
        if state and state in cs.clinical_states:
            s = _lab(cs.clinical_states[state])
            return Label(f"{g.sv} – {s.sv.lower()}", f"{g.en} – {s.en.lower()}")
        return g
    psych = cs.psychiatric_group(norm)
    if psych:
        return _lab(cs.psychiatric_groups[psych])
    return None


def formatted_icd10(code: str | None) -> str:
    """``F102`` → ``F10.2`` (the way clinicians write it); unchanged when short."""
    if not code:
        return ""
    return f"{code[:3]}.{code[3:]}" if len(code) > 3 and "." not in code else code


def all_tables() -> dict[str, dict[str, Label]]:
    """Every kind with its table (for tests and the docs)."""
    return {kind: table(kind) for kind in kinds()}

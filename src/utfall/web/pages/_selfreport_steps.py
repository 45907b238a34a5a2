"""The steps of a self-report: each instrument cut into short sections, skip logic
applied as the person goes, plus a last step for the person's own goals.

A new section starts where an item's ``enableWhen`` depends on an item of the current
section (so whether to ask it is known when its screen is shown, without JavaScript),
and a run longer than :data:`MAX_ITEMS` is cut into near-equal parts. A section whose
items are all skipped by the answers so far is left out; the step numbers follow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from utfall.instruments import InstrumentDefinition, enabled_items, validate_answers
from utfall.instruments.models import Item

MAX_ITEMS = 10
GOALS = "_goals"


@dataclass(frozen=True)
class Step:
    """One screen: a section of an instrument (``part`` of ``parts``) or the goals."""

    key: str
    definition: InstrumentDefinition | None
    items: tuple[Item, ...]
    part: int = 0
    parts: int = 1

    @property
    def instrument(self) -> str:
        """The instrument id (``_goals`` for the goals step)."""
        return self.definition.id if self.definition else GOALS


def sections(definition: InstrumentDefinition) -> list[list[Item]]:
    """The instrument's items cut where skip logic depends on the current section."""
    runs: list[list[Item]] = [[]]
    for item in definition.items:
        current = {i.linkId for i in runs[-1]}
        if runs[-1] and any(c.question in current for c in item.enableWhen):
            runs.append([])
        runs[-1].append(item)
    out: list[list[Item]] = []
    for run in runs:
        parts = -(-len(run) // MAX_ITEMS)
        size = -(-len(run) // parts) if run else 0
        out.extend(run[n:n + size] for n in range(0, len(run), size or 1))
    return [s for s in out if s]


def _pending(items: list[Item], answers: Mapping[str, Any]) -> bool:
    """Does asking the section still depend on a question not yet answered? (Counted
    in the steps until the answer decides, so the step count does not jump up.)"""
    return any(answers.get(c.question) is None for i in items for c in i.enableWhen)


def shown_items(definition: InstrumentDefinition, items: tuple[Item, ...],
                answers: Mapping[str, Any]) -> list[Item]:
    """The items of a section asked given the answers so far."""
    try:
        enabled = enabled_items(definition, dict(answers))
    except Exception:
        enabled = {i.linkId: True for i in definition.items}
    return [i for i in items if enabled.get(i.linkId, True)]


def steps(instruments: list[InstrumentDefinition], answers: Mapping[str, Mapping[str, Any]],
          *, goals: bool = True) -> list[Step]:
    """The screens to show given the answers so far (skipped sections left out)."""
    out: list[Step] = []
    for definition in instruments:
        parts = sections(definition)
        given = answers.get(definition.id, {})
        kept = [p for p in parts if shown_items(definition, tuple(p), given)
                or _pending(p, given)]
        for n, part in enumerate(kept):
            out.append(Step(f"{definition.id}#{parts.index(part)}", definition, tuple(part),
                            n, len(kept)))
    if goals:
        out.append(Step(GOALS, None, ()))
    return out


def step_problems(step: Step, answers: Mapping[str, Any]) -> dict[str, str]:
    """Error codes of the shown items of ``step`` (linkId → engine code), judged with
    the whole instrument's answers so far."""
    if step.definition is None:
        return {}
    shown = {i.linkId for i in shown_items(step.definition, step.items, answers)}
    out: dict[str, str] = {}
    for p in validate_answers(step.definition, answers):
        if p.severity == "error" and p.link_id in shown and p.link_id not in out:
            out[p.link_id] = p.code
    return out


def prune(definition: InstrumentDefinition, answers: Mapping[str, Any]) -> dict[str, Any]:
    """The answers without those to items the skip logic no longer asks."""
    try:
        enabled = enabled_items(definition, dict(answers))
    except Exception:
        return dict(answers)
    return {k: v for k, v in answers.items() if enabled.get(k, True)}

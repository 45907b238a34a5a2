"""Helpers for instrument tests."""

from __future__ import annotations

from utfall.instruments import InstrumentDefinition, InstrumentRegistry

REGISTRY = InstrumentRegistry.load(use_env=False, use_entry_points=False)


def get(instrument_id: str) -> InstrumentDefinition:
    """A shipped instrument."""
    return REGISTRY.get(instrument_id)


def answers(*values: int | None) -> dict[str, int | None]:
    """``item_1``… answers from positional values."""
    return {f"item_{n}": v for n, v in enumerate(values, start=1)}


def answers_for_total(definition: InstrumentDefinition, target: int) -> dict[str, int]:
    """Complete answers reaching ``target`` (greedy: largest allowed value first)."""
    out: dict[str, int] = {}
    remaining = target
    for item in definition.numeric_items:
        values = item.allowed_values or list(range(item.value_range[0], item.value_range[1] + 1))
        fitting = [v for v in values if item.item_score(v) <= remaining]
        value = max(fitting, key=item.item_score)
        out[item.linkId] = value
        remaining -= item.item_score(value)
    assert remaining == 0, f"cannot reach {target}"
    return out

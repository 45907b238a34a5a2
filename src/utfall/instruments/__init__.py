"""Outcome instruments as data (``content/instruments``) and one generic scoring engine."""

from __future__ import annotations

from utfall.instruments.engine import (
    Change,
    InvalidAnswersError,
    MeasureChange,
    Problem,
    Score,
    answers_from_list,
    answers_from_row,
    change,
    enabled_items,
    score,
    validate_answers,
)
from utfall.instruments.loading import ContentError
from utfall.instruments.models import InstrumentDefinition, Item, LocalText
from utfall.instruments.registry import (
    InstrumentRegistry,
    UnknownInstrumentError,
    default_registry,
    get_instrument,
    load_instrument_file,
    parse_instrument,
)

__all__ = [
    "Change",
    "ContentError",
    "InstrumentDefinition",
    "InstrumentRegistry",
    "InvalidAnswersError",
    "Item",
    "LocalText",
    "MeasureChange",
    "Problem",
    "Score",
    "UnknownInstrumentError",
    "answers_from_list",
    "answers_from_row",
    "change",
    "default_registry",
    "enabled_items",
    "get_instrument",
    "load_instrument_file",
    "parse_instrument",
    "score",
    "validate_answers",
]

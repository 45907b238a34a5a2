"""Why a cell was masked: one :class:`Reason` type for every masked cell (ACRO-style).

A reason is data (a kind plus a detail), not a string prefix; ``str(reason)`` gives the
text published in ``suppression_reason`` (unchanged from the first rules version), and
:attr:`Reason.display` tells which display string a masked cell gets. The attacker
(:mod:`utfall.analytics.disclosure.attacker`) reads the kind to know what a reader can
infer about a masked cell from the published rules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from utfall.analytics.disclosure.rules import DisclosureRules


class Kind(StrEnum):
    """Kinds of masking."""

    PRIMARY = "primary"  # the count itself is small
    COMPLEMENT = "complement"  # denominator − numerator is small
    SECONDARY = "secondary"  # masked to protect another masked cell
    WITHHELD = "withheld"  # the masks themselves would pin a value: withhold all
    SMALL_DENOMINATOR = "small_denominator"  # value/interval withheld, denominator < N
    DERIVED = "derived"  # value withheld because a count behind it is masked


WITHHELD_TEXT = "withheld: masked cells would be recoverable"


@dataclass(frozen=True, order=True)
class Reason:
    """The reason one cell was masked.

    ``detail`` is the small range for primary reasons (``1–4``), the relation that made
    another cell recoverable for secondary ones (``row total``, ``organisation``…), the
    minimum denominator for ``SMALL_DENOMINATOR`` and the masked column for ``DERIVED``.
    """

    kind: Kind
    detail: str = ""

    @classmethod
    def primary(cls, rules: DisclosureRules) -> Reason:
        return cls(Kind.PRIMARY, rules.small_range)

    @classmethod
    def complement(cls, rules: DisclosureRules) -> Reason:
        return cls(Kind.COMPLEMENT, rules.small_range)

    @classmethod
    def secondary(cls, relation: str) -> Reason:
        return cls(Kind.SECONDARY, relation)

    @classmethod
    def withheld(cls) -> Reason:
        return cls(Kind.WITHHELD)

    @classmethod
    def small_denominator(cls, rules: DisclosureRules) -> Reason:
        return cls(Kind.SMALL_DENOMINATOR, str(rules.min_denominator))

    @classmethod
    def derived(cls, column: str) -> Reason:
        return cls(Kind.DERIVED, column)

    @property
    def display(self) -> Literal["primary", "secondary", "value"]:
        """Which display string the masked cell gets (``<5``, ``..`` or ``–``)."""
        if self.kind in (Kind.PRIMARY, Kind.COMPLEMENT):
            return "primary"
        if self.kind in (Kind.SECONDARY, Kind.WITHHELD):
            return "secondary"
        return "value"

    def display_text(self, rules: DisclosureRules) -> str:
        """The published display string of a cell masked for this reason."""
        return {
            "primary": rules.primary_display,
            "secondary": rules.secondary_display,
            "value": rules.value_display,
        }[self.display]

    def known_bounds(self, rules: DisclosureRules) -> tuple[float, float]:
        """What a reader of the publication knows about a count masked for this reason."""
        if self.kind is Kind.PRIMARY:
            return (0 if rules.zeros == "mask" else 1, rules.threshold - 1)
        if self.kind is Kind.SECONDARY:
            # secondary cells are never zero and never small (those would be primary)
            return (max(rules.threshold, 1 if rules.zeros == "show" else 0), math.inf)
        return (0, math.inf)  # withheld; complement bounds come from its denominator

    def __str__(self) -> str:
        if self.kind is Kind.PRIMARY:
            return f"primary: count {self.detail}"
        if self.kind is Kind.COMPLEMENT:
            return f"primary: complement (denominator − numerator) {self.detail}"
        if self.kind is Kind.SECONDARY:
            return f"secondary: recoverable from {self.detail}"
        if self.kind is Kind.WITHHELD:
            return WITHHELD_TEXT
        if self.kind is Kind.SMALL_DENOMINATOR:
            return f"denominator below {self.detail}"
        return f"derived: {self.detail} masked"

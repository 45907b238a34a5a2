"""Cell-key method: deterministic noise from per-record keys (Statistics Sweden style)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from utfall.analytics.disclosure.rules import DisclosureRules


def cell_key_noise(value: int, key: int, rules: DisclosureRules) -> int:
    """Deterministic noise for a count ``value`` with cell key ``key`` (0 ≤ key < 2**bits).

    The cell key is the sum, modulo ``2**bits``, of per-record keys (random numbers
    fixed once per person), so the same persons always give the same noise and tables
    cannot be differenced. The perturbation table is a discretised triangular
    distribution on ``-D..D`` (``D = cell_key.max_noise``) restricted so zeros stay
    zero and non-zero counts never become zero; ``key / 2**bits`` picks from its CDF.
    """
    if value == 0 or rules.cell_key_max_noise == 0:
        return 0
    d = rules.cell_key_max_noise
    support = [n for n in range(-d, d + 1) if value + n >= 1]
    weights = [d + 1 - abs(n) for n in support]
    total = sum(weights)
    u = (key % (1 << rules.cell_key_bits)) / (1 << rules.cell_key_bits)
    acc = 0.0
    for n, w in zip(support, weights, strict=True):
        acc += w / total
        if u < acc:
            return n
    return support[-1]


def record_key(person_key: str, bits: int = 16) -> int:
    """A person's record key: a uniform number fixed by the (already keyed) person_key."""
    digest = hashlib.sha256(person_key.encode()).digest()
    return int.from_bytes(digest[:8], "big") % (1 << bits)


def cell_key_of(person_keys: Iterable[str], bits: int = 16) -> int:
    """Cell key of a cell = sum of its records' keys modulo ``2**bits``."""
    return sum(record_key(p, bits) for p in person_keys) % (1 << bits)


def coordinate_key(*parts: Any, bits: int = 16) -> int:
    """Fallback cell key from the cell's coordinates, for aggregates without record keys."""
    text = "\x1f".join("" if p is None else str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") % (1 << bits)



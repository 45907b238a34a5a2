"""Helpers for follow-up tests."""

from __future__ import annotations

from utfall.followup import ProgrammeRegistry
from utfall.instruments import InstrumentRegistry

INSTRUMENTS = InstrumentRegistry.load(use_env=False, use_entry_points=False)
PROGRAMMES = ProgrammeRegistry.load(instruments=INSTRUMENTS, use_env=False,
                                    use_entry_points=False)

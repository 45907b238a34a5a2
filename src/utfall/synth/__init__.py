"""Synthetic region generator: a realistic, clearly marked synthetic extract in format v1."""

from __future__ import annotations

from utfall.synth.generator import generate

__all__ = ["generate"]

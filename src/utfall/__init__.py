"""Utfall: systematic outcome follow-up in addiction and dependence care."""

__version__ = "0.1.0"

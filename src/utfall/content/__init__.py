"""Declarative content shipped with the package (YAML/CSV), loaded and validated here."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any


def content_text(relative: str) -> str:
    """Text of a content file, e.g. ``codes/kva.yaml``."""
    return resources.files(__name__).joinpath(relative).read_text(encoding="utf-8")


@cache
def load_yaml(relative: str) -> Any:
    """Parsed YAML of a content file (cached; treat the result as read-only)."""
    import yaml  # lazily: `utfall --help` must not pay for it

    return yaml.safe_load(content_text(relative))


def list_content(folder: str, suffix: str = ".yaml") -> list[str]:
    """Relative paths of the content files in ``folder`` with ``suffix``, sorted."""
    base = resources.files(__name__).joinpath(folder)
    return sorted(f"{folder}/{p.name}" for p in base.iterdir() if p.name.endswith(suffix))

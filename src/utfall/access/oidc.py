"""OpenID Connect login (work in progress)."""

from __future__ import annotations

from typing import Any


def configured_providers() -> list[Any]:
    """Configured OpenID providers."""
    return []

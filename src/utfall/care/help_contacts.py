"""Help and crisis contacts per region (``content/regions/contacts.yaml``), shown to the
person after a self-report and in the own view. Pure data, no personal data."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import yaml


@cache
def _data() -> dict[str, Any]:
    text = resources.files("utfall.content").joinpath("regions/contacts.yaml").read_text(
        "utf-8")
    data: dict[str, Any] = yaml.safe_load(text)
    return data


def help_contacts(municipality_code: str | None) -> list[dict[str, Any]]:
    """The region's contacts (by the unit's municipality code) first, then the national
    ones; each ``{name: {sv, en}, detail: {sv, en}, phone?, url?}``."""
    data = _data()
    county = (municipality_code or "")[:2]
    regional = list((data.get("regions") or {}).get(county) or [])
    return regional + list(data.get("default") or [])

"""Disclosure-control rules as versioned data (``content/disclosure/rules-v<N>.yaml``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from utfall.content import list_content, load_yaml

Method = Literal["suppression", "cell_key"]


@dataclass(frozen=True)
class DisclosureRules:
    """One version of the disclosure-control rules (see ``content/disclosure``)."""

    version: str = "1"
    method: Method = "suppression"
    threshold: int = 5
    zeros: Literal["show", "mask"] = "show"
    complement: bool = True
    min_denominator: int = 10
    secondary: bool = True
    primary_display: str = "<5"
    secondary_display: str = ".."
    value_display: str = "–"
    cell_key_max_noise: int = 2
    cell_key_bits: int = 16

    def __post_init__(self) -> None:
        if self.method not in ("suppression", "cell_key"):
            raise ValueError(f"unknown disclosure method {self.method!r}")
        if self.threshold < 1:
            raise ValueError("threshold must be >= 1 (1 = no small-count masking)")
        if self.zeros not in ("show", "mask"):
            raise ValueError("zeros must be 'show' or 'mask'")
        if self.min_denominator < 0 or self.cell_key_max_noise < 0:
            raise ValueError("min_denominator and cell_key.max_noise must be >= 0")

    @property
    def small_range(self) -> str:
        """``1–4`` for threshold 5 (``0–4`` when zeros are masked)."""
        low = 0 if self.zeros == "mask" else 1
        return f"{low}–{self.threshold - 1}"

    def is_small(self, value: int) -> bool:
        """True if a count must be masked by the primary rule."""
        if value == 0:
            return self.zeros == "mask"
        return 0 < value < self.threshold

    def describe(self, locale: str = "sv") -> str:
        """One paragraph telling readers which rules were applied."""
        small = self.small_range
        if locale == "sv":
            parts = [f"Regler för röjandekontroll version {self.version}."]
            if self.method == "cell_key":
                parts.append(
                    "Metod: cellnyckelmetoden – varje antal har fått ett litet, "
                    f"deterministiskt brus (högst ±{self.cell_key_max_noise})."
                )
            if self.threshold > 1:
                parts.append(f"Antal {small} visas som ”{self.primary_display}”.")
            if self.zeros == "show":
                parts.append("Nollor visas som 0.")
            if self.complement:
                parts.append(f"En täljare döljs också när nämnare minus täljare är {small}.")
            if self.method == "suppression" and self.secondary:
                parts.append(
                    "Sekundär undertryckning: celler som annars kunde räknas fram ur "
                    f"summor visas som ”{self.secondary_display}”."
                )
            parts.append(
                f"Andelar och medelvärden visas inte när nämnaren är under "
                f"{self.min_denominator} (”{self.value_display}”)."
            )
            return " ".join(parts)
        parts = [f"Disclosure-control rules version {self.version}."]
        if self.method == "cell_key":
            parts.append(
                "Method: cell-key – every count carries small deterministic noise "
                f"(at most ±{self.cell_key_max_noise})."
            )
        if self.threshold > 1:
            parts.append(f"Counts {small} are shown as “{self.primary_display}”.")
        if self.zeros == "show":
            parts.append("Zeros are shown as 0.")
        if self.complement:
            parts.append(f"A numerator is also masked when denominator minus numerator is {small}.")
        if self.method == "suppression" and self.secondary:
            parts.append(
                "Secondary suppression: cells that could otherwise be recovered from "
                f"totals are shown as “{self.secondary_display}”."
            )
        parts.append(
            f"Percentages and means are not shown for denominators below "
            f"{self.min_denominator} (“{self.value_display}”)."
        )
        return " ".join(parts)


def rules_from_mapping(data: Mapping[str, Any]) -> DisclosureRules:
    """Build rules from a parsed ``rules-v<N>.yaml`` mapping."""
    display = data.get("display") or {}
    cell_key = data.get("cell_key") or {}
    threshold = int(data.get("threshold", 5))
    primary = display.get("primary", "<5")
    if primary == "<5" and threshold != 5:
        primary = f"<{threshold}"
    return DisclosureRules(
        version=str(data.get("version", "1")),
        method=data.get("method", "suppression"),
        threshold=threshold,
        zeros=data.get("zeros", "show"),
        complement=bool(data.get("complement", True)),
        min_denominator=int(data.get("min_denominator", 10)),
        secondary=bool(data.get("secondary", True)),
        primary_display=str(primary),
        secondary_display=str(display.get("secondary", "..")),
        value_display=str(display.get("value", "–")),
        cell_key_max_noise=int(cell_key.get("max_noise", 2)),
        cell_key_bits=int(cell_key.get("key_bits", 16)),
    )


def available_versions() -> list[str]:
    """Rules versions shipped in ``content/disclosure``."""
    names = list_content("disclosure")
    return sorted(
        (n.rsplit("rules-v", 1)[1].removesuffix(".yaml") for n in names if "/rules-v" in n),
        key=lambda v: (len(v), v),
    )


def load_rules(version: str | None = None) -> DisclosureRules:
    """The shipped rules of ``version`` (default: ``current`` in ``disclosure/index.yaml``)."""
    if version is None:
        version = str(load_yaml("disclosure/index.yaml")["current"])
    if version not in available_versions():
        raise KeyError(f"no disclosure rules version {version!r}")
    return rules_from_mapping(load_yaml(f"disclosure/rules-v{version}.yaml"))



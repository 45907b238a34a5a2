"""The instrument registry: shipped instruments plus a region's own.

Sources, in order: ``utfall/content/instruments/*.yaml``; folders in
``UTFALL_INSTRUMENT_DIRS`` (``os.pathsep``-separated) or passed as ``extra_dirs``;
entry points of group ``utfall.instruments``. A later instrument with an id that
already exists is an error unless its file says ``override: true``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

from utfall.instruments.loading import (
    ContentError,
    entry_point_items,
    env_folders,
    folder_files,
    parse_model,
    shipped_files,
)
from utfall.instruments.models import InstrumentDefinition

ENTRY_POINT_GROUP = "utfall.instruments"
ENV_VARIABLE = "UTFALL_INSTRUMENT_DIRS"


class UnknownInstrumentError(KeyError):
    """No instrument with this id."""

    def __init__(self, instrument_id: str, known: Iterable[str]) -> None:
        self.instrument_id = instrument_id
        self.known = sorted(known)
        super().__init__(
            f"okänt instrument / unknown instrument: {instrument_id!r} "
            f"(kända / known: {', '.join(self.known)})"
        )

    def __str__(self) -> str:
        return str(self.args[0])


def parse_instrument(data: Any, source: str = "<data>") -> InstrumentDefinition:
    """Validate one parsed instrument file (raises :class:`ContentError`)."""
    return parse_model(InstrumentDefinition, data, source)


def load_instrument_file(path: str | Path) -> InstrumentDefinition:
    """Load and validate one instrument YAML file."""
    [(source, data)] = list(folder_files(Path(path)))
    return parse_instrument(data, source)


class InstrumentRegistry:
    """Instrument definitions by id."""

    def __init__(self, definitions: Iterable[InstrumentDefinition] = ()) -> None:
        self._by_id: dict[str, InstrumentDefinition] = {}
        self._sources: dict[str, str] = {}
        for definition in definitions:
            self.add(definition)

    def add(self, definition: InstrumentDefinition, source: str = "<code>") -> None:
        """Add a definition; a duplicate id needs ``override: true``."""
        if definition.id in self._by_id and not definition.override:
            raise ContentError(source, [
                f"instrument {definition.id!r} already comes from {self._sources[definition.id]};"
                " set override: true to replace it"
            ])
        self._by_id[definition.id] = definition
        self._sources[definition.id] = source

    def add_items(self, items: Iterable[tuple[str, Any]]) -> None:
        """Add ``(source, parsed file)`` pairs."""
        for source, data in items:
            self.add(parse_instrument(data, source), source)

    def get(self, instrument_id: str) -> InstrumentDefinition:
        """The definition with this id (raises :class:`UnknownInstrumentError`)."""
        try:
            return self._by_id[instrument_id]
        except KeyError:
            raise UnknownInstrumentError(instrument_id, self._by_id) from None

    def source(self, instrument_id: str) -> str:
        """Where the definition came from."""
        self.get(instrument_id)
        return self._sources[instrument_id]

    def ids(self) -> list[str]:
        """All ids, sorted."""
        return sorted(self._by_id)

    def __contains__(self, instrument_id: object) -> bool:
        return instrument_id in self._by_id

    def __iter__(self) -> Iterator[InstrumentDefinition]:
        return iter(self._by_id[i] for i in self.ids())

    def __len__(self) -> int:
        return len(self._by_id)

    @classmethod
    def load(
        cls,
        extra_dirs: Iterable[str | Path] = (),
        *,
        use_env: bool = True,
        use_entry_points: bool = True,
    ) -> InstrumentRegistry:
        """Shipped instruments, then extra folders, then entry points."""
        registry = cls()
        registry.add_items(shipped_files("instruments"))
        folders = [Path(d) for d in extra_dirs] + (env_folders(ENV_VARIABLE) if use_env else [])
        for folder in folders:
            registry.add_items(folder_files(folder))
        if use_entry_points:
            registry.add_items(entry_point_items(ENTRY_POINT_GROUP))
        return registry


@cache
def default_registry() -> InstrumentRegistry:
    """The process-wide registry (cached; call ``default_registry.cache_clear()`` to reload)."""
    return InstrumentRegistry.load()


def get_instrument(instrument_id: str) -> InstrumentDefinition:
    """A definition from the default registry."""
    return default_registry().get(instrument_id)

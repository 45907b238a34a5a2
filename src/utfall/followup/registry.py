"""The programme registry: shipped programmes plus a region's own.

Sources, in order: ``utfall/content/programmes/*.yaml``; folders in
``UTFALL_PROGRAMME_DIRS`` (``os.pathsep``-separated) or ``extra_dirs``; entry points of
group ``utfall.programmes``. A duplicate id needs ``override: true``. Every instrument a
stage names must exist in the instrument registry.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

from utfall.followup.models import Programme
from utfall.instruments.loading import (
    ContentError,
    entry_point_items,
    env_folders,
    folder_files,
    parse_model,
    shipped_files,
)
from utfall.instruments.registry import InstrumentRegistry, default_registry

ENTRY_POINT_GROUP = "utfall.programmes"
ENV_VARIABLE = "UTFALL_PROGRAMME_DIRS"


class UnknownProgrammeError(KeyError):
    """No programme with this id."""

    def __init__(self, programme_id: str, known: Iterable[str]) -> None:
        self.programme_id = programme_id
        super().__init__(
            f"okänt program / unknown programme: {programme_id!r} "
            f"(kända / known: {', '.join(sorted(known))})"
        )

    def __str__(self) -> str:
        return str(self.args[0])


def parse_programme(
    data: Any, source: str = "<data>", instruments: InstrumentRegistry | None = None
) -> Programme:
    """Validate one parsed programme file; with ``instruments``, check the instrument ids."""
    programme = parse_model(Programme, data, source)
    if instruments is not None:
        unknown = sorted(i for i in programme.instrument_ids() if i not in instruments)
        if unknown:
            raise ContentError(source, [f"unknown instrument(s): {', '.join(unknown)}"])
    return programme


def load_programme_file(
    path: str | Path, instruments: InstrumentRegistry | None = None
) -> Programme:
    """Load and validate one programme YAML file."""
    [(source, data)] = list(folder_files(Path(path)))
    return parse_programme(data, source, instruments)


class ProgrammeRegistry:
    """Programme definitions by id."""

    def __init__(self, programmes: Iterable[Programme] = ()) -> None:
        self._by_id: dict[str, Programme] = {}
        self._sources: dict[str, str] = {}
        for programme in programmes:
            self.add(programme)

    def add(self, programme: Programme, source: str = "<code>") -> None:
        """Add a programme; a duplicate id needs ``override: true``."""
        if programme.id in self._by_id and not programme.override:
            raise ContentError(source, [
                f"programme {programme.id!r} already comes from {self._sources[programme.id]};"
                " set override: true to replace it"
            ])
        self._by_id[programme.id] = programme
        self._sources[programme.id] = source

    def get(self, programme_id: str) -> Programme:
        """The programme with this id (raises :class:`UnknownProgrammeError`)."""
        try:
            return self._by_id[programme_id]
        except KeyError:
            raise UnknownProgrammeError(programme_id, self._by_id) from None

    def ids(self) -> list[str]:
        """All ids, sorted."""
        return sorted(self._by_id)

    def __contains__(self, programme_id: object) -> bool:
        return programme_id in self._by_id

    def __iter__(self) -> Iterator[Programme]:
        return iter(self._by_id[i] for i in self.ids())

    def __len__(self) -> int:
        return len(self._by_id)

    @classmethod
    def load(
        cls,
        extra_dirs: Iterable[str | Path] = (),
        *,
        instruments: InstrumentRegistry | None = None,
        use_env: bool = True,
        use_entry_points: bool = True,
    ) -> ProgrammeRegistry:
        """Shipped programmes, then extra folders, then entry points."""
        instruments = instruments if instruments is not None else default_registry()
        registry = cls()
        sources: list[Iterable[tuple[str, Any]]] = [shipped_files("programmes")]
        folders = [Path(d) for d in extra_dirs] + (env_folders(ENV_VARIABLE) if use_env else [])
        sources += [folder_files(f) for f in folders]
        if use_entry_points:
            sources.append(entry_point_items(ENTRY_POINT_GROUP))
        for items in sources:
            for source, data in items:
                registry.add(parse_programme(data, source, instruments), source)
        return registry


@cache
def default_programmes() -> ProgrammeRegistry:
    """The process-wide registry (cached; ``default_programmes.cache_clear()`` reloads)."""
    return ProgrammeRegistry.load()


def get_programme(programme_id: str) -> Programme:
    """A programme from the default registry."""
    return default_programmes().get(programme_id)

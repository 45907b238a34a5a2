"""Loading declarative content files (instruments, programmes) with clear errors.

Shared by :mod:`utfall.instruments.registry` and :mod:`utfall.followup.registry`.
Sources, in order: files shipped in ``utfall/content/<folder>``, extra folders
(argument or environment variable, ``os.pathsep``-separated) and Python entry points.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from utfall.content import content_text, list_content

M = TypeVar("M", bound=BaseModel)


class ContentError(ValueError):
    """A content file that cannot be used; ``source`` names the file, ``problems`` say why."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: ogiltig innehållsfil / invalid content file:\n{lines}")


def format_validation_error(exc: ValidationError) -> list[str]:
    """One line per pydantic error: ``items.3.answerOption: reason``."""
    out = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(root)"
        out.append(f"{loc}: {err['msg']}")
    return out


def parse_yaml(text: str, source: str) -> Any:
    """Parsed YAML, or :class:`ContentError` with the line of the syntax error."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ContentError(source, [f"YAML: {exc}"]) from exc


def parse_model(model: type[M], data: Any, source: str) -> M:
    """Validate ``data`` as ``model`` or raise :class:`ContentError` naming ``source``."""
    if isinstance(data, model):
        return data
    if not isinstance(data, Mapping):
        raise ContentError(source, ["the file must hold a mapping (key: value) at the top"])
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        raise ContentError(source, format_validation_error(exc)) from exc


def shipped_files(folder: str) -> Iterator[tuple[str, Any]]:
    """``(source, parsed YAML)`` of every file shipped in ``utfall/content/<folder>``."""
    for relative in list_content(folder):
        yield f"utfall/content/{relative}", parse_yaml(content_text(relative), relative)


def folder_files(path: Path) -> Iterator[tuple[str, Any]]:
    """``(source, parsed YAML)`` of a YAML file or every ``*.yaml``/``*.yml`` in a folder."""
    path = Path(path)
    if not path.exists():
        raise ContentError(str(path), ["the folder or file does not exist"])
    files = (
        [path]
        if path.is_file()
        else sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml"))
    )
    for file in files:
        yield str(file), parse_yaml(file.read_text(encoding="utf-8"), str(file))


def env_folders(variable: str) -> list[Path]:
    """Folders listed in an environment variable (``os.pathsep``-separated)."""
    value = os.environ.get(variable, "")
    return [Path(p) for p in value.split(os.pathsep) if p.strip()]


def entry_point_items(group: str) -> Iterator[tuple[str, Any]]:
    """``(source, item)`` from every entry point of ``group``.

    An entry point names an object or a callable returning one. The object may be a
    folder or file path, a mapping (a parsed file), a model instance, or an iterable
    of these.
    """
    for ep in metadata.entry_points(group=group):
        source = f"entry point {group}:{ep.name} ({ep.value})"
        try:
            obj = ep.load()
            if callable(obj) and not isinstance(obj, type):
                obj = obj()
        except Exception as exc:  # a broken plugin must name itself
            raise ContentError(source, [f"could not load: {exc!r}"]) from exc
        yield from _expand(obj, source)


def _expand(obj: Any, source: str) -> Iterator[tuple[str, Any]]:
    if isinstance(obj, str | os.PathLike):
        yield from folder_files(Path(obj))
    elif isinstance(obj, Mapping | BaseModel):
        yield source, obj
    elif hasattr(obj, "__iter__"):
        for entry in obj:
            yield from _expand(entry, source)
    else:
        raise ContentError(source, [f"unsupported object {type(obj).__name__}"])

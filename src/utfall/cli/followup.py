"""CLI commands for instruments and follow-up: ``utfall score``."""

from __future__ import annotations

import json
from enum import StrEnum

import typer
from rich.table import Table

from utfall.cli.app import app, console, err_console


class SexOption(StrEnum):
    """Sex for sex-specific bands."""

    M = "M"
    F = "F"


class OutputFormat(StrEnum):
    """Output format of ``utfall score``."""

    json = "json"
    table = "table"


def _parse_answers(text: str) -> list[int | None]:
    """``"1,0,,4"`` → ``[1, 0, None, 4]`` (an empty value is an unanswered item)."""
    values: list[int | None] = []
    for position, part in enumerate(text.split(","), start=1):
        token = part.strip()
        if token == "" or token.upper() in ("NA", "-"):
            values.append(None)
            continue
        try:
            values.append(int(token))
        except ValueError:
            raise typer.BadParameter(
                f"svar {position} ({token!r}) är inte ett heltal / "
                f"answer {position} ({token!r}) is not an integer",
                param_hint="--answers",
            ) from None
    return values


@app.command("score")
def score_command(
    instrument: str = typer.Argument(..., help="Instrument-id, t.ex. / e.g. audit, dudit, phq-9"),
    answers: str = typer.Option(
        ..., "--answers", help="Svar i ordning, kommaseparerade / answers in item order, e.g. 1,0,4"
    ),
    sex: SexOption | None = typer.Option(None, "--sex", help="Kön för könsspecifika gränser"),
    age: int | None = typer.Option(None, "--age", min=0, max=130, help="Ålder / age"),
    output: OutputFormat = typer.Option(OutputFormat.json, "--format", help="json | table"),
) -> None:
    """Poängsätt ett formulär / score one set of answers to an instrument."""
    from utfall.instruments import (
        ContentError,
        UnknownInstrumentError,
        answers_from_list,
        get_instrument,
        score,
        validate_answers,
    )

    try:
        definition = get_instrument(instrument)
    except UnknownInstrumentError as exc:
        raise typer.BadParameter(str(exc), param_hint="INSTRUMENT") from None
    except ContentError as exc:
        err_console.print(str(exc), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    mapped = answers_from_list(_parse_answers(answers))
    errors = [p for p in validate_answers(definition, mapped) if p.severity == "error"]
    if errors:
        for problem in errors:
            err_console.print(str(problem), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    result = score(definition, mapped, sex=sex.value if sex else None, age=age)
    if output is OutputFormat.json:
        defined = {f.id: f for f in definition.scoring.flags}
        flags = [{"id": f, "sv": defined[f].label.sv, "en": defined[f].label.en}
                 for f in result.flags]
        typer.echo(json.dumps({**result.summary(), "flags": flags}, ensure_ascii=False))
        return
    table = Table(title=f"{definition.title.sv} / {definition.title.en}")
    table.add_column("Mått / measure")
    table.add_column("Värde / value", justify="right")
    table.add_row("Totalpoäng / total", "–" if result.total is None else str(result.total))
    if result.transformed is not None and definition.scoring.transform:
        table.add_row(str(definition.scoring.transform.label), str(result.transformed))
    titles = {s.id: s.title for s in definition.scoring.subscales}
    for sub_id, value in result.subscales.items():
        table.add_row(str(titles[sub_id]), "–" if value is None else str(value))
    band = "–" if result.band is None else f"{result.band}: {result.band_label}"
    if result.band_provisional:
        band += " (preliminär / provisional)"
    table.add_row("Tolkning / band", band)
    for flag in result.flags:
        label = next(f.label for f in definition.scoring.flags if f.id == flag)
        table.add_row("Observera / flag", str(label))
    console.print(table)

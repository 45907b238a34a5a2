"""Command-line interface ``utfall`` (Typer + Rich).

Every module in this package other than ``app`` registers commands on the shared
app when imported; new command groups need only a new module here.
"""

from __future__ import annotations

import importlib
import pkgutil

from utfall.cli.app import app

for _info in pkgutil.iter_modules(__path__):
    if _info.name != "app":
        importlib.import_module(f"{__name__}.{_info.name}")


def main() -> None:
    """Entry point of the ``utfall`` console script."""
    app()

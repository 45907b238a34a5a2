"""``python -m utfall`` runs the CLI."""

from utfall.cli import main

main()

"""Pure domain logic: no I/O, no web, no database."""

"""The access tests share the web tests' seeded world and app."""

from tests.web.conftest import app, world, world_template  # noqa: F401

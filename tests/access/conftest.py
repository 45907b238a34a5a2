"""The access tests share the web tests' seeded world."""

from tests.web.conftest import world  # noqa: F401

"""The web tests' seeded world and clients, reused for the FHIR API."""

from tests.web.conftest import anon, app, login, world, world_template  # noqa: F401

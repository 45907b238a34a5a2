"""Property-based run over the OpenAPI schema: no input gives a server error (5xx).

Every operation gets a bounded number of generated cases (Hypothesis, derandomised),
valid and invalid (positive and negative generation), called once with a
clinician's bearer token and once without credentials.
"""

from __future__ import annotations

import itertools

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tests.web.conftest import api_login

pytestmark = pytest.mark.slow
EXAMPLES = 10


def test_no_server_errors(app) -> None:
    with TestClient(app) as client:
        bearer = api_login(client, "clin")
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app, headers=bearer)
    failures: list[str] = []
    statuses: dict[int, int] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20

    for operation, mode in itertools.product(operations, GenerationMode):

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case) -> None:
            own = bearer
            if case.method == "DELETE":  # logging out must not end the shared token
                with TestClient(app) as fresh:
                    own = api_login(fresh, "clin")
            for headers in (dict(own), None):
                response = case.call(headers=headers)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                if response.status_code >= 500:
                    failures.append(f"{case.method} {case.formatted_path}: "
                                    f"{response.status_code} {response.text[:200]}")

        try:
            run()
        except Unsatisfiable:  # e.g. no invalid input exists for a parameterless GET
            assert mode is GenerationMode.NEGATIVE
    assert not failures, "\n".join(failures[:20])
    assert sum(statuses.values()) >= 2 * len(operations) * 3
    assert statuses.get(401) and statuses.get(422)  # both refusals and validation ran
    # generated person keys are unknown: they answer 404 exactly like persons outside
    # the care relation (no existence oracle); routes without a person key still succeed
    assert statuses.get(404, 0) > len(operations)
    assert statuses.get(200, 0) + statuses.get(201, 0) >= 10
    print(sorted(statuses.items()))

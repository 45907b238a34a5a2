"""JSON bodies checked inside a route (so a malformed body still answers with
``issues``): the OpenAPI request schema and the 422 answer, shared by the API modules."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` documenting ``model`` as the required JSON request body."""
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": model.model_json_schema()}}}}


def invalid_body(exc: ValidationError) -> JSONResponse:
    """422 with one issue per invalid field (``where``, ``code``, ``sv``, ``en``)."""
    issues = []
    for e in exc.errors():
        where = ".".join(str(p) for p in e.get("loc", ())) or None
        issues.append({"where": where, "code": e.get("type", "invalid"),
                       "sv": f"ogiltigt värde ({e.get('msg')})", "en": str(e.get("msg"))})
    return JSONResponse({"detail": "invalid input", "code": "invalid_input", "issues": issues},
                        status_code=422)

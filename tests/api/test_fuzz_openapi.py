"""Bounded fuzzing of every server API operation from /openapi.json: nothing a client sends is a 500,
and every answer matches the document (status code, content type, body schema). Every operation that
takes a body, and the doors outside the document (widget, Delighted /v1/), also get the junk bodies of
tests/core/test_input_limits.py (deep nesting, huge integers, lone surrogates, NaN) as JSON and as text.

A bounded run is part of `make test`; `make fuzz` is the long run (FUZZ_EXAMPLES=200 per operation).
"""

from __future__ import annotations

import os
import re
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.result import Ok

from tests.support.db import make_project
from tests.support.junk import ERROR_KEYS, JUNK_BODIES, basic

pytestmark = pytest.mark.slow  # schemathesis over every operation

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "15"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def test_api_every_operation_never_answers_5xx_and_matches_its_schema(app: Flask) -> None:
    project = make_project(app, "Fuzz")
    headers = {"Authorization": f"Bearer {project['secret_key']}"}
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result.err()  # an operation its schema cannot describe
        operations.append(result.ok())
    assert len(operations) > 30  # every blueprint's operations are documented

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
        )
        def fuzz(case: Any) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        fuzz()
    print(f"\nfuzz: {len(operations)} operations x up to {EXAMPLES} examples, checks: no 5xx, schema")


# Doors outside /openapi.json that read a JSON body, with the credentials they take.
UNDOCUMENTED_DOORS = ["/api/widget/identify", "/api/widget/answer", "/api/widget/dismiss"]
DELIGHTED_DOORS = ["/v1/people.json", "/v1/survey_responses.json", "/v1/unsubscribes.json"]


def test_api_every_operation_with_a_body_answers_junk_bodies_in_the_error_shape(app: Flask) -> None:
    project = make_project(app, "Junk")
    app.config["RATELIMIT_KEY_PREFIX"] = "fuzz-junk"
    client = app.test_client()
    bearer = {"Authorization": f"Bearer {project['secret_key']}"}
    document = client.get("/openapi.json").get_json()
    targets = [
        (method.upper(), re.sub(r"\{[^}]+\}", "1", path), bearer)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if isinstance(operation, dict) and "requestBody" in operation
    ]
    assert len(targets) > 10
    targets += [("POST", path, {}) for path in UNDOCUMENTED_DOORS]
    targets += [("POST", path, basic(project)) for path in DELIGHTED_DOORS]
    for method, path, headers in targets:
        for name, raw in JUNK_BODIES.items():
            for content_type in ("application/json", "text/plain"):
                res = client.open(
                    path, method=method, data=raw, headers={**headers, "Content-Type": content_type}
                )
                assert res.status_code < 500, (method, path, name, res.get_data(as_text=True)[:200])
                if res.status_code >= 400 and res.is_json:
                    body = res.get_json()
                    assert set(body) == ERROR_KEYS and body["status"] == res.status_code, (path, name, body)
    print(f"\nfuzz: {len(targets)} doors x {len(JUNK_BODIES)} junk bodies x 2 content types: no 5xx")

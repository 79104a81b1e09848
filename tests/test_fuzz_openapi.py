"""Bounded fuzzing of every server API operation from /openapi.json: nothing a client sends is a 500,
and every answer matches the document (status code, content type, body schema).

A bounded run is part of `make test`; `make fuzz` is the long run (FUZZ_EXAMPLES=200 per operation).
"""

from __future__ import annotations

import os
from typing import Any

import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import make_project

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "15"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def test_api_every_operation_never_answers_5xx_and_matches_its_schema(app: Flask) -> None:
    project = make_project(app, "Fuzz")
    headers = {"Authorization": f"Bearer {project['secret_key']}"}
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
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

"""Bounded fuzzing of every server API operation from /openapi.json: nothing a client sends is a 500.

A larger run: `FUZZ_EXAMPLES=500 .venv/bin/python -m pytest tests/test_fuzz_openapi.py`.
"""

from __future__ import annotations

import os
from typing import Any

import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from tests.conftest import make_project

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "15"))


def test_api_every_operation_never_answers_5xx(app: Flask) -> None:
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
            case.call_and_validate(headers=headers, checks=[not_a_server_error])

        fuzz()

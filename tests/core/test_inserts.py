"""core.inserts: a row written by one Core INSERT and held as loaded takes every column but id, exactly."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from survey_service.core import clock
from survey_service.core.inserts import insert_loaded
from survey_service.extensions import db
from survey_service.models import Event


@pytest.mark.parametrize("key", ["typo", "received_at"], ids=["stray key", "column left out"])
def test_insert_loaded_values_not_the_columns_is_a_type_error_and_writes_nothing(
    app: Flask, project: dict[str, Any], key: str
) -> None:
    values: dict[str, Any] = {
        "project_id": project["id"],
        "external_id": "e1",
        "type": "signed_up",
        "person_id": 1,
        "occurred_at": clock.now(),
        "properties": {},
        "received_at": clock.now(),
    }
    if key in values:
        del values[key]
    else:
        values[key] = "x"
    with app.app_context():
        with pytest.raises(TypeError, match=key):
            insert_loaded(Event, values)
        assert db.session.scalar(select(func.count()).select_from(Event)) == 0

"""Marshmallow In schema of the export endpoints' filters."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from survey_service.core import nps
from survey_service.schemas.common import Instant, OriginQuery, PropertyCondition, theme_filter


class ExportQuery(OriginQuery):
    """GET /api/v1/exports/* filters (the same meaning as on the report)."""

    category = fields.String(validate=validate.OneOf(nps.CATEGORIES))
    since = Instant()
    until = Instant(end_of_day=True)
    channel = fields.String(validate=validate.Length(1, 8))
    where = fields.List(PropertyCondition(), validate=validate.Length(max=10), load_default=list)
    theme = theme_filter()

    @validates_schema
    def _ordered(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("since") and data.get("until") and data["since"] >= data["until"]:
            raise ValidationError("since must be before until.", "until")

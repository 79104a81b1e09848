"""Marshmallow In schema of a response's follow-up (closing the loop)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from survey_service.schemas.common import MAX_COMMENT


class FollowupIn(Schema):
    """PATCH /api/v1/responses/<id>: close the loop on one answer (give at least one field)."""

    followup_status = fields.String(validate=validate.OneOf(("new", "contacted", "resolved")))
    followup_owner = fields.String(validate=validate.Length(1, 255), allow_none=True)
    followup_notes = fields.String(validate=validate.Length(0, MAX_COMMENT), allow_none=True)
    followup_tags = fields.List(
        fields.String(
            validate=validate.Regexp(r"^[\w .:/-]{1,50}$", error="Tags are 1-50 plain characters.")
        ),
        validate=validate.Length(max=20),
    )

    @validates_schema
    def _something(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data:
            raise ValidationError("Give followup_status, followup_owner, followup_notes or followup_tags.")

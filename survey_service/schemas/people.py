"""Marshmallow In/Out schemas of people: who answered, as the API takes and gives them."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from survey_service.schemas.common import NO_CONTROL_CHARACTERS, Instant, Page, PageQuery, Properties


class PersonRef(Schema):
    """Who answered: found by external_id, else email; created when new."""

    external_id = fields.String(validate=validate.Length(1, 255))
    email = fields.Email(validate=validate.Length(3, 320))
    name = fields.String(validate=[validate.Length(0, 255), NO_CONTROL_CHARACTERS], allow_none=True)
    locale = fields.String(
        validate=[validate.Length(2, 35), validate.Regexp(r"^[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8})*$")],
        allow_none=True,
    )
    time_zone = fields.String(validate=validate.Length(1, 64), allow_none=True)
    properties = Properties(metadata={"type": "object", "additionalProperties": True})

    @validates_schema
    def _identified(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data.get("external_id") and not data.get("email"):
            raise ValidationError("Give external_id or email.", "_schema")

    @post_load
    def _normalise(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        if data.get("email"):
            data["email"] = data["email"].strip().lower()
        return data


class PersonIn(PersonRef):
    """POST /api/v1/people."""


class PersonOut(Schema):
    id = fields.Integer()
    external_id = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    name = fields.String(allow_none=True)
    locale = fields.String(allow_none=True)
    time_zone = fields.String(allow_none=True)
    properties = Properties()
    created_at = Instant()
    updated_at = Instant()


class PersonSummary(Schema):
    id = fields.Integer()
    external_id = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    name = fields.String(allow_none=True)


class PersonPage(Page):
    data = fields.List(fields.Nested(PersonOut))


class PersonQuery(PageQuery):
    """GET /api/v1/people: look people up by exact email or external_id (both given: both must match)."""

    email = fields.Email(
        validate=validate.Length(3, 320),
        metadata={"description": "exact match, case-insensitive (emails are stored lower-case)"},
    )
    external_id = fields.String(validate=validate.Length(1, 255), metadata={"description": "exact match"})

    @post_load
    def _normalise(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        if data.get("email"):
            data["email"] = data["email"].strip().lower()
        return data

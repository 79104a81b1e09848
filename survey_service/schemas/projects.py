"""Marshmallow In/Out schemas of the project's settings and its failed jobs."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from survey_service.schemas.common import Instant


class ProjectSettings(Schema):
    quiet_period_days = fields.Integer(strict=True, validate=validate.Range(0, 3660))
    allow_custom_events = fields.Boolean()


class ProjectOut(ProjectSettings):
    id = fields.Integer()
    name = fields.String()
    public_key = fields.String()
    created_at = Instant()


class FailedJobOut(Schema):
    job_id = fields.String()
    request_id = fields.Integer(allow_none=True)
    function = fields.String()
    failed_at = Instant()
    error = fields.String()


class FailedJobList(Schema):
    data = fields.List(fields.Nested(FailedJobOut))

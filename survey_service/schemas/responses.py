"""Marshmallow In/Out schemas of responses: recording one, reading them page by page."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from survey_service.core import nps
from survey_service.schemas.common import MAX_COMMENT, Instant, Page, PageQuery, Properties, StrictScore
from survey_service.schemas.people import PersonRef, PersonSummary


class ResponseIn(Schema):
    """POST /api/v1/responses."""

    person = fields.Nested(PersonRef, required=True)
    score = StrictScore(required=True)
    comment = fields.String(validate=validate.Length(0, MAX_COMMENT), allow_none=True)
    created_at = Instant(fact=True)
    reference_consent = fields.Boolean(
        allow_none=True, metadata={"description": "agreed to be contacted for a reference (when asked)"}
    )


class ResponseOut(Schema):
    id = fields.Integer()
    survey_id = fields.Integer()
    person_id = fields.Integer()
    person = fields.Nested(PersonSummary)
    score = fields.Integer()
    category = fields.String(validate=validate.OneOf(nps.CATEGORIES))
    comment = fields.String(allow_none=True)
    channel = fields.String()
    properties = Properties(metadata={"description": "the person's properties frozen when answering"})
    reference_consent = fields.Boolean(allow_none=True)
    followup_status = fields.String(metadata={"description": "new | contacted | resolved"})
    followup_owner = fields.String(allow_none=True)
    followup_notes = fields.String(allow_none=True)
    followup_tags = fields.List(fields.String())
    created_at = Instant()
    updated_at = Instant()
    review_asked_at = Instant(
        allow_none=True, metadata={"description": "the promoter loop offered this promoter a review"}
    )
    review_consented_at = Instant(allow_none=True, metadata={"description": "the person agreed to leave one"})
    review_link_clicked_at = Instant(
        allow_none=True, metadata={"description": "the person first followed a review link"}
    )


class ResponsePage(Page):
    data = fields.List(fields.Nested(ResponseOut))


class ResponseQuery(PageQuery):
    """GET /api/v1/responses filters."""

    category = fields.String(validate=validate.OneOf(nps.CATEGORIES))
    since = Instant()
    until = Instant(end_of_day=True)
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 500))

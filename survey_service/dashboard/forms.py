"""The dashboard's filter bar as a marshmallow schema (query string in, filters out)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from survey_service.core import nps
from survey_service.models import CHANNELS, FOLLOWUP_STATUSES
from survey_service.reporting.dashboard import INTERVALS, RANGES
from survey_service.schemas.common import EVENT_TYPE, MAX_ID, THEME_KEY, PropertyCondition, PropertyName


class DashboardQuery(Schema):
    """The dashboard's filter bar; invalid values are dropped (and reported), never a 500."""

    range = fields.String(load_default="12m", validate=validate.OneOf(tuple(RANGES)))
    interval = fields.String(validate=validate.OneOf(INTERVALS))
    by = PropertyName()
    segment = PropertyCondition()
    category = fields.String(validate=validate.OneOf(nps.CATEGORIES))
    q = fields.String(validate=validate.Length(1, 200))
    followup = fields.String(validate=validate.OneOf(FOLLOWUP_STATUSES))
    survey_id = fields.Integer(validate=validate.Range(1, MAX_ID))
    channel = fields.String(validate=validate.OneOf(CHANNELS))
    trigger_id = fields.Integer(validate=validate.Range(1, MAX_ID))
    event_type = fields.String(validate=EVENT_TYPE)
    theme = fields.String(validate=THEME_KEY)
    suggest = fields.Boolean()

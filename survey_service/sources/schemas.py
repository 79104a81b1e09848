"""Marshmallow schemas of event sources: the settings API's In/Out shapes (the receiver reads providers'
own payloads, not these)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates

from survey_service.models import SOURCE_KINDS, SOURCE_OUTCOMES
from survey_service.schemas.common import EVENT_TYPE, Instant

MAX_MAPPED_EVENTS = 200


class Mapping(Schema):
    """How a source's payloads map: a table of provider event names, and how people are identified."""

    events = fields.Dict(
        keys=fields.String(validate=validate.Length(1, 200)),
        values=fields.String(validate=EVENT_TYPE, allow_none=True),
        metadata={
            "description": "provider event name → event type (null: ignore it); overrides the defaults"
        },
    )
    identify_by = fields.String(
        validate=validate.OneOf(("external_id", "email")),
        metadata={"description": "external_id (the provider's customer/user id, default) or email only"},
    )
    secret_header = fields.Boolean(
        metadata={"description": "segment kind: also accept X-Source-Secret (RudderStack cannot sign)"}
    )
    person_external_id = fields.String(
        validate=validate.OneOf(("zendesk_requester_id",)),
        metadata={"description": "zendesk kind: map Zendesk ticket events to the requester's Zendesk id"},
    )

    @validates("events")
    def _bounded(self, value: dict[str, Any], **kwargs: Any) -> None:
        if len(value) > MAX_MAPPED_EVENTS:
            raise ValidationError(f"At most {MAX_MAPPED_EVENTS} event names.")


class SourceIn(Schema):
    """POST /api/v1/sources."""

    kind = fields.String(required=True, validate=validate.OneOf(SOURCE_KINDS))
    name = fields.String(validate=validate.Length(0, 200), allow_none=True)
    signing_secret = fields.String(
        validate=validate.Length(8, 500),
        metadata={
            "description": "the provider's secret; stripe, zendesk, intercom and hubspot issue their own "
            "(give it here, or later through rotate_secret); the other kinds get a fresh one when omitted"
        },
    )
    mapping = fields.Nested(Mapping)
    enabled = fields.Boolean()


class SourcePatch(Schema):
    """PATCH /api/v1/sources/<id>."""

    name = fields.String(validate=validate.Length(0, 200), allow_none=True)
    mapping = fields.Nested(Mapping)
    enabled = fields.Boolean()


class RotateIn(Schema):
    """POST /api/v1/sources/<id>/rotate_secret."""

    signing_secret = fields.String(
        validate=validate.Length(8, 500),
        metadata={
            "description": "the provider's new secret; omitted: a fresh one (kinds whose secret we make)"
        },
    )
    grace_hours = fields.Integer(
        strict=True,
        validate=validate.Range(0, 24 * 7),
        load_default=24,
        metadata={"description": "how long the previous secret still verifies"},
    )


class DeliveryOut(Schema):
    received_at = Instant()
    outcome = fields.String(metadata={"enum": list(SOURCE_OUTCOMES)})
    reason = fields.String(allow_none=True)
    provider_event = fields.String(allow_none=True)
    event_id = fields.String(allow_none=True)
    event_type = fields.String(allow_none=True)


class SourceOut(Schema):
    id = fields.Integer()
    kind = fields.String()
    name = fields.String(allow_none=True)
    url = fields.String(metadata={"description": "where the provider posts its webhooks"})
    mapping = fields.Dict()
    enabled = fields.Boolean()
    created_at = Instant()
    last_received_at = Instant(allow_none=True)
    previous_secret_expires_at = Instant(allow_none=True)


class SourceDetail(SourceOut):
    recent_deliveries = fields.List(fields.Nested(DeliveryOut))


class SourceCreated(SourceOut):
    signing_secret = fields.String(
        allow_none=True,
        metadata={
            "description": "shown only now (creation and rotation); null until a provider-issued one is given"
        },
    )


class SourceList(Schema):
    data = fields.List(fields.Nested(SourceOut))

"""The kinds of event source: each provider's verifier and parser, and who makes its signing secret."""

from __future__ import annotations

from dataclasses import dataclass

from survey_service.sources import chargebee, freshdesk, hubspot, intercom, segment, stripe, zendesk
from survey_service.sources.base import Parser, Verifier


@dataclass(frozen=True)
class Kind:
    """A provider: how its deliveries are verified and read, and whether it issues the secret itself."""

    name: str
    verify: Verifier
    parse: Parser
    # Stripe, Zendesk, Intercom and HubSpot show the secret in their own settings: it must be given.
    provider_issues_secret: bool


KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind("segment", segment.verify, segment.parse, provider_issues_secret=False),
        Kind("stripe", stripe.verify, stripe.parse, provider_issues_secret=True),
        Kind("zendesk", zendesk.verify, zendesk.parse, provider_issues_secret=True),
        Kind("intercom", intercom.verify, intercom.parse, provider_issues_secret=True),
        Kind("freshdesk", freshdesk.verify, freshdesk.parse, provider_issues_secret=False),
        Kind("hubspot", hubspot.verify, hubspot.parse, provider_issues_secret=True),
        Kind("chargebee", chargebee.verify, chargebee.parse, provider_issues_secret=False),
    )
}

"""How each provider's payloads map: people and properties, event types, the per-source mapping table."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from survey_service.extensions import db
from survey_service.models import Event, Person
from tests.support.mail import flush_redis
from tests.support.sources import create_source, deliver, sample

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen_clock(app: Flask) -> None:
    app.config["FROZEN_NOW"] = NOW
    flush_redis(app)


def events_of(app: Flask) -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """(external id, type, properties, person fields) of every event, in order."""
    with app.app_context():
        found = []
        for event in db.session.scalars(select(Event).order_by(Event.id)):
            person = db.session.get(Person, event.person_id)
            assert person is not None
            who = {"external_id": person.external_id, "email": person.email, "name": person.name}
            found.append((event.external_id, event.type, dict(event.properties), who))
        db.session.rollback()
        return found


def person_by(app: Flask, **where: Any) -> Person:
    with app.app_context():
        person = db.session.scalar(select(Person).filter_by(**where))
        assert person is not None
        db.session.expunge(person)
        return person


def test_segment_identify_upserts_person_with_traits_as_normalised_properties(
    app: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    source = create_source(client, auth, "segment")
    res = deliver(client, source, sample("segment_identify.json"), NOW)
    assert res.status_code == 200 and res.get_json()["accepted"] == 1
    person = person_by(app, external_id="97980cfea0067")
    assert person.email == "peter@example.com" and person.name == "Peter Gibbons"
    # Scalars only, names as every door normalises them; the nested address is left out.
    assert person.properties == {"plan": "premium", "logins": 5, "company_size": "51-200"}
    assert events_of(app) == []


def test_segment_track_name_is_snake_cased_and_properties_kept(
    app: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    source = create_source(client, auth, "segment")
    deliver(client, source, sample("segment_identify.json"), NOW)
    deliver(client, source, sample("segment_track.json"), NOW)
    [(event_id, event_type, props, who)] = events_of(app)
    assert event_id == "ajs-f8ca1e4de5024d9430b3928bd8ac6b96" and event_type == "onboarding_completed"
    assert props == {"plan": "Pro Annual", "accounttype": "Facebook", "steps": 5}
    assert who["external_id"] == "97980cfea0067" and who["email"] == "peter@example.com"


@pytest.mark.parametrize(
    ("table", "expected"),
    [({"Onboarding Completed": "go_live"}, "go_live"), ({"Onboarding Completed": None}, None)],
    ids=["renamed", "ignored"],
)
def test_segment_mapping_table_overrides_the_default_name(
    app: Flask, client: FlaskClient, auth: dict[str, str], table: dict[str, Any], expected: str | None
) -> None:
    source = create_source(client, auth, "segment", mapping={"events": table})
    body = deliver(client, source, sample("segment_track.json"), NOW).get_json()
    assert [e[1] for e in events_of(app)] == ([expected] if expected else [])
    assert body["ignored"] == (
        [] if expected else ["track 'Onboarding Completed' is not mapped to an event type"]
    )


def test_segment_batch_maps_each_message(app: Flask, client: FlaskClient, auth: dict[str, str]) -> None:
    source = create_source(client, auth, "segment")
    track = sample("segment_track.json")
    batch = {
        "batch": [sample("segment_identify.json"), track, {**track, "messageId": "m2", "event": "Renewed"}]
    }
    body = deliver(client, source, batch, NOW).get_json()
    assert body["accepted"] == 3
    assert [e[1] for e in events_of(app)] == ["onboarding_completed", "renewed"]


def test_segment_identify_by_email_ignores_user_id(
    app: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    source = create_source(client, auth, "segment", mapping={"identify_by": "email"})
    deliver(client, source, sample("segment_track.json"), NOW)
    [(_, _, _, who)] = events_of(app)
    assert who == {"external_id": None, "email": "peter@example.com", "name": None}


def test_stripe_invoice_upcoming_carries_renewal_date_of_next_payment(
    app: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    source = create_source(client, auth, "stripe")
    deliver(client, source, sample("stripe_invoice_upcoming.json"), NOW)
    [(event_id, event_type, props, who)] = events_of(app)
    assert event_id == "evt_1NG8Du2eZvKYlo2CUI79vXWy" and event_type == "renewal_upcoming"
    assert props["renewal_date"] == "2026-05-01T16:00:00Z" and props["amount_due"] == 120000
    assert who == {
        "external_id": "cus_NffrFeUfNV2Hib",
        "email": "jenny.rosen@example.com",
        "name": "Jenny Rosen",
    }


def test_stripe_subscription_price_raise_is_upgraded_and_other_updates_ignored(
    app: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    source = create_source(client, auth, "stripe")
    upgrade = sample("stripe_subscription_updated.json")
    assert deliver(client, source, upgrade, NOW).get_json()["accepted"] == 1
    downgrade = {**upgrade, "id": "evt_down"}
    downgrade["data"] = {
        "object": upgrade["data"]["previous_attributes"]
        | {"id": "sub_1", "object": "subscription", "customer": "cus_NffrFeUfNV2Hib", "status": "active"},
        "previous_attributes": {
            "plan": upgrade["data"]["object"]["plan"],
            "items": upgrade["data"]["object"]["items"],
        },
    }
    status_only = {
        **upgrade,
        "id": "evt_status",
        "data": {**upgrade["data"], "previous_attributes": {"status": "trialing"}},
    }
    for payload in (downgrade, status_only):
        assert deliver(client, source, payload, NOW).get_json()["ignored"], payload["id"]
    assert [(e[0], e[1], e[2]["plan"]) for e in events_of(app)] == [
        ("evt_1MowQVLkdIwHu7ixUPDATED", "upgraded", "price_business")
    ]


def test_stripe_trial_will_end_is_trial_ending_with_trial_end(
    app: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    source = create_source(client, auth, "stripe")
    deliver(client, source, sample("stripe_trial_will_end.json"), NOW)
    [(_, event_type, props, who)] = events_of(app)
    assert event_type == "trial_ending" and props["trial_end"] == "2026-03-05T15:00:00Z"
    assert who["external_id"] == "cus_NffrFeUfNV2Hib" and who["email"] is None


def test_stripe_customer_created_then_subscription_event_reaches_the_same_person(
    app: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    source = create_source(client, auth, "stripe")
    deliver(client, source, sample("stripe_customer_created.json"), NOW)
    deliver(client, source, sample("stripe_trial_will_end.json"), NOW)
    person = person_by(app, external_id="cus_NffrFeUfNV2Hib")
    assert person.email == "jennyrosen@example.com" and person.properties == {"plan": "business", "seats": 12}
    [(_, _, _, who)] = events_of(app)
    assert who["email"] == "jennyrosen@example.com"


def test_stripe_identify_by_email_mapping_drops_customer_id(
    app: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    source = create_source(client, auth, "stripe", mapping={"identify_by": "email"})
    deliver(client, source, sample("stripe_invoice_upcoming.json"), NOW)
    body = deliver(client, source, sample("stripe_trial_will_end.json"), NOW).get_json()
    [(_, _, _, who)] = events_of(app)
    assert who["external_id"] is None and who["email"] == "jenny.rosen@example.com"
    assert body["ignored"] and "no email" in body["ignored"][0]


def test_zendesk_solved_then_closed_is_one_closing(
    app: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    source = create_source(client, auth, "zendesk")
    solved = sample("zendesk_trigger_ticket_solved.json")
    closed = {**solved, "ticket": {**solved["ticket"], "status": "Closed"}}
    assert deliver(client, source, solved, NOW).get_json()["accepted"] == 1
    assert deliver(client, source, closed, NOW).get_json()["duplicates"] == 1
    assert [(e[0], e[1]) for e in events_of(app)] == [("zendesk:ticket:35436:closed", "ticket_closed")]


def test_zendesk_ticket_event_maps_only_when_requester_id_is_the_person(
    app: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    plain = create_source(client, auth, "zendesk")
    body = deliver(client, plain, sample("zendesk_event_ticket_status_changed.json"), NOW).get_json()
    assert body["accepted"] == 0 and "trigger" in body["ignored"][0]
    mapped = create_source(client, auth, "zendesk", mapping={"person_external_id": "zendesk_requester_id"})
    assert (
        deliver(client, mapped, sample("zendesk_event_ticket_status_changed.json"), NOW).get_json()[
            "accepted"
        ]
        == 1
    )
    assert [(e[0], e[1], e[3]["external_id"]) for e in events_of(app)] == [
        ("cbe4028c-7239-495d-b020-f22348516046", "ticket_closed", "20978392")
    ]


def test_custom_event_types_off_is_ignored_and_logged_not_refused(
    app: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    client.patch("/api/v1/project", json={"allow_custom_events": False}, headers=auth)
    source = create_source(client, auth, "hubspot")
    res = deliver(client, source, sample("hubspot_contact_lifecycle.json"), NOW)
    assert res.status_code == 200 and "Custom event types" in res.get_json()["ignored"][0]
    shown = client.get(f"/api/v1/sources/{source['id']}", headers=auth).get_json()
    assert shown["recent_deliveries"][0]["outcome"] == "ignored"


def test_email_held_by_another_person_is_ignored_not_a_500(
    app: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    client.post(
        "/api/v1/people", json={"external_id": "someone-else", "email": "peter@example.com"}, headers=auth
    )
    source = create_source(client, auth, "segment")
    res = deliver(client, source, sample("segment_identify.json"), NOW)
    assert res.status_code == 200 and res.get_json()["ignored"] == [
        "This email belongs to a person with another external_id."
    ]

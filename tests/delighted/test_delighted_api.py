"""The unmodified official `delighted` Python client against the /v1/ compat API, on both databases."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
import requests
from flask import Flask
from sqlalchemy import func, select

from survey_service import create_app
from survey_service.extensions import db
from survey_service.models import Person, Response, SurveyRequest
from survey_service.reporting.reports import nps_report
from tests.support.db import make_project
from tests.support.env import free_port
from tests.support.servers import live_server

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)  # the client warns about Delighted's sunset
    import delighted
    from delighted.errors import (
        AuthenticationError,
        GeneralAPIError,
        ResourceValidationError,
        ServiceUnavailableError,
        TooManyRequestsError,
    )


@pytest.fixture
def serve() -> Iterator[Callable[[Flask], str]]:
    """Start apps on real HTTP servers (one thread each); returns their /v1/ base URLs."""
    with ExitStack() as servers:

        def start(app: Flask) -> str:
            return servers.enter_context(live_server(app, threaded=False, set_base_url=False)) + "/v1/"

        yield start


def use_client(base: str, key: str) -> None:
    """Point the official client at the service, as a migrating customer would."""
    delighted.api_key = key
    delighted.api_base_url = base
    delighted.shared_client = None  # the client caches its first Client (and key) module-wide


@pytest.fixture
def api(app: Flask, project: dict[str, Any], serve: Callable[[Flask], str], redis_url: str) -> str:
    """The running service with the client configured for the project; returns the base URL."""
    redis.Redis.from_url(redis_url).flushdb()  # rate-limit counters of earlier tests
    base = serve(app)
    use_client(base, project["secret_key"])
    return base


def count(app: Flask, model: Any, *where: Any) -> int:
    with app.app_context():
        return int(db.session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def test_people_create_with_properties_and_delay_schedules_survey(app: Flask, api: str) -> None:
    before = int(time.time())
    person = delighted.Person.create(
        email="Jony@Appleseed.com",
        name="Jony",
        delay=3600,
        properties={"Purchase Experience": "Mobile App", "plan": "pro"},
    )
    after = int(time.time())
    assert isinstance(person.id, str) and person.email == "jony@appleseed.com"
    assert before + 3600 <= person.survey_scheduled_at <= after + 3601
    # Names are normalised as at every door: stripped, spaces as "_", lower-case.
    assert person.properties == {"purchase_experience": "Mobile App", "plan": "pro"}

    again = delighted.Person.create(email="jony@appleseed.com", properties={"Plan": "team"}, send=False)
    assert again.id == person.id and again.survey_scheduled_at is None
    assert again.properties == {"purchase_experience": "Mobile App", "plan": "team"}
    with app.app_context():
        requests_ = db.session.scalars(select(SurveyRequest)).all()
        assert [(r.status, r.channel, r.person_id) for r in requests_] == [
            ("scheduled", "email", int(person.id))
        ]
        scheduled_at = requests_[0].scheduled_at
        assert scheduled_at is not None and int(scheduled_at.timestamp()) == person.survey_scheduled_at


def test_people_create_with_last_sent_at_and_phone_is_listed_with_activity(api: str) -> None:
    sent = int(datetime(2025, 5, 1, tzinfo=UTC).timestamp())
    delighted.Person.create(
        email="pat@example.com", phone_number="+17132746524", last_sent_at=sent, send=False
    )
    listed = delighted.Person.all(email="pat@example.com")
    assert len(listed) == 1
    assert listed[0].phone_number == "+17132746524" and listed[0].last_sent_at == sent
    assert listed[0].next_survey_scheduled_at is None and listed[0].last_responded_at is None
    assert delighted.Person.all(phone_number="+17132746524")[0].id == listed[0].id


def test_people_list_auto_paging_crosses_pages_in_creation_order(api: str) -> None:
    emails = [f"p{i}@example.com" for i in range(7)]
    for email in emails:
        delighted.Person.create(email=email, send=False)
    pages = requests.get(
        api + "people.json", params={"per_page": 3}, auth=(delighted.api_key, ""), timeout=10
    )
    assert pages.status_code == 200 and 'rel="next"' in pages.headers["Link"]
    assert "page_info=" in pages.links["next"]["url"] and "per_page=3" in pages.links["next"]["url"]

    listing = delighted.Person.list(per_page=3)
    seen = [p.email for p in listing.auto_paging_iter()]
    assert seen == emails
    assert listing.iteration_count == 3  # 3 + 3 + 1
    assert len(delighted.Person.all(per_page=2)) == 2


def test_people_bulk_create_with_send_false_stores_people_and_schedules_nothing(app: Flask, api: str) -> None:
    """The API path of a people-list migration: one POST /v1/people per person with send=false."""
    emails = [f"bulk{i}@example.com" for i in range(120)]
    for i, email in enumerate(emails):
        delighted.Person.create(email=email, name=f"Bulk {i}", send=False, properties={"Plan": "pro"})
    # curl's form encoding (`-d send=false`) means the same.
    form = requests.post(
        api + "people.json",
        data={"email": emails[0], "send": "false", "properties[Plan]": "team"},
        auth=(delighted.api_key, ""),
        timeout=10,
    )
    assert form.status_code == 200 and form.json()["survey_scheduled_at"] is None
    assert form.json()["properties"] == {"plan": "team"}  # names normalised, as everywhere
    listed = [p.email for p in delighted.Person.list(per_page=100).auto_paging_iter()]
    assert listed == emails
    assert count(app, Person) == 120 and count(app, SurveyRequest) == 0


def test_survey_responses_create_retrieve_update_list(app: Flask, api: str) -> None:
    person = delighted.Person.create(email="ann@example.com", properties={"plan": "pro"}, send=False)
    created = delighted.SurveyResponse.create(
        person=person.id, score=9, comment="Great", person_properties={"Region": "EU"}
    )
    assert created.person == person.id and created.score == 9 and created.survey_type == "nps"
    assert created.person_properties == {"plan": "pro", "region": "EU"}
    assert isinstance(created.created_at, int) and created.notes == [] and created.tags == []

    fetched = delighted.SurveyResponse.retrieve(created.id, expand=["person"])
    assert isinstance(fetched.person, delighted.Person) and fetched.person.email == "ann@example.com"
    fetched.score = 3
    fetched.comment = "Changed my mind"
    saved = fetched.save()
    assert saved.score == 3 and saved.comment == "Changed my mind" and saved.person.id == person.id
    with app.app_context():
        stored = db.session.get(Response, int(created.id))
        assert stored is not None and (stored.score, stored.category) == (3, "detractor")

    old = int(datetime(2024, 6, 1, tzinfo=UTC).timestamp())
    second = delighted.SurveyResponse.create(person=person.id, score=10, created_at=old)
    assert second.created_at == old
    ascending = delighted.SurveyResponse.all()
    assert [r.id for r in ascending] == [second.id, created.id]
    assert [r.id for r in delighted.SurveyResponse.all(order="desc")] == [created.id, second.id]
    assert [r.id for r in delighted.SurveyResponse.all(per_page=1, page=2)] == [created.id]
    assert [r.id for r in delighted.SurveyResponse.all(until=old)] == [second.id]
    assert [r.id for r in delighted.SurveyResponse.all(since=old + 1)] == [created.id]
    assert [r.id for r in delighted.SurveyResponse.all(updated_since=old + 1)] == [created.id]
    assert [r.id for r in delighted.SurveyResponse.all(order="desc:updated_at")][0] == created.id
    assert len(delighted.SurveyResponse.all(person_email="ann@example.com")) == 2
    assert delighted.SurveyResponse.all(person_id=person.id)[0].person == person.id
    assert delighted.SurveyResponse.all(person_email="nobody@example.com") == []
    expanded = delighted.SurveyResponse.all(expand=["person"])
    assert all(r.person.email == "ann@example.com" for r in expanded)


def test_expanded_person_shows_the_same_activity_as_the_people_list(app: Flask, api: str) -> None:
    sent = int(datetime(2025, 5, 1, tzinfo=UTC).timestamp())
    person = delighted.Person.create(email="sam@example.com", last_sent_at=sent, send=False)
    answered = int(datetime(2025, 5, 2, tzinfo=UTC).timestamp())
    created = delighted.SurveyResponse.create(person=person.id, score=8, created_at=answered)
    listed = delighted.Person.all(email="sam@example.com")[0]
    assert (listed.last_responded_at, listed.last_sent_at) == (answered, sent)
    fields = ("last_sent_at", "last_responded_at", "next_survey_scheduled_at")
    shown = {name: getattr(listed, name) for name in fields}
    retrieved = delighted.SurveyResponse.retrieve(created.id, expand=["person"]).person
    in_list = delighted.SurveyResponse.all(expand=["person"])[0].person
    for expanded in (retrieved, in_list):
        assert {name: getattr(expanded, name) for name in fields} == shown


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"score": 11}, "score"),
        ({"score": "9"}, "score"),
        ({"score": True}, "score"),
        ({"score": 9, "comment": "x" * 5001}, "comment"),
        ({"score": 9, "created_at": "yesterday"}, "created_at"),
        ({"score": 9, "person_properties": {"nested": {"a": 1}}}, "person_properties"),
    ],
)
def test_survey_responses_create_invalid_is_422_naming_the_field(
    api: str, params: dict[str, Any], field: str
) -> None:
    person = delighted.Person.create(email="val@example.com", send=False)
    with pytest.raises(ResourceValidationError) as raised:
        delighted.SurveyResponse.create(person=person.id, **params)
    body = raised.value.response.body
    assert raised.value.response.status_code == 422 and f'"{field}"' in body


def test_survey_responses_list_per_page_over_100_is_422(api: str) -> None:
    with pytest.raises(ResourceValidationError):
        delighted.SurveyResponse.all(per_page=101)


def test_metrics_window_matches_core_report(app: Flask, api: str, project: dict[str, Any]) -> None:
    jan = int(datetime(2025, 1, 10, tzinfo=UTC).timestamp())
    feb = int(datetime(2025, 2, 10, tzinfo=UTC).timestamp())
    scores = {jan: [10, 10, 9, 8, 7, 6, 3], feb: [0, 1, 10]}
    for moment, values in scores.items():
        for i, score in enumerate(values):
            person = delighted.Person.create(email=f"m{moment}-{i}@example.com", send=False)
            delighted.SurveyResponse.create(person=person.id, score=score, created_at=moment + i)

    window = delighted.Metrics.retrieve(since=jan, until=jan + 6)  # until is inclusive
    assert window == {
        "nps": 14,  # (3 - 2) / 7 = 14.29
        "promoter_count": 3,
        "promoter_percent": 43,
        "passive_count": 2,
        "passive_percent": 29,
        "detractor_count": 2,
        "detractor_percent": 29,
        "response_count": 7,
    }
    with app.app_context():
        core = nps_report(
            project["id"],
            since=datetime.fromtimestamp(jan, UTC),
            until=datetime.fromtimestamp(jan + 7, UTC),
        )["overall"]
    assert core["responses"] == window["response_count"] and core["promoters"] == window["promoter_count"]
    assert round(core["nps"]) == window["nps"]

    everything = delighted.Metrics.retrieve()  # no window: all responses
    assert everything["response_count"] == 10 and everything["nps"] == 0  # (4 - 4) / 10
    assert delighted.Metrics.retrieve(since=feb + 100)["nps"] is None


def test_delete_pending_and_person_erases_everything(app: Flask, api: str) -> None:
    person = delighted.Person.create(email="gone@example.com", phone_number="+15550001111", delay=600)
    delighted.SurveyResponse.create(person=person.id, score=4)
    assert delighted.SurveyRequest.delete_pending(person_email="gone@example.com")["ok"] is True
    with app.app_context():
        statuses = db.session.scalars(select(SurveyRequest.status)).all()
    assert statuses == ["cancelled"]
    assert delighted.Person.all(email="gone@example.com")[0].next_survey_scheduled_at is None

    assert delighted.Person.delete(email="gone@example.com") == {"ok": True}
    assert count(app, Person) == 0 and count(app, Response) == 0 and count(app, SurveyRequest) == 0

    by_id = delighted.Person.create(email="id@example.com", send=False)
    by_phone = delighted.Person.create(email="ph@example.com", phone_number="+15550002222", send=False)
    assert delighted.Person.delete(id=by_id.id) == {"ok": True}
    assert delighted.Person.delete(phone_number="+15550002222") == {"ok": True}
    assert count(app, Person, Person.id.in_([int(by_id.id), int(by_phone.id)])) == 0
    with pytest.raises(GeneralAPIError) as raised:
        delighted.Person.delete(email="gone@example.com")
    assert raised.value.response.status_code == 404


def test_other_projects_ids_are_404(app: Flask, api: str) -> None:
    person = delighted.Person.create(email="mine@example.com", send=False)
    response = delighted.SurveyResponse.create(person=person.id, score=9)
    other = make_project(app, "Other")
    client = delighted.Client(api_key=other["secret_key"], api_base_url=api)
    calls: tuple[Callable[[], object], ...] = (
        lambda: delighted.SurveyResponse.retrieve(response.id, client=client),
        lambda: delighted.SurveyResponse.create(person=person.id, score=1, client=client),
        lambda: delighted.Person.delete(id=person.id, client=client),
        lambda: delighted.SurveyRequest.delete_pending(person_email="mine@example.com", client=client),
    )
    for call in calls:
        with pytest.raises(GeneralAPIError) as raised:
            call()
        assert raised.value.response.status_code == 404
    assert delighted.SurveyResponse.all(client=client) == []
    assert count(app, Person) == 1 and count(app, Response) == 1


def test_bad_key_is_authentication_error(api: str) -> None:
    for key in ("sk_wrong", "not-a-key"):
        use_client(api, key)
        with pytest.raises(AuthenticationError) as raised:
            delighted.Metrics.retrieve()
        assert raised.value.response.status_code == 401


def test_json_suffix_and_form_bodies_work_like_delighted(api: str) -> None:
    auth = (delighted.api_key, "")
    created = requests.post(
        api + "people.json",
        data={"email": "form@example.com", "properties[Customer ID]": "123", "send": "false"},
        auth=auth,
        timeout=10,
    )
    assert created.status_code == 200, created.text
    assert created.json()["properties"] == {"customer_id": "123"}  # names normalised, as everywhere
    answer = requests.post(
        api + "survey_responses.json",
        data={"person": created.json()["id"], "score": "8"},
        auth=auth,
        timeout=10,
    )
    assert answer.status_code == 201 and answer.json()["score"] == 8
    got = requests.get(api + f"survey_responses/{answer.json()['id']}.json", auth=auth, timeout=10)
    assert got.status_code == 200 and got.json()["id"] == answer.json()["id"]
    metrics = requests.get(api + "metrics.json", auth=auth, timeout=10)
    assert metrics.json()["passive_count"] == 1


def test_rate_limit_is_429_with_retry_after(app: Flask, api: str) -> None:
    app.config["DELIGHTED_RATE_LIMIT"] = 3
    for _ in range(3):
        delighted.Metrics.retrieve()
    with pytest.raises(TooManyRequestsError) as raised:
        delighted.Metrics.retrieve()
    assert raised.value.response.status_code == 429
    assert 1 <= raised.value.retry_after <= 61


def test_rate_limit_redis_down_answers_and_counts_in_memory(
    migrated: dict[str, Any], serve: Callable[[Flask], str]
) -> None:
    app = create_app(
        {**migrated, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0", "DELIGHTED_RATE_LIMIT": 2}
    )
    keys = make_project(app, "No Redis")
    use_client(serve(app), keys["secret_key"])
    for _ in range(2):
        assert delighted.Metrics.retrieve()["response_count"] == 0
    with pytest.raises(TooManyRequestsError) as raised:  # the limit holds, counted in this process
        delighted.Metrics.retrieve()
    assert 1 <= raised.value.retry_after <= 61
    with app.app_context():
        db.engine.dispose()


def test_database_down_is_service_unavailable(
    migrated: dict[str, Any], serve: Callable[[Flask], str]
) -> None:
    dead = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none?connect_timeout=2"
    app = create_app({**migrated, "SQLALCHEMY_DATABASE_URI": dead})
    use_client(serve(app), "sk_" + "x" * 40)
    with pytest.raises(ServiceUnavailableError) as raised:
        delighted.Metrics.retrieve()
    assert raised.value.response.status_code == 503
    assert raised.value.response.headers["Retry-After"] == "30"


def test_people_create_recently_sent_is_throttled_by_quiet_period(app: Flask, api: str) -> None:
    recently = int(time.time()) - 10 * 86400
    person = delighted.Person.create(email="tired@example.com", last_sent_at=recently)
    assert person.survey_scheduled_at is None and person.survey_skipped_reason == "quiet_period"
    fresh = delighted.Person.create(email="fresh@example.com", last_sent_at=recently - 200 * 86400)
    assert fresh.survey_scheduled_at is not None and fresh.survey_skipped_reason is None
    assert count(app, SurveyRequest, SurveyRequest.status == "scheduled") == 1


def test_unsubscribe_create_list_and_waiting_email_cancelled(app: Flask, api: str) -> None:
    delighted.Person.create(email="leaver@example.com", name="Lee", delay=3600)
    assert delighted.Unsubscribe.create(person_email="leaver@example.com") == {"ok": True}
    listed = delighted.Unsubscribe.all()
    assert [(u["email"], u["name"]) for u in listed] == [("leaver@example.com", "Lee")]
    assert isinstance(listed[0]["unsubscribed_at"], int) and listed[0]["person_id"]
    # The survey that was waiting for its delay is cancelled with the unsubscribe.
    assert count(app, SurveyRequest, SurveyRequest.status == "scheduled") == 0
    assert count(app, SurveyRequest, SurveyRequest.status == "cancelled") == 1
    with pytest.raises(ResourceValidationError):
        delighted.Unsubscribe.create(person_email="not-an-email")


def test_bounces_list_shows_bounced_addresses(app: Flask, api: str, project: dict[str, Any]) -> None:
    from survey_service.services.suppressions import add_suppression

    with app.app_context():
        add_suppression(project["id"], "gone@example.com", "bounced", "550 no such user")
        add_suppression(project["id"], "left@example.com", "unsubscribed")
    bounces = delighted.Bounce.all()
    assert [b["email"] for b in bounces] == ["gone@example.com"] and "bounced_at" in bounces[0]
    assert bounces[0]["person_id"] is None  # known only as an address


def test_autopilot_memberships_enrol_list_page_and_remove(app: Flask, api: str) -> None:
    from survey_service.models import Enrollment

    assert delighted.AutopilotConfiguration.retrieve("email")["active"] is False
    emails = [f"auto{i}@example.com" for i in range(5)]
    for email in emails:
        made = delighted.AutopilotMembership.forEmail().create(person_email=email, properties={"plan": "pro"})
        assert made["person"]["email"] == email and made["person"]["properties"] == {"plan": "pro"}
        assert isinstance(made["next_survey_request"]["survey_scheduled_at"], int)
    config = delighted.AutopilotConfiguration.retrieve("email")
    assert config["active"] is True and config["frequency"] == 90 * 86400
    members = delighted.AutopilotMembership.forEmail().list(per_page=2)
    assert [m["person"]["email"] for m in members.auto_paging_iter()] == emails
    removed = delighted.AutopilotMembership.forEmail().delete(person_email=emails[0])
    assert removed["person"]["email"] == emails[0]
    assert count(app, Enrollment, Enrollment.active.is_(True)) == 4
    with pytest.raises(GeneralAPIError):
        delighted.AutopilotMembership.forEmail().delete(person_email=emails[0])


def test_unsubscribes_until_includes_its_whole_second(app: Flask, api: str) -> None:
    delighted.Unsubscribe.create(person_email="leaver@example.com")
    [row] = delighted.Unsubscribe.all()
    stamp = row["unsubscribed_at"]
    assert [u["email"] for u in delighted.Unsubscribe.all(until=stamp)] == ["leaver@example.com"]
    assert [u["email"] for u in delighted.Unsubscribe.all(since=stamp)] == ["leaver@example.com"]
    assert delighted.Unsubscribe.all(since=stamp + 1) == []
    assert delighted.Unsubscribe.all(until=stamp - 1) == []


def test_survey_response_without_properties_has_null_person_properties(api: str) -> None:
    person = delighted.Person.create(email="plain@example.com", send=False)
    created = delighted.SurveyResponse.create(person=person.id, score=8)
    assert created.person_properties is None  # as Delighted answered, not {}
    with_props = delighted.SurveyResponse.create(person=person.id, score=9, person_properties={"plan": "pro"})
    assert with_props.person_properties == {"plan": "pro"}


def test_autopilot_membership_add_answers_properties_and_remove_by_phone(app: Flask, api: str) -> None:
    delighted.Person.create(email="ph@example.com", phone_number="+17132746524", send=False)
    made = delighted.AutopilotMembership.forEmail().create(
        person_email="ph@example.com", properties={"Purchase Experience": "Mobile App"}
    )
    assert made["person"]["email"] == "ph@example.com"
    assert made["properties"] == {"purchase_experience": "Mobile App"}
    members = delighted.AutopilotMembership.forEmail().list(person_phone_number="+17132746524")
    assert [m["person"]["email"] for m in members.auto_paging_iter()] == ["ph@example.com"]
    with pytest.raises(ResourceValidationError):  # Delighted required exactly one identifier
        delighted.AutopilotMembership.forEmail().delete(
            person_email="ph@example.com", person_id=made["person"]["id"]
        )
    removed = delighted.AutopilotMembership.forEmail().delete(person_phone_number="+17132746524")
    assert removed["person"]["email"] == "ph@example.com"

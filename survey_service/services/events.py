"""Lifecycle events: recorded once by their client id, and turned into scheduled requests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select

from survey_service.core import clock
from survey_service.core.inserts import (
    insert_pair_unless_taken,
    insert_trio_unless_taken,
    insert_unless_taken,
)
from survey_service.errors import ApiError
from survey_service.extensions import db
from survey_service.models import Event, Person, Project, SurveyRequest
from survey_service.services import outbox, triggers
from survey_service.services.people import names_person, new_person_values, upsert_person
from survey_service.services.projects import ProjectRef
from survey_service.services.surveying import cancel_pending, new_request_values, schedule_survey
from survey_service.services.tx import commit_with_retry, conflict

CANCELLING_EVENTS = frozenset({"cancelled"})


@dataclass
class EventOutcome:
    """The stored event, whether it was a repeat, and the requests it scheduled."""

    event: Event
    duplicate: bool
    requests: list[SurveyRequest] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)


def record_event(
    project: Project | ProjectRef,
    external_id: str,
    event_type: str,
    person_data: dict[str, Any],
    *,
    occurred_at: datetime | None = None,
    properties: dict[str, Any] | None = None,
    now: datetime | None = None,
    also: Callable[[EventOutcome], None] = lambda outcome: None,
) -> EventOutcome:
    """Store an event and the requests its rules schedule in one transaction, then enqueue them.

    The same external id twice is a no-op answered as a duplicate: never a second send. `also` runs in the
    same transaction with the outcome (an event source writes its delivery log there).
    """
    if event_type not in triggers.BUILTIN_EVENT_TYPES and not project.allow_custom_events:
        raise ApiError(
            422,
            "unknown_event_type",
            "Custom event types are not enabled for this project.",
            {"type": [f"Use one of: {', '.join(sorted(triggers.BUILTIN_EVENT_TYPES))}."]},
        )
    now = now or clock.now()
    project_id = project.id

    def work() -> EventOutcome:
        # The common case, a new event, is written without a look first: a repeat finds its id taken.
        try:
            written = _write_event(
                project_id, external_id, event_type, person_data, occurred_at or now, properties or {}, now
            )
        except ApiError as refused:
            # A repeat is a duplicate even when its person could no longer be written (an email taken since).
            return _repeat(project_id, external_id, also, missing=refused)
        if written is None:
            # Taken, then gone before the look-up (its person or project erased): a race to retry.
            return _repeat(project_id, external_id, also, missing=conflict())
        event, person, created, asked = written
        outcome = EventOutcome(event, duplicate=False)
        if asked is not None:
            outcome.requests = [asked]  # written with the person and the event (_one_ask)
        else:
            if event_type in CANCELLING_EVENTS:
                cancel_pending(project_id, person.id, reason="churned")
            _schedule(outcome, person, created, now)
        also(outcome)
        return outcome

    outcome = commit_with_retry(work)
    if outcome.requests:
        # Due now: one wake-up for every due request instead of a job each (outbox.wake_senders).
        outbox.enqueue_requests(outcome.requests, wake=True)
    return outcome


def _write_event(
    project_id: int,
    external_id: str,
    event_type: str,
    person_data: dict[str, Any],
    occurred_at: datetime,
    properties: dict[str, Any],
    now: datetime,
) -> tuple[Event, Person, bool, SurveyRequest | None] | None:
    """Upsert the person and insert the event (`INSERT … ON CONFLICT DO NOTHING`, built once): the event, its
    person, whether the person is new, and the request the event's one rule asked of someone new when it was
    written along (else None: the caller schedules); None when the project has the event's id already.

    Someone new and their event are one statement on PostgreSQL (core.inserts.insert_pair_unless_taken),
    with the ask of the event's rule when _one_ask can plan it before the person has an id
    (insert_trio_unless_taken); when a key of the person or the event's id is taken, the long way:
    upsert_person, then the event.
    """
    event_values = {
        "project_id": project_id,
        "external_id": external_id,
        "type": event_type,
        "occurred_at": occurred_at,
        "properties": properties,
        "received_at": clock.now(),
    }
    if names_person(person_data):
        person_values = new_person_values(project_id, person_data)
        ask = _one_ask(project_id, event_type, person_values, occurred_at, properties, now)
        if ask is not None:
            trio = insert_trio_unless_taken(
                Person, person_values, Event, event_values, "person_id",
                SurveyRequest, ask, ("person_id", "event_id"),
            )  # fmt: skip
            if trio is not None:
                return trio[1], trio[0], True, trio[2]
        else:
            pair = insert_pair_unless_taken(Person, person_values, Event, event_values, "person_id")
            if pair is not None:
                return pair[1], pair[0], True, None
    person, created = upsert_person(project_id, person_data, new_first=False)
    event = insert_unless_taken(Event, {**event_values, "person_id": person.id})
    return None if event is None else (event, person, created, None)


def _one_ask(
    project_id: int,
    event_type: str,
    person_values: dict[str, Any],
    occurred_at: datetime,
    properties: dict[str, Any],
    now: datetime,
) -> dict[str, Any] | None:
    """The new request (every column but its person and event) that _schedule would make for someone new
    with person_values, when that can be known before the person is written; else None, and _schedule
    decides as ever.

    Known before: the event type has exactly one enabled rule, sampling all (a sample reads the person's
    id), whose conditions hold, whose channel can reach the person and whose send time the event gives. A
    new person has nothing to cancel, supersede or tire of (schedule_survey's new_person).
    """
    if event_type in CANCELLING_EVENTS:
        return None
    rules = triggers.matching_rules(project_id, event_type)
    if len(rules) != 1:
        return None
    [rule] = rules
    person_properties = person_values["properties"] or {}
    if (
        rule.sample_percent < 100
        or (rule.channel == "email" and not person_values["email"])
        or not triggers.conditions_hold(rule, person_properties, properties)
    ):
        return None
    due = triggers.send_time(rule, person_values["time_zone"], occurred_at, properties)
    if due is None:
        return None
    try:
        return new_request_values(
            project_id,
            channel=rule.channel,
            send_at=max(due, now),
            survey_id=rule.survey_id,
            trigger_id=rule.id,
            enrollment_id=None,
            enqueued_at=now if rule.channel == "email" else None,
            reminders=rule.reminders,
        )
    except LookupError:  # the rule's survey is gone: schedule_survey says so the usual way
        return None


def _repeat(
    project_id: int, external_id: str, also: Callable[[EventOutcome], None], *, missing: Exception
) -> EventOutcome:
    """The outcome of a repeat, in a transaction rolled back to write nothing of it (its person's changes
    neither); raises `missing` when the project has no such event after all."""
    db.session.rollback()
    existing = db.session.scalar(
        select(Event).where(Event.project_id == project_id, Event.external_id == external_id)
    )
    if existing is None:
        raise missing
    repeat = EventOutcome(existing, duplicate=True)
    also(repeat)
    return repeat


def _schedule(outcome: EventOutcome, person: Person, created: bool, now: datetime) -> None:
    """Schedule what the event's enabled rules ask of its person, noting in outcome why any rule did not."""
    event = outcome.event
    for rule in triggers.matching_rules(event.project_id, event.type):
        if not triggers.conditions_hold(rule, person.properties or {}, event.properties):
            outcome.skipped.append({"trigger_id": rule.id, "reason": "conditions"})
            continue
        if not triggers.in_sample(rule.id, person.id, rule.sample_percent):
            outcome.skipped.append({"trigger_id": rule.id, "reason": "sampling"})
            continue
        due = triggers.send_time(rule, person.time_zone, event.occurred_at, event.properties)
        if due is None:
            outcome.skipped.append({"trigger_id": rule.id, "reason": f"missing_{rule.relative_to}"})
            continue
        scheduled = schedule_survey(
            event.project_id,
            person.id,
            channel=rule.channel,
            send_at=due,
            survey_id=rule.survey_id,
            trigger_id=rule.id,
            event_id=event.id,
            now=now,
            # Only the first rule may skip the checks: a second one must supersede the first's request.
            new_person=created and not outcome.requests,
            # Enqueued right after the commit: stamped now, saving a second commit.
            enqueued_at=now if rule.channel == "email" else None,
            reminders=rule.reminders,
        )
        if scheduled.request is None:
            outcome.skipped.append({"trigger_id": rule.id, "reason": scheduled.skipped_reason})
        else:
            # The newest rule wins (it superseded any earlier one for this person).
            outcome.requests = [scheduled.request]

"""The domain operations behind the Delighted-compatible API, on top of the core services."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import Select, and_, func, select, update

from survey_service.core import clock, cursors, nps
from survey_service.errors import ApiError
from survey_service.extensions import db
from survey_service.models import (
    WAITING_STATUSES,
    EmailSuppression,
    Enrollment,
    Person,
    Project,
    RequestStatus,
    Response,
    Survey,
    SurveyRequest,
)
from survey_service.reporting.reports import nps_report
from survey_service.services import outbox, projects, surveying
from survey_service.services.people import upsert_person
from survey_service.services.privacy import erase_person
from survey_service.services.tx import commit_with_retry

ONE_SECOND = timedelta(seconds=1)


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} not found.")


def find_person(project_id: int, *, email: str | None = None, phone: str | None = None) -> Person | None:
    """The project's person with this email, else with this phone number."""
    if email:
        found = db.session.scalar(
            select(Person).where(Person.project_id == project_id, Person.email == email)
        )
        if found is not None:
            return found
    if phone:
        return db.session.scalar(
            select(Person).where(Person.project_id == project_id, Person.phone_number == phone)
        )
    return None


def person_by_identifier(project_id: int, identifier: str) -> Person | None:
    """Resolve Delighted's person identifiers: `123`, `email:a@b.co` or `phone_number:+1…`."""
    kind, sep, value = identifier.partition(":")
    if sep and kind == "email":
        return find_person(project_id, email=value.strip().lower())
    if sep and kind == "phone_number":
        return find_person(project_id, phone=value.strip())
    if identifier.isdigit() and len(identifier) < 19:
        return db.session.scalar(
            select(Person).where(Person.project_id == project_id, Person.id == int(identifier))
        )
    return None


def _claim(project_id: int, person: Person, column: Any, value: str, field: str) -> None:
    """Give the person a unique email/phone, or refuse when someone else has it."""
    holder = db.session.scalar(select(Person.id).where(Person.project_id == project_id, column == value))
    if holder is not None and holder != person.id:
        message = f"{field}: already used by another person."
        raise ApiError(422, "validation_error", message, {field: ["Taken."]})


@dataclass
class SendResult:
    """A person after create/update, and the survey request scheduled for them (if any)."""

    person: Person
    request: SurveyRequest | None = None
    skipped_reason: str | None = None


def send_to_person(project_id: int, data: dict[str, Any]) -> SendResult:
    """Create or update a person (by email, else phone) and schedule a survey unless send is false.

    Scheduling goes through the trigger machinery, so its fatigue rules apply (Delighted's
    throttling); the send is enqueued after the commit.
    """

    def work() -> SendResult:
        existing = find_person(project_id, email=data.get("email"), phone=data.get("phone_number"))
        if existing is None and not data.get("email"):
            raise ApiError(
                422,
                "validation_error",
                "email: required (this service surveys by email; SMS-only people are not supported).",
                {"email": ["Missing data for required field."]},
            )
        core: dict[str, Any] = {"email": existing.email if existing and existing.email else data.get("email")}
        if existing is not None and existing.external_id:
            core["external_id"] = existing.external_id
        for key in ("name", "properties"):
            if key in data:
                core[key] = data[key]
        person, _ = upsert_person(project_id, core)
        new_email = data.get("email_update") or (data.get("email") if existing is not None else None)
        if new_email and new_email != person.email:
            _claim(project_id, person, Person.email, new_email, "email")
            person.email = new_email
        new_phone = data.get("phone_number_update") or data.get("phone_number")
        if new_phone and new_phone != person.phone_number:
            _claim(project_id, person, Person.phone_number, new_phone, "phone_number")
            person.phone_number = new_phone
        if data.get("last_sent_at"):
            # A send made elsewhere: recorded as a sent request so quiet periods see it.
            sent_at = data["last_sent_at"]
            db.session.add(
                SurveyRequest(
                    project_id=project_id,
                    survey_id=projects.default_survey(project_id).id,
                    person_id=person.id,
                    channel="email",
                    status=RequestStatus.SENT,
                    scheduled_at=sent_at,
                    sent_at=sent_at,
                )
            )
        db.session.flush()
        result = SendResult(person)
        if data.get("send", True):
            now = clock.now()
            send_at = now + timedelta(seconds=data.get("delay", 0))
            outcome = surveying.schedule_survey(
                project_id, person.id, channel="email", send_at=send_at, now=now
            )
            result.request, result.skipped_reason = outcome.request, outcome.skipped_reason
        return result

    result = commit_with_retry(work)
    if result.request is not None:
        outbox.enqueue_requests([result.request])
    return result


def list_people(
    project_id: int,
    *,
    per_page: int,
    page_info: str | None,
    since: datetime | None,
    until: datetime | None,
    email: str | None,
    phone: str | None,
) -> tuple[list[Person], str | None]:
    """One page of people, oldest first, and the page_info of the next page (None on the last)."""
    query = select(Person).where(Person.project_id == project_id)
    if since:
        query = query.where(Person.created_at >= since)
    if until:
        query = query.where(Person.created_at < until + ONE_SECOND)
    if email:
        query = query.where(Person.email == email)
    if phone:
        query = query.where(Person.phone_number == phone)
    return cursors.page(
        query,
        [Person.id],
        scope=f"delighted-people:{project_id}",
        limit=per_page,
        cursor=page_info,
        descending=False,
        field="page_info",
    )


@dataclass
class Activity:
    """What Delighted showed per person: last send, last answer, next scheduled send."""

    last_sent_at: datetime | None = None
    last_responded_at: datetime | None = None
    next_survey_scheduled_at: datetime | None = None


def activity(project_id: int, person_ids: list[int]) -> dict[int, Activity]:
    """Sends, answers and schedules of these people, in two grouped queries."""
    found: dict[int, Activity] = {pid: Activity() for pid in person_ids}
    if not person_ids:
        return found
    requests = db.session.execute(
        select(
            SurveyRequest.person_id,
            func.max(SurveyRequest.sent_at),
            func.min(SurveyRequest.scheduled_at).filter(SurveyRequest.status.in_(WAITING_STATUSES)),
        )
        .where(SurveyRequest.project_id == project_id, SurveyRequest.person_id.in_(person_ids))
        .group_by(SurveyRequest.person_id)
    ).all()
    for person_id, sent, scheduled in requests:
        found[person_id].last_sent_at, found[person_id].next_survey_scheduled_at = sent, scheduled
    answers = db.session.execute(
        select(Response.person_id, func.max(Response.created_at))
        .where(Response.project_id == project_id, Response.person_id.in_(person_ids))
        .group_by(Response.person_id)
    ).all()
    for person_id, answered in answers:
        found[person_id].last_responded_at = answered
    return found


def activity_of(project_id: int, person_id: int) -> Activity:
    """One person's sends, answers and schedule (see `activity`)."""
    return activity(project_id, [person_id])[person_id]


def cancel_pending(project_id: int, person: Person) -> int:
    """Cancel the person's scheduled sends (the trigger machinery's rule); returns how many."""
    count = surveying.cancel_pending(project_id, person.id, reason="api")
    db.session.commit()
    return count


def delete_person(project_id: int, person: Person) -> None:
    """Erase the person with the one eraser the server API uses (rows, rollups, suppressions, Redis)."""
    erase_person(project_id, person.id)


def get_response(project_id: int, response_id: int) -> Response:
    """The project's response with this id, or 404."""
    found = db.session.scalar(
        select(Response).where(Response.project_id == project_id, Response.id == response_id)
    )
    if found is None:
        raise not_found("Survey response")
    return found


@dataclass
class ResponseFilters:
    """The list filters of GET /v1/survey_responses."""

    since: datetime | None = None
    until: datetime | None = None
    updated_since: datetime | None = None
    updated_until: datetime | None = None
    person_id: int | None = None
    person_email: str | None = None
    order: str = "asc"


def _filtered(project_id: int, f: ResponseFilters) -> Select[Any]:
    query = select(Response).where(Response.project_id == project_id)
    if f.since:
        query = query.where(Response.created_at >= f.since)
    if f.until:
        query = query.where(Response.created_at < f.until + ONE_SECOND)
    if f.updated_since:
        query = query.where(Response.updated_at >= f.updated_since)
    if f.updated_until:
        query = query.where(Response.updated_at < f.updated_until + ONE_SECOND)
    if f.person_id is not None:
        query = query.where(Response.person_id == f.person_id)
    if f.person_email:
        query = query.where(
            Response.person_id.in_(
                select(Person.id).where(Person.project_id == project_id, Person.email == f.person_email)
            )
        )
    direction, _, field = f.order.partition(":")
    column = Response.updated_at if field == "updated_at" else Response.created_at
    if direction == "desc":
        return query.order_by(column.desc(), Response.id.desc())
    return query.order_by(column, Response.id)


def list_responses(project_id: int, filters: ResponseFilters, *, page: int, per_page: int) -> list[Response]:
    """One page (1-based) of the project's responses in the asked order."""
    query = _filtered(project_id, filters).offset((page - 1) * per_page).limit(per_page)
    return list(db.session.scalars(query))


def survey_kinds(survey_ids: set[int]) -> dict[int, str]:
    """The kind (nps, csat, ces) of each survey."""
    if not survey_ids:
        return {}
    return dict(db.session.execute(select(Survey.id, Survey.kind).where(Survey.id.in_(survey_ids))).all())


def update_response(
    project_id: int,
    response_id: int,
    *,
    score: int | None,
    comment: Any,
    person_properties: dict[str, Any] | None,
    person_id: int | None,
) -> Response:
    """Change a response's score, comment or frozen properties (the person cannot change)."""
    response = get_response(project_id, response_id)
    if person_id is not None and person_id != response.person_id:
        message = "person: a response cannot move to another person."
        raise ApiError(422, "validation_error", message, {"person": ["Cannot change."]})
    if score is not None:
        response.score, response.category = score, nps.category_for(score)
    if comment is not ...:
        response.comment = comment
    if person_properties is not None:
        response.properties = dict(person_properties)
    response.updated_at = clock.now()
    db.session.commit()
    return response


def _half_up(value: Decimal) -> int:
    """Round half away from zero, as Delighted's dashboard did (51.5 -> 52, -51.5 -> -52)."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def metrics(project_id: int, since: datetime | None, until: datetime | None) -> dict[str, Any]:
    """Delighted's core metrics, from the counts of the core NPS report (so both always agree)."""
    overall = nps_report(
        project_id, since=since, until=until + ONE_SECOND if until else None, interval="month"
    )["overall"]
    n = overall["responses"]
    counts = {
        "promoter": overall["promoters"],
        "passive": overall["passives"],
        "detractor": overall["detractors"],
    }

    def percent(part: int) -> int | None:
        return _half_up(Decimal(part * 100) / Decimal(n)) if n else None

    result: dict[str, Any] = {
        "nps": percent(counts["promoter"] - counts["detractor"]),
    }
    for name, count in counts.items():
        result[f"{name}_count"] = count
        result[f"{name}_percent"] = percent(count)
    result["response_count"] = n
    return result


def suppressions(
    project_id: int,
    reason: str,
    since: datetime | None,
    until: datetime | None,
    *,
    page: int,
    per_page: int,
) -> list[tuple[EmailSuppression, Person | None]]:
    """One page of unsubscribes or bounces, oldest first, with the person of that address if known."""
    query = (
        select(EmailSuppression, Person)
        .outerjoin(Person, and_(Person.project_id == project_id, Person.email == EmailSuppression.email))
        .where(
            EmailSuppression.project_id == project_id,
            EmailSuppression.reason == reason,
            EmailSuppression.email.is_not(None),  # erased people's rows hold no address to list
        )
    )
    if since:
        query = query.where(EmailSuppression.created_at >= since)
    if until:
        query = query.where(EmailSuppression.created_at < until + ONE_SECOND)
    query = query.order_by(EmailSuppression.id).offset((page - 1) * per_page).limit(per_page)
    return [(row, person) for row, person in db.session.execute(query).all()]


def autopilot_interval_days(project: Project) -> int:
    """Autopilot asks each member once per quiet period (90 days by default)."""
    return max(project.quiet_period_days, 1)


def autopilot_state(project_id: int) -> tuple[datetime | None, bool]:
    """When the first email enrolment was made, and whether any is active."""
    first, active = db.session.execute(
        select(func.min(Enrollment.created_at), func.count().filter(Enrollment.active.is_(True))).where(
            Enrollment.project_id == project_id, Enrollment.channel == "email"
        )
    ).one()
    return first, bool(active)


def list_memberships(
    project_id: int,
    *,
    per_page: int,
    page_info: str | None,
    email: str | None,
    person_id: int | None,
    phone: str | None = None,
) -> tuple[list[tuple[Enrollment, Person]], str | None]:
    """Active email enrolments, oldest first, with a cursor for the next page."""
    query = (
        select(Enrollment, Person)
        .join(Person, Person.id == Enrollment.person_id)
        .where(
            Enrollment.project_id == project_id,
            Enrollment.channel == "email",
            Enrollment.active.is_(True),
        )
    )
    if email:
        query = query.where(Person.email == email)
    if person_id:
        query = query.where(Person.id == person_id)
    if phone:
        query = query.where(Person.phone_number == phone)
    rows, next_info = cursors.page(
        query,
        [Enrollment.id],
        scope=f"delighted-autopilot:{project_id}",
        limit=per_page,
        cursor=page_info,
        descending=False,
        scalars=False,
        key_of=lambda row: [row[0].id],
        field="page_info",
    )
    return [(e, p) for e, p in rows], next_info


def leave_autopilot(project_id: int, person_id: int) -> bool:
    """End a person's email enrolments; False when they had none."""
    result = db.session.execute(
        update(Enrollment)
        .where(
            Enrollment.project_id == project_id,
            Enrollment.person_id == person_id,
            Enrollment.channel == "email",
            Enrollment.active.is_(True),
        )
        .values(active=False)
    )
    db.session.commit()
    return bool(result.rowcount)  # type: ignore[attr-defined]

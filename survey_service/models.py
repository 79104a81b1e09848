"""Typed SQLAlchemy models; integrity rules live in the database as checks and unique keys."""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy import false as sa_false
from sqlalchemy import true as sa_true
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from survey_service.core import clock
from survey_service.extensions import Base, db

if TYPE_CHECKING:  # mypy cannot see through Flask-SQLAlchemy's generated model class
    Model = Base
else:
    Model = db.Model

JSONType = JSON().with_variant(JSONB(), "postgresql")

CHANNELS = ("api", "email", "in_app", "link", "import")
SURVEY_KINDS = ("nps", "csat", "ces")
FOLLOWUP_STATUSES = ("new", "contacted", "resolved")


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(str(v)) for v in values)})"


class Project(Model):
    """A tenant: one product with its own keys, people, surveys and responses."""

    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    secret_key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    secret_key_hint: Mapped[str] = mapped_column(String(16))
    public_key: Mapped[str] = mapped_column(String(64), unique=True)
    identity_secret_encrypted: Mapped[str] = mapped_column(Text)
    # After a rotation with an overlap, the old key and identity secret keep working until these instants.
    previous_secret_key_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    previous_secret_key_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    previous_identity_secret_encrypted: Mapped[str | None] = mapped_column(Text)
    previous_identity_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    require_identity_verification: Mapped[bool] = mapped_column(Boolean, default=True)
    quiet_period_days: Mapped[int] = mapped_column(Integer, default=90)
    allow_custom_events: Mapped[bool] = mapped_column(Boolean, default=True, server_default=sa_true())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)

    __table_args__ = (CheckConstraint("quiet_period_days >= 0", name="quiet_period_non_negative"),)


class Person(Model):
    """Someone who can be surveyed, identified by external id and/or email within a project."""

    __tablename__ = "people"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    external_id: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320))
    # The email came from a browser (the widget), unconfirmed: the server's own use of the address wins.
    email_from_browser: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())
    name: Mapped[str | None] = mapped_column(String(255))
    locale: Mapped[str | None] = mapped_column(String(35))
    time_zone: Mapped[str | None] = mapped_column(String(64))
    # Set by the product's server (API, imports): trusted, and the only properties anything routes on.
    properties: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # Sent by a browser through the widget: only keys the server never set (people.browser_properties_after).
    browser_properties: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict, server_default="{}")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now, onupdate=clock.now)
    # E.164, as Delighted's API identifies people by it (delighted/ compat layer).
    phone_number: Mapped[str | None] = mapped_column(String(32))
    # When the widget last identified this person (kept to the hour, services/reminders: in-app fallback).
    widget_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("project_id", "external_id", name="uq_people_project_external_id"),
        UniqueConstraint("project_id", "email", name="uq_people_project_email"),
        CheckConstraint("external_id IS NOT NULL OR email IS NOT NULL", name="person_identified"),
    )


class Survey(Model):
    """A question asked of people: NPS today, CSAT and CES through the same table later."""

    __tablename__ = "surveys"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(8), default="nps")
    name: Mapped[str] = mapped_column(String(200))
    product_name: Mapped[str] = mapped_column(String(200))
    question: Mapped[str] = mapped_column(Text)
    scale_min: Mapped[int] = mapped_column(SmallInteger, default=0)
    scale_max: Mapped[int] = mapped_column(SmallInteger, default=10)
    # {"detractor": "...", "passive": "...", "promoter": "..."}: the follow-up per category.
    followups: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)
    brand_color: Mapped[str] = mapped_column(String(7), default="#4f46e5")
    locale: Mapped[str] = mapped_column(String(35), default="en")
    link_expiry_days: Mapped[int] = mapped_column(Integer, default=30)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    is_open: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)
    # The reminder plan of this survey's email asks (services/reminders.py); None: no reminders.
    reminders: Mapped[dict[str, Any] | None] = mapped_column(JSONType)

    __table_args__ = (
        CheckConstraint(_in("kind", SURVEY_KINDS), name="survey_kind_known"),
        CheckConstraint("scale_min < scale_max", name="survey_scale_ordered"),
        CheckConstraint("link_expiry_days > 0", name="survey_expiry_positive"),
    )

    def question_text(self) -> str:
        """The question with the product name filled in."""
        return self.question.replace("{product}", self.product_name)


class RequestStatus(StrEnum):
    """Where a survey request stands; the column's CHECK constraint allows exactly these.

    Waiting: `pending` (asked through the API) or `scheduled` (by a trigger, an enrolment, a delay)
    → `sending` (claimed by the email job) → `sent` → (in-app) `responded` or `dismissed`.
    Final without an ask: `cancelled`, `superseded` (a newer ask), `skipped` (fatigue rules at send
    time), `suppressed` (the address unsubscribed or bounced), `expired`; not delivered: `failed`,
    `bounced`.
    """

    PENDING = "pending"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    SENT = "sent"
    RESPONDED = "responded"
    DISMISSED = "dismissed"
    CANCELLED = "cancelled"
    SUPERSEDED = "superseded"
    SKIPPED = "skipped"
    SUPPRESSED = "suppressed"
    EXPIRED = "expired"
    FAILED = "failed"
    BOUNCED = "bounced"


# Requests still waiting to go out (the outbox's, the email job's claimable ones, the widget's due ones).
WAITING_STATUSES = (RequestStatus.PENDING, RequestStatus.SCHEDULED)
# A request with sent_at set counts as "asked" for the quiet period (an email went out, the widget was
# shown, even if dismissed) unless it ended in one of these: it never reached the person.
NEVER_REACHED_STATUSES = (RequestStatus.FAILED, RequestStatus.BOUNCED)
# What cancelling a person's pending asks cancels: asks scheduled for later (by a trigger, an
# enrolment, a delay); an API "pending" send is already handed to its job.
CANCELLABLE_STATUSES = (RequestStatus.SCHEDULED,)
# An in-app token answers its request only in these states (and before expires_at).
ANSWERABLE_STATUSES = (RequestStatus.SENT, RequestStatus.RESPONDED)


class SurveyRequest(Model):
    """One ask of one person for one survey through one channel; answered by at most one response."""

    __tablename__ = "survey_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    survey_id: Mapped[int] = mapped_column(ForeignKey("surveys.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), default=RequestStatus.PENDING)  # a RequestStatus
    trigger_id: Mapped[int | None] = mapped_column(ForeignKey("trigger_rules.id", ondelete="SET NULL"))
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id", ondelete="SET NULL"))
    enrollment_id: Mapped[int | None] = mapped_column(ForeignKey("enrollments.id", ondelete="SET NULL"))
    status_reason: Mapped[str | None] = mapped_column(String(32))
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    clicked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)
    # Email channel: accepted by the SMTP server, opened (optional pixel), the Message-ID sent, the
    # last error, and when a person first interacted with the landing page (never undone).
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    email_message_id: Mapped[str | None] = mapped_column(String(255))
    email_error: Mapped[str | None] = mapped_column(String(500))
    email_interacted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Bulk sends: the campaign a request belongs to (a name the operator chose), and how many times
    # its email was tried and failed temporarily (a batch retries it until EMAIL_RETRY_INTERVALS run out).
    campaign: Mapped[str | None] = mapped_column(String(64))
    send_attempts: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    # Reminders (services/reminders.py): a reminder is a request of its own pointing at the first ask
    # (`reminder_of_id`), `step` 1..3 (0 for the first ask), sent with the first ask's links. The first
    # ask keeps its reminder plan (resolved when it was made) and when its next reminder falls due.
    reminder_of_id: Mapped[int | None] = mapped_column(ForeignKey("survey_requests.id", ondelete="CASCADE"))
    step: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    reminder_plan: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    next_reminder_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        CheckConstraint(_in("channel", CHANNELS), name="request_channel_known"),
        CheckConstraint(_in("status", tuple(RequestStatus)), name="request_status_known"),
        Index("ix_survey_requests_project_person", "project_id", "person_id"),
        # At most one queued request per person: a newer trigger supersedes the older one.
        Index(
            "uq_survey_requests_one_scheduled",
            "person_id",
            unique=True,
            sqlite_where=text("status = 'scheduled'"),
            postgresql_where=text("status = 'scheduled'"),
        ),
        # The outbox relay's scan: scheduled requests by due time.
        Index("ix_survey_requests_status_due", "status", "scheduled_at"),
        # A campaign's progress (campaign-status, the dashboard): its requests counted by status.
        Index("ix_survey_requests_project_campaign", "project_id", "campaign", "status"),
        # One request per reminder step and channel of a first ask ("both": an email and an in-app ask).
        UniqueConstraint("reminder_of_id", "step", "channel", name="uq_survey_requests_reminder_step"),
        CheckConstraint("step BETWEEN 0 AND 3", name="request_step_range"),
        CheckConstraint("(reminder_of_id IS NULL) = (step = 0)", name="request_step_matches_reminder"),
        # The reminder scheduler's scan: first asks whose next reminder is due.
        Index(
            "ix_survey_requests_next_reminder",
            "next_reminder_at",
            sqlite_where=text("next_reminder_at IS NOT NULL"),
            postgresql_where=text("next_reminder_at IS NOT NULL"),
        ),
    )


class Response(Model):
    """A score with its comment and the person's properties frozen as they were when answering."""

    __tablename__ = "responses"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    survey_id: Mapped[int] = mapped_column(ForeignKey("surveys.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    request_id: Mapped[int | None] = mapped_column(
        ForeignKey("survey_requests.id", ondelete="SET NULL"), unique=True
    )
    score: Mapped[int] = mapped_column(SmallInteger)
    category: Mapped[str | None] = mapped_column(String(10))
    comment: Mapped[str | None] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(String(8), default="api")
    properties: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # Whether the person agreed to be contacted for a reference; None when the survey did not ask.
    reference_consent: Mapped[bool | None] = mapped_column(Boolean)
    # Close the loop: who follows this answer up, how far they got, what they noted.
    followup_status: Mapped[str] = mapped_column(String(10), default="new", server_default="new")
    followup_owner: Mapped[str | None] = mapped_column(String(255))
    followup_notes: Mapped[str | None] = mapped_column(Text)
    followup_tags: Mapped[list[str]] = mapped_column(JSONType, default=list, server_default="[]")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now, onupdate=clock.now)
    # The id this response had in the system it was imported from (e.g. "delighted:123").
    external_id: Mapped[str | None] = mapped_column(String(255))
    # The promoter loop (services/promoters.py): when the thank-you step offered a review, when the person
    # agreed to leave one (pressed the button), when they first followed a review link. Each set once.
    review_asked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    review_consented_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    review_link_clicked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Answers to a request: the last step that had reached the person when they answered (0: the first
    # ask, k: its k-th reminder, email or in-app); None for answers to no request.
    answered_after_step: Mapped[int | None] = mapped_column(SmallInteger)

    person: Mapped[Person] = relationship(lazy="joined", innerjoin=True)

    __table_args__ = (
        CheckConstraint("score >= 0 AND score <= 10", name="response_score_range"),
        CheckConstraint(_in("channel", CHANNELS), name="response_channel_known"),
        CheckConstraint(_in("followup_status", FOLLOWUP_STATUSES), name="response_followup_status_known"),
        CheckConstraint(
            "category IS NULL"
            " OR (category = 'promoter' AND score >= 9)"
            " OR (category = 'passive' AND score IN (7, 8))"
            " OR (category = 'detractor' AND score <= 6)",
            name="response_category_matches_score",
        ),
        # The report and the listing both scan one project's responses by time.
        Index("ix_responses_project_created", "project_id", "created_at", "category"),
        Index("ix_responses_project_person", "project_id", "person_id"),
        # The theme analysis picks up new and edited comments by their updated_at (themes/service.py).
        Index("ix_responses_updated", "updated_at", "id"),
        # The dashboard's promoter-loop counts read only the responses offered a review (few of them).
        Index(
            "ix_responses_review_asked",
            "project_id",
            "created_at",
            postgresql_where=text("review_asked_at IS NOT NULL"),
            sqlite_where=text("review_asked_at IS NOT NULL"),
        ),
    )


class RollupDay(Model):
    """One closed UTC day of a project's responses: whether its per-day counts are current.

    A trigger on `responses` (PostgreSQL) bumps `version` whenever a statement inserts, changes or
    deletes a response of a day before the writer's today. The counts in `response_rollups` are
    current exactly when `built_version = version`; see services/rollups.py.
    """

    __tablename__ = "response_rollup_days"

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    built_version: Mapped[int | None] = mapped_column(BigInteger)
    built_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Properties with too many values that day to be worth counting (their reports scan the day).
    wide_keys: Mapped[list[str]] = mapped_column(JSONType, default=list, server_default="[]")


class ResponseRollup(Model):
    """Counts of one closed day's responses per survey, channel and frozen property value.

    `prop_key` "" holds the day's totals; `prop_value` NULL counts responses whose property is null.
    """

    __tablename__ = "response_rollups"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    survey_id: Mapped[int] = mapped_column(ForeignKey("surveys.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(8))
    prop_key: Mapped[str] = mapped_column(Text)
    prop_value: Mapped[str | None] = mapped_column(Text)
    promoters: Mapped[int] = mapped_column(Integer)
    passives: Mapped[int] = mapped_column(Integer)
    detractors: Mapped[int] = mapped_column(Integer)
    comments: Mapped[int] = mapped_column(Integer)

    # The report reads (project, key, days) and only these columns: an index-only scan on PostgreSQL.
    __table_args__ = (
        Index(
            "ix_response_rollups_key_day",
            "project_id",
            "prop_key",
            "day",
            postgresql_include=[
                "survey_id",
                "channel",
                "prop_value",
                "promoters",
                "passives",
                "detractors",
                "comments",
            ],
        ),
    )


class Event(Model):
    """A lifecycle event a product reported; its client id makes a repeat delivery a no-op."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(64))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    properties: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)

    __table_args__ = (UniqueConstraint("project_id", "external_id", name="uq_events_project_external_id"),)


class TriggerRule(Model):
    """When an event of a type arrives, ask its person a survey through a channel after a delay."""

    __tablename__ = "trigger_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    event_type: Mapped[str] = mapped_column(String(64))
    survey_id: Mapped[int] = mapped_column(ForeignKey("surveys.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(8))
    delay_seconds: Mapped[int] = mapped_column(Integer, default=0)
    # When set, the delay counts from this event property (a date), e.g. renewal_date with -30 days.
    relative_to: Mapped[str | None] = mapped_column(String(64))
    conditions: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    sample_percent: Mapped[int] = mapped_column(SmallInteger, default=100)
    send_window_start: Mapped[int | None] = mapped_column(SmallInteger)
    send_window_end: Mapped[int | None] = mapped_column(SmallInteger)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)
    # The reminder plan of this rule's email asks, over the survey's; None: the survey's.
    reminders: Mapped[dict[str, Any] | None] = mapped_column(JSONType)

    __table_args__ = (
        CheckConstraint("channel IN ('email', 'in_app')", name="trigger_channel_known"),
        CheckConstraint("sample_percent BETWEEN 0 AND 100", name="trigger_sample_range"),
        CheckConstraint(
            "(send_window_start IS NULL) = (send_window_end IS NULL)"
            " AND (send_window_start IS NULL OR (send_window_start BETWEEN 0 AND 23"
            " AND send_window_end BETWEEN 1 AND 24))",
            name="trigger_send_window_hours",
        ),
        Index("ix_trigger_rules_project_event", "project_id", "event_type"),
    )


class Enrollment(Model):
    """A person enrolled in recurring relationship NPS: asked every interval_days."""

    __tablename__ = "enrollments"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    survey_id: Mapped[int] = mapped_column(ForeignKey("surveys.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(8))
    interval_days: Mapped[int] = mapped_column(Integer)
    next_run_at: Mapped[datetime] = mapped_column(UTCDateTime())
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)
    # The reminder plan of this programme's email asks, over the survey's; None: the survey's.
    reminders: Mapped[dict[str, Any] | None] = mapped_column(JSONType)

    __table_args__ = (
        UniqueConstraint("project_id", "person_id", "survey_id", name="uq_enrollments_person_survey"),
        CheckConstraint("interval_days BETWEEN 1 AND 3660", name="enrollment_interval_range"),
        CheckConstraint("channel IN ('email', 'in_app')", name="enrollment_channel_known"),
        Index("ix_enrollments_due", "active", "next_run_at"),
    )


# Imports and the Delighted compat layer look people up by phone and responses by their old id;
# both keys are unique per project (NULLs never collide).
Index("uq_people_project_phone_number", Person.project_id, Person.phone_number, unique=True)
Index("uq_responses_project_external_id", Response.project_id, Response.external_id, unique=True)

SUPPRESSION_REASONS = ("unsubscribed", "bounced")


class EmailSuppression(Model):
    """An address a project must not email again: it unsubscribed or bounced.

    Erasing the person blanks `email` and keeps only `email_hash`, a keyed hash of the address, so the
    address stays suppressed if it comes back (an import) without the row holding it.
    """

    __tablename__ = "email_suppressions"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    email: Mapped[str | None] = mapped_column(String(320))
    email_hash: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)

    __table_args__ = (
        UniqueConstraint("project_id", "email", "reason", name="uq_email_suppressions_project_email_reason"),
        CheckConstraint(_in("reason", SUPPRESSION_REASONS), name="suppression_reason_known"),
        CheckConstraint("email IS NOT NULL OR email_hash IS NOT NULL", name="suppression_names_an_address"),
        Index("ix_email_suppressions_project_email_hash", "project_id", "email_hash"),
    )


WIDGET_POSITIONS = ("bottom-right", "bottom-left", "bottom")


class WidgetSettings(Model):
    """A project's in-app widget rules: the recurring survey, sampling, dismissal cool-down, placement."""

    __tablename__ = "widget_settings"

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    recurring_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    first_survey_after_days: Mapped[int] = mapped_column(Integer, default=14)
    resurvey_every_days: Mapped[int] = mapped_column(Integer, default=90)
    sample_percent: Mapped[int] = mapped_column(SmallInteger, default=100)
    dismiss_cooldown_days: Mapped[int] = mapped_column(Integer, default=30)
    position: Mapped[str] = mapped_column(String(16), default="bottom-right")
    # Person property keys a browser may set through the widget: None = any the server never set, [] = none.
    browser_property_keys: Mapped[list[str] | None] = mapped_column(JSONType)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now, onupdate=clock.now)

    __table_args__ = (
        CheckConstraint("first_survey_after_days >= 0", name="widget_first_after_non_negative"),
        CheckConstraint("resurvey_every_days >= 1", name="widget_resurvey_positive"),
        CheckConstraint("sample_percent >= 0 AND sample_percent <= 100", name="widget_sample_percent"),
        CheckConstraint("dismiss_cooldown_days >= 0", name="widget_cooldown_non_negative"),
        CheckConstraint(_in("position", WIDGET_POSITIONS), name="widget_position_known"),
    )


class WidgetDismissal(Model):
    """A person closed the in-app survey without answering: kept for the cool-down and for reports."""

    __tablename__ = "widget_dismissals"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    request_id: Mapped[int | None] = mapped_column(ForeignKey("survey_requests.id", ondelete="SET NULL"))
    dismissed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)

    __table_args__ = (
        Index("ix_widget_dismissals_project_person", "project_id", "person_id", "dismissed_at"),
        Index("ix_widget_dismissals_project_time", "project_id", "dismissed_at"),
    )


DASHBOARD_ROLES = ("admin", "viewer")


class DashboardUser(Model):
    """A team member who signs in to one project's dashboard; admins also manage users."""

    __tablename__ = "dashboard_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    # Unique per project, not globally: a global unique would tell one tenant another's users exist.
    email: Mapped[str] = mapped_column(String(320), index=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(8), default="viewer")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Sessions carry the version they were signed in at; sign-out and a new password bump it.
    session_version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    __table_args__ = (
        CheckConstraint(_in("role", DASHBOARD_ROLES), name="dashboard_user_role_known"),
        UniqueConstraint("project_id", "email", name="uq_dashboard_users_project_email"),
    )


WEBHOOK_EVENTS = ("response.created", "response.updated")
DELIVERY_STATUSES = ("pending", "retrying", "delivered", "logged", "failed")


class AlertRule(Model):
    """A project's rule: when a response matches, POST a signed webhook to target_url."""

    __tablename__ = "alert_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    target_url: Mapped[str] = mapped_column(String(2000))
    # "webhook": our signed JSON; "slack": Slack's incoming-webhook message format ({"text": …});
    # "delighted": Delighted's webhook body and signature, so existing receivers keep working.
    format: Mapped[str] = mapped_column(String(16), default="webhook", server_default="webhook")
    secret_encrypted: Mapped[str] = mapped_column(Text)
    # Conditions (all given ones must hold): score at most max_score, category in categories, a comment.
    max_score: Mapped[int | None] = mapped_column(SmallInteger)
    categories: Mapped[list[str]] = mapped_column(JSONType, default=list)
    require_comment: Mapped[bool] = mapped_column(Boolean, default=False)
    events: Mapped[list[str]] = mapped_column(JSONType, default=list)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)

    __table_args__ = (
        CheckConstraint(
            "max_score IS NULL OR (max_score >= 0 AND max_score <= 10)", name="alert_max_score_range"
        ),
    )


class WebhookDelivery(Model):
    """One webhook to send for one rule and one response event; the database is the source of truth."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("alert_rules.id", ondelete="CASCADE"), index=True)
    response_id: Mapped[int] = mapped_column(ForeignKey("responses.id", ondelete="CASCADE"), index=True)
    event: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        CheckConstraint(_in("event", WEBHOOK_EVENTS), name="delivery_event_known"),
        CheckConstraint(_in("status", DELIVERY_STATUSES), name="delivery_status_known"),
    )


SOURCE_KINDS = ("segment", "stripe", "zendesk", "intercom", "freshdesk", "hubspot", "chargebee")
SOURCE_OUTCOMES = ("accepted", "duplicate", "ignored", "refused")


class EventSource(Model):
    """A provider's webhook feeding a project's events and people, reached at its unguessable URL token."""

    __tablename__ = "event_sources"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str | None] = mapped_column(String(200))
    # The URL's last segment; the only thing that names the source to the provider.
    token: Mapped[str] = mapped_column(String(64), unique=True)
    # Encrypted under SECRET_KEY (purpose "source-secret"): HMAC schemes need the plain secret to verify.
    secret_encrypted: Mapped[str] = mapped_column(Text)
    # After a rotation, the previous secret keeps verifying until previous_secret_expires_at.
    previous_secret_encrypted: Mapped[str | None] = mapped_column(Text)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    mapping: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=sa_true())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)
    # Moved at most once a minute (services keep the row cold under a burst of deliveries).
    last_received_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (CheckConstraint(_in("kind", SOURCE_KINDS), name="event_source_kind_known"),)


class SourceDelivery(Model):
    """One delivery to a source and what became of it; the newest few per source are kept (a log)."""

    __tablename__ = "source_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    # No project_id column on purpose: the source names the project, and a refused delivery (anyone may
    # post to a URL) is the only write a stranger can cause, to this bounded log alone.
    source_id: Mapped[int] = mapped_column(ForeignKey("event_sources.id", ondelete="CASCADE"))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)
    outcome: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str | None] = mapped_column(String(300))
    provider_event: Mapped[str | None] = mapped_column(String(100))  # e.g. "invoice.upcoming", "track"
    event_id: Mapped[str | None] = mapped_column(String(255))
    event_type: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        CheckConstraint(_in("outcome", SOURCE_OUTCOMES), name="source_delivery_outcome_known"),
        Index("ix_source_deliveries_source_id_id", "source_id", "id"),
    )


class PromoterLoop(Model):
    """A project's review or referral links offered to promoters after they answer (survey_id NULL: the
    project's default; a survey's own row overrides it)."""

    __tablename__ = "promoter_loops"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    survey_id: Mapped[int | None] = mapped_column(ForeignKey("surveys.id", ondelete="CASCADE"))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # [{"label": "G2", "url": "https://…"}]: the only URLs the review redirect may send a person to.
    targets: Mapped[list[dict[str, str]]] = mapped_column(JSONType, default=list)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now, onupdate=clock.now)

    __table_args__ = (
        UniqueConstraint("project_id", "survey_id", name="uq_promoter_loops_project_survey"),
        # NULLs never collide in a unique key: the project's default row gets its own partial index.
        Index(
            "uq_promoter_loops_project_default",
            "project_id",
            unique=True,
            sqlite_where=text("survey_id IS NULL"),
            postgresql_where=text("survey_id IS NULL"),
        ),
    )


THEME_LANGUAGE_SOURCES = ("detected", "locale", "fallback")
SENTIMENTS = ("positive", "neutral", "negative")


class Theme(Model):
    """A project's theme: a label and the keywords/phrases (matched on word stems) that assign it."""

    __tablename__ = "themes"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(40))
    label: Mapped[str] = mapped_column(String(80))
    keywords: Mapped[list[str]] = mapped_column(JSONType, default=list)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=sa_true())
    builtin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now, onupdate=clock.now)

    __table_args__ = (UniqueConstraint("project_id", "key", name="uq_themes_project_key"),)


class ThemeRules(Model):
    """A project's theme rules version: bumped by every rule change; `applied_version` once re-applied."""

    __tablename__ = "theme_rules"

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    applied_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now, onupdate=clock.now)


class ThemeCursor(Model):
    """How far the relay has analysed new and edited comments (responses.updated_at, then id)."""

    __tablename__ = "theme_cursor"

    name: Mapped[str] = mapped_column(String(16), primary_key=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    response_id: Mapped[int] = mapped_column(BigInteger, default=0)


class ResponseAnalysis(Model):
    """What the text analysis found in one response's comment: language, sentiment, rules version."""

    __tablename__ = "response_analyses"

    response_id: Mapped[int] = mapped_column(ForeignKey("responses.id", ondelete="CASCADE"), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    language: Mapped[str] = mapped_column(String(8))
    # "detected" from the text, else the person's "locale", else the project's "fallback" (English).
    language_source: Mapped[str] = mapped_column(String(8))
    # False when the comment's language is none the stemmers speak (matched as English, counted).
    supported: Mapped[bool] = mapped_column(Boolean, default=True)
    sentiment: Mapped[str] = mapped_column(String(8))
    sentiment_score: Mapped[float] = mapped_column(Float)
    # A hash of the comment analysed, so an edit is re-analysed and a repeat is a no-op.
    comment_hash: Mapped[str] = mapped_column(String(16))
    rules_version: Mapped[int] = mapped_column(Integer)
    analysed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)

    __table_args__ = (
        CheckConstraint(
            _in("language_source", THEME_LANGUAGE_SOURCES), name="analysis_language_source_known"
        ),
        CheckConstraint(_in("sentiment", SENTIMENTS), name="analysis_sentiment_known"),
        Index("ix_response_analyses_project", "project_id", "sentiment"),
    )


class ResponseTheme(Model):
    """A theme assigned to a response (a response may carry several)."""

    __tablename__ = "response_themes"

    response_id: Mapped[int] = mapped_column(ForeignKey("responses.id", ondelete="CASCADE"), primary_key=True)
    theme_id: Mapped[int] = mapped_column(ForeignKey("themes.id", ondelete="CASCADE"), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))

    __table_args__ = (Index("ix_response_themes_theme", "theme_id", "response_id"),)


class ThemeRollup(Model):
    """Per closed day, survey and channel: the responses carrying each theme (theme_id NULL: commented
    responses with no theme). Current exactly when the day's response_rollup_days row is."""

    __tablename__ = "theme_rollups"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    survey_id: Mapped[int] = mapped_column(ForeignKey("surveys.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(8))
    theme_id: Mapped[int | None] = mapped_column(ForeignKey("themes.id", ondelete="CASCADE"))
    promoters: Mapped[int] = mapped_column(Integer)
    passives: Mapped[int] = mapped_column(Integer)
    detractors: Mapped[int] = mapped_column(Integer)

    __table_args__ = (Index("ix_theme_rollups_project_day", "project_id", "day"),)

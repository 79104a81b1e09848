"""Event sources: their settings (the secret-key API) and the receiver that turns a provider's delivery
into the one event and people machinery (services.events.record_event, services.people.upsert_person).

A delivery is verified first (a wrong or missing signature, a stale timestamp: 401, nothing recorded but a
line in the source's log), then read (not the provider's shape: 400), then mapped: each event is recorded
by record_event in its own transaction, with the log line in that same transaction; what the source does
not map is acknowledged and logged as ignored, so the provider does not retry it forever.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import delete, func, or_, select, update

from survey_service.core import clock, instants, keys, request_limits
from survey_service.core.ratelimit import source_retry_after
from survey_service.errors import ApiError
from survey_service.extensions import db
from survey_service.models import EventSource, Project, SourceDelivery
from survey_service.services.events import EventOutcome, record_event
from survey_service.services.people import upsert_person
from survey_service.services.tx import commit_with_retry
from survey_service.sources.base import Delivery, EventItem, Malformed, Parsed
from survey_service.sources.kinds import KINDS

RECEIVER_PREFIX = "/sources/"
MAX_SOURCES = 20
KEEP_DELIVERIES = 100  # log lines kept per source
PRUNE_EVERY = 20  # the log is trimmed when a new line's id is a multiple of this
LAST_RECEIVED_STEP = timedelta(seconds=60)  # last_received_at moves at most this often (a cold row)
DEFAULT_GRACE_HOURS = 24
NO_SECRET_YET = (
    "the source has no signing secret yet: give the provider's with POST /api/v1/sources/<id>/rotate_secret"
)


@dataclass(frozen=True)
class SourceWithSecret:
    """A source just created or rotated, with its plain signing secret: the only time it is shown."""

    source: EventSource
    signing_secret: str


@dataclass
class Receipt:
    """What a delivery became, as the provider is told (200)."""

    accepted: int = 0
    duplicates: int = 0
    ignored: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": True, "accepted": self.accepted, "duplicates": self.duplicates, "ignored": self.ignored}


# --- settings (the project's server, secret key) -------------------------------------------------------


def source_url(source: EventSource) -> str:
    """The public URL the provider posts to."""
    return str(current_app.config["BASE_URL"]).rstrip("/") + RECEIVER_PREFIX + source.token


def _encrypt(secret: str) -> str:
    return keys.encrypt_secret(secret, current_app.config["SECRET_KEY"], purpose=keys.SOURCE_SECRET)


def _decrypt(token: str) -> str:
    cfg = current_app.config
    return keys.decrypt_secret(
        token, cfg["SECRET_KEY"], cfg["SECRET_KEY_FALLBACKS"], purpose=keys.SOURCE_SECRET
    )


def _new_secret(kind: str, given: str | None, *, rotating: bool = False) -> str:
    """The given secret, else a fresh one; a kind whose provider issues it has none until it is given
    (Stripe and Zendesk show it only once the URL is saved there): every delivery is refused meanwhile."""
    if given:
        return given
    if not KINDS[kind].provider_issues_secret:
        return "src_" + secrets.token_urlsafe(32)
    if rotating:
        raise ApiError(
            422,
            "validation_error",
            f"A {kind} source's secret is issued by {kind}: give it.",
            {"signing_secret": ["Required for this kind: paste the secret from the provider's settings."]},
        )
    return ""


def create_source(project: Project, data: dict[str, Any]) -> SourceWithSecret:
    """Create a source with an unguessable URL; its secret is the given one or a fresh one (shown once)."""
    count = db.session.scalar(select(func.count()).where(EventSource.project_id == project.id)) or 0
    if count >= MAX_SOURCES:
        raise ApiError(409, "too_many_sources", f"A project has at most {MAX_SOURCES} event sources.")
    secret = _new_secret(data["kind"], data.get("signing_secret"))
    source = EventSource(
        project_id=project.id,
        kind=data["kind"],
        name=data.get("name"),
        token=secrets.token_urlsafe(32),
        secret_encrypted=_encrypt(secret),
        mapping=data.get("mapping") or {},
        enabled=data.get("enabled", True),
    )
    db.session.add(source)
    db.session.commit()
    return SourceWithSecret(source, secret)


def project_source(project_id: int, source_id: int) -> EventSource:
    """The project's source with this id; another project's id and an unknown one are the same 404."""
    source = db.session.get(EventSource, source_id)
    if source is None or source.project_id != project_id:
        raise ApiError(404, "not_found", "No such event source.")
    return source


def list_sources(project_id: int) -> list[EventSource]:
    """The project's sources, oldest first."""
    return list(
        db.session.scalars(
            select(EventSource).where(EventSource.project_id == project_id).order_by(EventSource.id)
        )
    )


def update_source(project_id: int, source_id: int, data: dict[str, Any]) -> EventSource:
    """Change a source's name, mapping or whether it is enabled; commits."""
    source = project_source(project_id, source_id)
    for name in ("name", "mapping", "enabled"):
        if name in data:
            setattr(source, name, data[name] if name != "mapping" else (data[name] or {}))
    db.session.commit()
    return source


def delete_source(project_id: int, source_id: int) -> None:
    """Delete a source and its log; its URL answers 404 from now on (events it recorded stay)."""
    db.session.delete(project_source(project_id, source_id))
    db.session.commit()


def rotate_secret(
    project_id: int, source_id: int, new_secret: str | None, grace_hours: int = DEFAULT_GRACE_HOURS
) -> SourceWithSecret:
    """Replace the signing secret; the old one still verifies for grace_hours (0: not at all)."""
    source = project_source(project_id, source_id)
    secret = _new_secret(source.kind, new_secret, rotating=True)
    had_secret = bool(_decrypt(source.secret_encrypted))
    source.previous_secret_encrypted = source.secret_encrypted if grace_hours > 0 and had_secret else None
    source.previous_secret_expires_at = (
        clock.now() + timedelta(hours=grace_hours) if source.previous_secret_encrypted else None
    )
    source.secret_encrypted = _encrypt(secret)
    db.session.commit()
    return SourceWithSecret(source, secret)


def recent_deliveries(source_id: int, limit: int = 20) -> list[SourceDelivery]:
    """The source's newest log lines, newest first."""
    return list(
        db.session.scalars(
            select(SourceDelivery)
            .where(SourceDelivery.source_id == source_id)
            .order_by(SourceDelivery.id.desc())
            .limit(limit)
        )
    )


def recent_failures(source_ids: list[int], per_source: int = 5) -> dict[int, list[SourceDelivery]]:
    """Per source, its newest refused or ignored deliveries (for the dashboard)."""
    found: dict[int, list[SourceDelivery]] = {source_id: [] for source_id in source_ids}
    for source_id in source_ids:
        found[source_id] = list(
            db.session.scalars(
                select(SourceDelivery)
                .where(
                    SourceDelivery.source_id == source_id, SourceDelivery.outcome.in_(("refused", "ignored"))
                )
                .order_by(SourceDelivery.id.desc())
                .limit(per_source)
            )
        )
    return found


# --- the receiver (the provider, proven by its signature) ---------------------------------------------


def source_for_token(token: str) -> tuple[EventSource, Project]:
    """The enabled source of a URL token and its project (one query); else 404 (unknown, disabled alike)."""
    row = (
        db.session.execute(
            select(EventSource, Project)
            .join(Project, Project.id == EventSource.project_id)
            .where(EventSource.token == token)
        ).first()
        if len(token) <= 64
        else None
    )
    if row is None or not row[0].enabled:
        raise ApiError(404, "not_found", "No such event source.")
    return row[0], row[1]


def retry_after(source: EventSource) -> int | None:
    """Count a delivery against the source's rate limit; seconds to wait when over, else None."""
    return source_retry_after(source.token)


def _secrets(source: EventSource, now: datetime) -> list[str]:
    """The secrets a delivery may be signed with now: the current one, and the previous one in its grace."""
    found = [_decrypt(source.secret_encrypted)]
    expires = source.previous_secret_expires_at
    if source.previous_secret_encrypted and expires is not None and expires > now:
        found.append(_decrypt(source.previous_secret_encrypted))
    return [secret for secret in found if secret]


def receive(source: EventSource, project: Project, delivery: Delivery) -> Receipt:
    """Verify, read and map one delivery; record what it maps to and log every part of it."""
    kind, mapping, now = KINDS[source.kind], source.mapping or {}, clock.now()
    source_id, project_id = source.id, source.project_id
    # last_received_at moves at most once a LAST_RECEIVED_STEP: most deliveries leave the row alone.
    last = source.last_received_at
    log = _Log(source_id, now, touch=last is None or last < now - LAST_RECEIVED_STEP)
    known = _secrets(source, now)
    refusal = kind.verify(delivery, known, now, mapping) if known else NO_SECRET_YET
    if refusal is not None:
        log.alone([("refused", refusal, None)])
        raise ApiError(
            401, "invalid_signature", "The delivery's signature does not verify.", {"reason": refusal}
        )
    try:
        parsed = kind.parse(request_limits.parse_json(delivery.body), mapping)
    except (json.JSONDecodeError, Malformed) as exc:
        message = str(exc) if isinstance(exc, Malformed) else "The body must be JSON."
        log.alone([("refused", f"malformed: {message}", None)])
        raise ApiError(400, "bad_request", message) from None
    receipt = Receipt()
    for item in parsed.events:
        _record(project, log, parsed, item, receipt)
    for person in parsed.people:
        _upsert(project_id, log, parsed, person, receipt)
    if parsed.skipped:
        receipt.ignored += parsed.skipped
        log.alone([("ignored", reason, parsed.provider_event) for reason in parsed.skipped])
    return receipt


def _fact(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    try:
        return instants.check_fact(moment)
    except instants.OutOfRange:
        return None  # a provider clock far off: the event happened now, as far as we know


def _record(project: Project, log: _Log, parsed: Parsed, item: EventItem, receipt: Receipt) -> None:
    def write(outcome: EventOutcome) -> None:
        # Inside the event's transaction, which may run again after a lost race: no counting here.
        if outcome.duplicate:
            log.write("duplicate", "already recorded", parsed.provider_event, item)
            return
        scheduled = len(outcome.requests)
        reasons = ", ".join(sorted({str(skip.get("reason")) for skip in outcome.skipped}))
        note = f"{scheduled} survey request(s) scheduled" + (f"; skipped: {reasons}" if reasons else "")
        log.write("accepted", note, parsed.provider_event, item)

    try:
        outcome = record_event(
            project,
            item.external_id,
            item.type,
            item.person,
            occurred_at=_fact(item.occurred_at),
            properties=item.properties,
            also=write,
        )
    except ApiError as exc:
        if exc.code == "conflict":
            raise  # a race lost three times: the provider retries
        receipt.ignored.append(exc.message)
        log.alone([("ignored", exc.message, parsed.provider_event)])
        return
    if outcome.duplicate:
        receipt.duplicates += 1
    else:
        receipt.accepted += 1


def _upsert(project_id: int, log: _Log, parsed: Parsed, person: dict[str, Any], receipt: Receipt) -> None:
    def work() -> None:
        upsert_person(project_id, person)
        log.write("accepted", "person updated", parsed.provider_event, None)

    try:
        commit_with_retry(work)
        receipt.accepted += 1
    except ApiError as exc:
        if exc.code == "conflict":
            raise
        receipt.ignored.append(exc.message)
        log.alone([("ignored", exc.message, parsed.provider_event)])


@dataclass
class _Log:
    """A source's delivery log, written in the caller's transaction (write) or in one of its own (alone)."""

    source_id: int
    now: datetime
    touch: bool  # whether last_received_at is due to move

    def write(
        self, outcome: str, reason: str | None, provider_event: str | None, item: EventItem | None
    ) -> None:
        """Add a line in the current transaction; keep the log short and last_received_at current."""
        line = SourceDelivery(
            source_id=self.source_id,
            received_at=self.now,
            outcome=outcome,
            reason=(reason or "")[:300] or None,
            provider_event=(provider_event or "")[:100] or None,
            event_id=item.external_id[:255] if item else None,
            event_type=item.type if item else None,
        )
        db.session.add(line)
        db.session.flush()
        if line.id % PRUNE_EVERY == 0:
            cutoff = (
                select(SourceDelivery.id)
                .where(SourceDelivery.source_id == self.source_id)
                .order_by(SourceDelivery.id.desc())
                .offset(KEEP_DELIVERIES)
                .limit(1)
                .scalar_subquery()
            )
            db.session.execute(
                delete(SourceDelivery).where(
                    SourceDelivery.source_id == self.source_id, SourceDelivery.id <= cutoff
                )
            )
        if outcome != "refused" and self.touch:
            # Conditional, so concurrent deliveries of one source do not queue on its row.
            db.session.execute(
                update(EventSource)
                .where(
                    EventSource.id == self.source_id,
                    or_(
                        EventSource.last_received_at.is_(None),
                        EventSource.last_received_at < self.now - LAST_RECEIVED_STEP,
                    ),
                )
                .values(last_received_at=self.now)
            )

    def alone(self, lines: list[tuple[str, str, str | None]]) -> None:
        """Log lines in a transaction of their own (a refusal, or parts of a payload that map to nothing)."""
        db.session.rollback()
        for outcome, reason, provider_event in lines:
            self.write(outcome, reason, provider_event, None)
        db.session.commit()

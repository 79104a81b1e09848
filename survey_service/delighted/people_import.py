"""A Delighted people list (CSV upload or People export) imported as people, keyed by email.

Nothing is sent unless asked: `send` schedules one survey per person through the same scheduler as
POST /v1/people (quiet period, a newer ask supersedes a queued one), `autopilot` enrols people in
recurring email surveys as /v1/autopilot/email/memberships does.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import click
from marshmallow import ValidationError
from sqlalchemy import func, select

from survey_service.core import clock
from survey_service.core.properties import normalized_columns, properties_from_columns
from survey_service.delighted import csv_values
from survey_service.delighted.csv_values import header_key, parse_moment
from survey_service.delighted.params import PHONE
from survey_service.delighted.service import autopilot_interval_days
from survey_service.extensions import db
from survey_service.models import Enrollment, Person, Project, RequestStatus, SurveyRequest
from survey_service.services import outbox, projects, surveying
from survey_service.services.people import upsert_person
from survey_service.services.suppressions import suppressed_among

BATCH = 200
# Header spellings of Delighted's people CSVs (compared case-insensitively, spaces/underscores alike).
COLUMNS = {
    "email": ("email", "email address", "person email"),
    "name": ("name", "person name"),
    "phone": ("phone number", "phone", "person phone number"),
    "last_sent_at": ("last sent at", "last sent"),
}
# Columns of a People export that describe Delighted's own records, not the person.
NOT_PROPERTIES = {
    "id",
    "person id",
    "created at",
    "last responded at",
    "next survey scheduled at",
    "survey scheduled at",
    "unsubscribed at",
    "bounced at",
}


def normal_phone(value: str) -> str | None:
    """E.164 from a spreadsheet cell ("+1 (555) 000-1003" → "+15550001003"), or None if it is not one."""
    compact = re.sub(r"[\s().\-]", "", value)
    return compact if PHONE.match(compact) else None


@dataclass
class PersonRow:
    """One importable line of the people list."""

    line: int
    email: str
    name: str | None
    phone: str | None
    last_sent_at: datetime | None
    properties: dict[str, str]


@dataclass
class PeopleSummary:
    """What a people import did, and each skipped line (or unsent survey) with its reason."""

    created: int = 0
    updated: int = 0
    scheduled: int = 0
    enrolled: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)
    not_sent: list[tuple[int, str]] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The human summary the command prints."""
        out = [
            f"imported {self.created + self.updated} people ({self.created} new, {self.updated} updated),"
            f" skipped {len(self.skipped)}"
        ]
        out += _reasons(self.skipped)
        if self.scheduled or self.not_sent:
            out.append(f"scheduled {self.scheduled} surveys, not scheduled {len(self.not_sent)}")
            out += _reasons(self.not_sent)
        if self.enrolled:
            out.append(f"enrolled {self.enrolled} more people in recurring email surveys (autopilot)")
        return out


def _reasons(items: list[tuple[int, str]]) -> list[str]:
    out = []
    for reason, count in Counter(reason for _, reason in items).most_common():
        examples = [str(line) for line, why in items if why == reason][:5]
        out.append(f"  {count} × {reason} (lines {', '.join(examples)}{', …' if count > 5 else ''})")
    return out


def read_people(path: Path, summary: PeopleSummary) -> list[PersonRow]:
    """Parse and check every line; bad lines land in summary.skipped with their reason."""
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        headers = [h for h in reader.fieldnames or [] if h]
        by_norm = {header_key(h): h for h in headers}
        mapping = {
            name: [by_norm[s] for s in spellings if s in by_norm] for name, spellings in COLUMNS.items()
        }
        if not mapping["email"]:
            raise click.UsageError(f"{path.name}: no email column (expected Delighted's 'Email' header)")
        if {"score", "response id"} <= set(by_norm):
            # Its Score and Comment columns would become person properties.
            raise click.UsageError(f"{path.name} is a responses export: give it as FILE, not --people")
        used = {h for found in mapping.values() for h in found}
        extra = normalized_columns(
            h for h in headers if h not in used and header_key(h) not in NOT_PROPERTIES
        )
        rows: list[PersonRow] = []
        seen: set[str] = set()
        for line, record in enumerate(reader, start=2):
            row = _person_row(line, record, mapping, extra)
            if isinstance(row, str):
                summary.skipped.append((line, row))
            elif row.email in seen:
                summary.skipped.append((line, "duplicate email in the file"))
            else:
                seen.add(row.email)
                rows.append(row)
    return rows


def _person_row(
    line: int, record: dict[str, Any], mapping: dict[str, list[str]], extra: dict[str, list[str]]
) -> PersonRow | str:
    def get(name: str) -> str:
        for header in mapping.get(name, []):
            value = (record.get(header) or "").strip()
            if value:
                return value
        return ""

    email = get("email").lower()
    if not email:
        return "no email (people surveyed by SMS only are not supported)"
    try:
        csv_values.email(email)
    except ValidationError:
        return "email not valid"
    phone = None
    if get("phone"):
        phone = normal_phone(get("phone"))
        if phone is None:
            return "phone number not valid (E.164 expected, e.g. +15550001003)"
    last_sent_at = None
    if get("last_sent_at"):
        last_sent_at = parse_moment(get("last_sent_at"))
        if last_sent_at is None:
            return "last sent date not readable"
    props = properties_from_columns(record, extra)
    return PersonRow(line, email, get("name")[:255] or None, phone, last_sent_at, props)


@dataclass
class SendOptions:
    """What to do beyond storing people: one survey (`send`, after `delay`) or `autopilot`."""

    send: bool = False
    autopilot: bool = False
    delay: timedelta = timedelta(0)


def import_people_csv(
    project_id: int,
    path: Path,
    options: SendOptions | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> PeopleSummary:
    """Upsert the people of a Delighted people CSV by email; rerunning it changes nothing new."""
    options = options or SendOptions()
    summary = PeopleSummary()
    rows = read_people(path, summary)
    project = db.session.get(Project, project_id)
    if project is None:
        raise LookupError(f"no project with id {project_id}")
    survey_id = projects.default_survey(project_id).id
    for start in range(0, len(rows), BATCH):
        batch = rows[start : start + BATCH]
        scheduled = _import_batch(project, survey_id, batch, options, summary)
        db.session.commit()
        outbox.enqueue_requests(scheduled)
        if on_progress:
            on_progress(len(batch))
    summary.skipped.sort()
    summary.not_sent.sort()
    return summary


def _import_batch(
    project: Project, survey_id: int, batch: list[PersonRow], options: SendOptions, summary: PeopleSummary
) -> list[SurveyRequest]:
    """Upsert one batch (flushed, not committed); returns the survey requests it scheduled."""
    emails = [r.email for r in batch]
    existing = set(
        db.session.scalars(
            select(Person.email).where(Person.project_id == project.id, Person.email.in_(emails))
        )
    )
    phones = [r.phone for r in batch if r.phone]
    phone_holders = dict(
        db.session.execute(
            select(Person.phone_number, Person.email).where(
                Person.project_id == project.id, Person.phone_number.in_(phones)
            )
        ).all()
    )
    suppressed = suppressed_among(project.id, emails)
    scheduled: list[SurveyRequest] = []
    now = clock.now()
    for row in batch:
        holder = phone_holders.get(row.phone) if row.phone else None
        if row.phone and holder is not None and holder != row.email:
            summary.skipped.append((row.line, "phone number already belongs to another person"))
            continue
        data: dict[str, Any] = {"email": row.email, "properties": row.properties}
        if row.name:
            data["name"] = row.name
        person, _ = upsert_person(project.id, data)
        if row.phone and person.phone_number != row.phone:
            person.phone_number = row.phone
            phone_holders[row.phone] = row.email
        if row.email in existing:
            summary.updated += 1
        else:
            summary.created += 1
        if row.last_sent_at is not None:
            _record_earlier_send(project.id, survey_id, person.id, row.last_sent_at)
        if not (options.send or options.autopilot):
            continue
        if row.email in suppressed:
            summary.not_sent.append((row.line, "unsubscribed or bounced"))
        elif options.autopilot:
            summary.enrolled += _enrol(project, survey_id, person.id, now + options.delay)
        else:
            outcome = surveying.schedule_survey(
                project.id, person.id, channel="email", send_at=now + options.delay, now=now
            )
            if outcome.request is not None:
                scheduled.append(outcome.request)
                summary.scheduled += 1
            else:
                summary.not_sent.append((row.line, outcome.skipped_reason or "not scheduled"))
    db.session.flush()
    return scheduled


def _record_earlier_send(project_id: int, survey_id: int, person_id: int, sent_at: datetime) -> None:
    """Record Delighted's last send as a sent request so quiet periods see it, once per import."""
    latest = db.session.scalar(
        select(func.max(SurveyRequest.sent_at)).where(
            SurveyRequest.project_id == project_id, SurveyRequest.person_id == person_id
        )
    )
    if latest is not None and latest >= sent_at:
        return
    db.session.add(
        SurveyRequest(
            project_id=project_id,
            survey_id=survey_id,
            person_id=person_id,
            channel="email",
            status=RequestStatus.SENT,
            scheduled_at=sent_at,
            sent_at=sent_at,
        )
    )
    db.session.flush()


def _enrol(project: Project, survey_id: int, person_id: int, first_at: datetime) -> bool:
    """Enrol in recurring email surveys (the relay asks when due); False when already enrolled."""
    enrollment = db.session.scalar(
        select(Enrollment).where(
            Enrollment.project_id == project.id,
            Enrollment.person_id == person_id,
            Enrollment.survey_id == survey_id,
        )
    )
    if enrollment is not None and enrollment.active:
        return False
    if enrollment is None:
        enrollment = Enrollment(project_id=project.id, person_id=person_id, survey_id=survey_id)
        db.session.add(enrollment)
    enrollment.channel = "email"
    enrollment.interval_days = autopilot_interval_days(project)
    enrollment.next_run_at = first_at
    enrollment.active = True
    return True

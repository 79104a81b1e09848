"""`survey-service import-delighted FILE.csv --project ID`: a Delighted response export, imported once.

The same command imports a people list with `--people` (see people_import).
"""

from __future__ import annotations

import csv
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import click
from flask import Flask
from marshmallow import ValidationError
from sqlalchemy import select

from survey_service.core import nps
from survey_service.core.properties import normalized_columns, properties_from_columns
from survey_service.delighted import csv_values
from survey_service.delighted.csv_values import header_key, parse_moment
from survey_service.delighted.people_import import SendOptions, import_people_csv
from survey_service.extensions import db
from survey_service.models import Person, Project, Response
from survey_service.services import projects
from survey_service.services.people import upsert_person

BATCH = 200
KEY_PREFIX = "delighted:"
# Header spellings seen in Delighted exports (compared case-insensitively, spaces/underscores alike).
COLUMNS = {
    "id": ("response id", "id", "survey response id"),
    "score": ("score", "rating"),
    "comment": ("comment", "comments"),
    "timestamp": ("response timestamp", "created at", "date", "response date", "responded at"),
    "email": ("email", "person email", "email address"),
    "name": ("name", "person name"),
    "phone": ("phone number", "person phone number", "phone"),
    "survey_type": ("survey type",),
}
# Export columns that describe Delighted itself, not the person: never turned into properties.
NOT_PROPERTIES = {"tags", "notes", "permalink", "person id", "updated at", "survey type"}


@dataclass
class Row:
    """One importable line of the export."""

    line: int
    external_id: str
    score: int
    created_at: datetime
    comment: str | None
    email: str | None
    name: str | None
    phone: str | None
    properties: dict[str, str]


@dataclass
class ImportSummary:
    """What an import did: counts, and each skipped line with its reason."""

    imported: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)

    def reasons(self) -> Counter[str]:
        return Counter(reason for _, reason in self.skipped)

    def lines(self) -> list[str]:
        """The human summary the command prints."""
        out = [f"imported {self.imported} responses, skipped {len(self.skipped)}"]
        for reason, count in self.reasons().most_common():
            examples = [str(line) for line, why in self.skipped if why == reason][:5]
            out.append(f"  {count} × {reason} (lines {', '.join(examples)}{', …' if count > 5 else ''})")
        return out


def _columns(headers: list[str]) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Map our fields to the file's headers (in preference order); the other headers are properties,
    grouped by their normalised name (`Plan` and `plan` columns are one property, `plan`)."""
    by_norm = {header_key(h): h for h in headers if h}
    mapping: dict[str, list[str]] = {}
    for name, spellings in COLUMNS.items():
        found = [by_norm[s] for s in spellings if s in by_norm]
        if found:
            mapping[name] = found
    used = {h for found in mapping.values() for h in found}
    extra = [h for h in headers if h and h not in used and header_key(h) not in NOT_PROPERTIES]
    return mapping, normalized_columns(extra)


def read_rows(path: Path, summary: ImportSummary) -> list[Row]:
    """Parse and check every line; bad lines land in summary.skipped with their reason."""
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        mapping, extra = _columns(list(reader.fieldnames or []))
        missing = [name for name in ("id", "score", "timestamp") if name not in mapping]
        if missing:
            raise click.UsageError(
                f"{path.name}: no {', '.join(missing)} column (expected Delighted's 'Response ID', "
                f"'Score' and 'Response timestamp' or 'Date' headers; for a people list use --people)"
            )
        rows: list[Row] = []
        seen: set[str] = set()
        for line, record in enumerate(reader, start=2):
            row_or_reason = _row(line, record, mapping, extra)
            if isinstance(row_or_reason, str):
                summary.skipped.append((line, row_or_reason))
            elif row_or_reason.external_id in seen:
                summary.skipped.append((line, "duplicate Response ID in the file"))
            else:
                seen.add(row_or_reason.external_id)
                rows.append(row_or_reason)
    rows.sort(key=lambda r: (r.created_at, r.line))  # oldest first: people end with their latest properties
    return rows


def _row(
    line: int, record: dict[str, Any], mapping: dict[str, list[str]], extra: dict[str, list[str]]
) -> Row | str:
    def get(name: str) -> str:
        """The first non-empty value among the field's columns."""
        for header in mapping.get(name, []):
            value = (record.get(header) or "").strip()
            if value:
                return value
        return ""

    response_id = get("id")
    if not response_id:
        return "no Response ID"
    if get("survey_type") and get("survey_type").lower() != "nps":
        return f"not an NPS response ({get('survey_type')})"
    raw_score = get("score")
    if not re.fullmatch(r"[0-9]{1,2}", raw_score) or int(raw_score) > nps.MAX_SCORE:
        return "score missing or not an integer from 0 to 10"
    created_at = parse_moment(get("timestamp"))
    if created_at is None:
        return "date missing or not readable"
    email = get("email").lower() or None
    if email:
        try:
            csv_values.email(email)
        except ValidationError:
            return "email not valid"
    props = properties_from_columns(record, extra)
    return Row(
        line=line,
        external_id=KEY_PREFIX + response_id,
        score=int(raw_score),
        created_at=created_at,
        comment=get("comment") or None,
        email=email,
        name=get("name") or None,
        phone=get("phone") or None,
        properties=props,
    )


def _person_for(project_id: int, row: Row, known: dict[str, Person]) -> Person:
    """The person of a row: by email; else by phone; else one anonymous person per response.

    known holds the batch's people by email, so a returning person costs no query.
    """
    if row.email and row.email in known:
        person = known[row.email]
        if row.name:
            person.name = row.name
        if row.properties:
            person.properties = {**(person.properties or {}), **row.properties}  # as upsert_person merges
    elif row.email:
        data: dict[str, Any] = {"email": row.email, "properties": row.properties}
        if row.name:
            data["name"] = row.name
        person, _ = upsert_person(project_id, data)
        known[row.email] = person
    else:
        key = f"delighted-phone:{row.phone}" if row.phone else f"delighted-anonymous:{row.external_id}"
        data = {"external_id": key, "name": row.name, "properties": row.properties}
        person, _ = upsert_person(project_id, data)
    if row.phone and person.phone_number != row.phone and not person.phone_number:
        taken = db.session.scalar(
            select(Person.id).where(Person.project_id == project_id, Person.phone_number == row.phone)
        )
        if taken is None:
            person.phone_number = row.phone
    return person


def _batches(rows: list[Row]) -> Iterator[list[Row]]:
    for start in range(0, len(rows), BATCH):
        yield rows[start : start + BATCH]


def import_delighted_csv(
    project_id: int, path: Path, on_progress: Callable[[int], None] | None = None
) -> ImportSummary:
    """Import a Delighted CSV export into the project; rows already imported are skipped."""
    summary = ImportSummary()
    rows = read_rows(path, summary)
    survey_id = projects.default_survey(project_id).id
    for batch in _batches(rows):
        known = set(
            db.session.scalars(
                select(Response.external_id).where(
                    Response.project_id == project_id,
                    Response.external_id.in_([r.external_id for r in batch]),
                )
            )
        )
        emails = {r.email for r in batch if r.email}
        people = {
            p.email: p
            for p in db.session.scalars(
                select(Person).where(Person.project_id == project_id, Person.email.in_(emails))
            )
            if p.email
        }
        for row in batch:
            if row.external_id in known:
                summary.skipped.append((row.line, "already imported"))
                continue
            person = _person_for(project_id, row, people)
            db.session.add(
                Response(
                    project_id=project_id,
                    survey_id=survey_id,
                    person_id=person.id,
                    score=row.score,
                    category=nps.category_for(row.score),
                    comment=row.comment,
                    channel="import",
                    properties=dict(row.properties),
                    created_at=row.created_at,
                    updated_at=row.created_at,
                    external_id=row.external_id,
                )
            )
            summary.imported += 1
        db.session.commit()
        if on_progress:
            on_progress(len(batch))
    summary.skipped.sort()
    return summary


def _line_count(path: Path) -> int:
    """Lines after the header: close enough to records for a progress bar."""
    with path.open(encoding="utf-8-sig") as fh:
        return max(sum(1 for _ in fh) - 1, 0)


def register_commands(app: Flask) -> None:
    """Attach `import-delighted` to the app's CLI."""

    @app.cli.command("import-delighted")
    @click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("--project", "project_id", type=int, required=True, help="Project id to import into.")
    @click.option(
        "--people",
        "people_file",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="A Delighted people list (Email, Name, Phone number, property columns) to upsert by email.",
    )
    @click.option("--send", is_flag=True, help="Schedule one survey email per imported person.")
    @click.option("--autopilot", is_flag=True, help="Enrol imported people in recurring email surveys.")
    @click.option(
        "--delay", type=click.IntRange(0, 10 * 365 * 86400), default=0, help="Seconds before the first ask."
    )
    def import_delighted_command(
        file: Path | None, project_id: int, people_file: Path | None, send: bool, autopilot: bool, delay: int
    ) -> None:
        """Import a Delighted CSV export of responses and/or a people list; safe to run again."""
        if db.session.get(Project, project_id) is None:
            raise click.UsageError(f"no project with id {project_id}")
        if file is None and people_file is None:
            raise click.UsageError("give a responses export FILE, --people FILE, or both")
        if (send or autopilot or delay) and people_file is None:
            raise click.UsageError("--send, --autopilot and --delay apply to --people")
        if send and autopilot:
            raise click.UsageError("choose --send (one survey) or --autopilot (recurring), not both")
        if people_file is not None:
            options = SendOptions(send=send, autopilot=autopilot, delay=timedelta(seconds=delay))
            with click.progressbar(length=_line_count(people_file), label="People", file=sys.stderr) as bar:
                people = import_people_csv(project_id, people_file, options, on_progress=bar.update)
            for text in people.lines():
                click.echo(text)
        if file is not None:
            with click.progressbar(length=_line_count(file), label="Responses", file=sys.stderr) as bar:
                summary = import_delighted_csv(project_id, file, on_progress=bar.update)
            for text in summary.lines():
                click.echo(text)

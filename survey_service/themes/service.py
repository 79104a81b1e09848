"""Themes of a project: the rules (CRUD, merge, switch off), and applying them to comments.

Writes own their transaction and enqueue only after commit. Comments are analysed off the request
path: the worker's relay pass (`analyse_recent`) picks up new and edited comments by
`responses.updated_at`, and a rule change enqueues `jobs.reapply_themes` for the whole project. Both
are idempotent: a batch deletes and rewrites the analyses and theme rows of exactly its responses.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from redis.exceptions import RedisError
from rq import Retry
from rq.job import Job
from sqlalchemy import delete, func, insert, select, tuple_, update

from survey_service.core import clock
from survey_service.errors import ApiError
from survey_service.extensions import db, queues
from survey_service.models import (
    Person,
    Response,
    ResponseAnalysis,
    ResponseTheme,
    Theme,
    ThemeCursor,
    ThemeRules,
)
from survey_service.reporting import rollups
from survey_service.reporting.filters import ResponseFilter
from survey_service.services.tx import commit_with_retry
from survey_service.themes import analysis, discovery, matching, text
from survey_service.themes.builtin import BUILTIN_THEMES

log = logging.getLogger(__name__)

BATCH = 2000
RELAY_CURSOR = "relay"
# The relay leaves the last seconds of writes for its next pass: a transaction that stamped
# updated_at and commits within this lag is still seen (one open longer waits for a re-apply).
RELAY_LAG = timedelta(seconds=10)
REAPPLY_JOB = "survey_service.jobs.reapply_themes"
MAX_THEMES = 100
MAX_MERGED_KEYWORDS = 500
_KEY_CHARS = re.compile(r"[^a-z0-9]+")

_matchers: dict[tuple[Any, ...], matching.Matcher] = {}


# ---- rules --------------------------------------------------------------------------------------


def ensure_project(project_id: int) -> None:
    """Give a project its built-in themes and its rules version, once (safe under a race)."""
    if db.session.get(ThemeRules, project_id) is not None:
        return

    def work() -> None:
        if db.session.get(ThemeRules, project_id) is not None:
            return
        db.session.add(ThemeRules(project_id=project_id, version=1, applied_version=0))
        for theme in BUILTIN_THEMES:
            db.session.add(
                Theme(
                    project_id=project_id,
                    key=theme.key,
                    label=theme.label,
                    keywords=list(theme.keywords),
                    builtin=True,
                )
            )

    commit_with_retry(work)


def list_themes(project_id: int) -> list[Theme]:
    """A project's themes, built-in first, then by label."""
    ensure_project(project_id)
    return list(
        db.session.scalars(
            select(Theme).where(Theme.project_id == project_id).order_by(Theme.builtin.desc(), Theme.label)
        )
    )


def get_theme(project_id: int, theme_id: int) -> Theme:
    """One of the project's themes, or 404."""
    theme = db.session.get(Theme, theme_id)
    if theme is None or theme.project_id != project_id:
        raise ApiError(404, "not_found", "No such theme.", {"theme_id": theme_id})
    return theme


def slug(label: str) -> str:
    """A theme key from a label: lower-case ASCII letters, digits and underscores."""
    from_label = _KEY_CHARS.sub("_", text.fold(label.lower())).strip("_")[:40]
    return from_label or "theme"


def _dedupe(keywords: Sequence[str]) -> list[str]:
    seen: dict[str, str] = {}
    for keyword in keywords:
        seen.setdefault(" ".join(keyword.split()).lower(), " ".join(keyword.split()))
    return list(seen.values())


def create_theme(project_id: int, data: dict[str, Any]) -> Theme:
    """Add a theme (its key from the label unless given); a rule change: comments are re-applied."""
    ensure_project(project_id)
    key = data.get("key") or slug(data["label"])

    def work() -> Theme:
        count = db.session.scalar(
            select(func.count()).select_from(Theme).where(Theme.project_id == project_id)
        )
        if (count or 0) >= MAX_THEMES:
            raise ApiError(422, "too_many_themes", f"A project has at most {MAX_THEMES} themes.")
        if db.session.scalar(select(Theme.id).where(Theme.project_id == project_id, Theme.key == key)):
            raise ApiError(409, "conflict", "A theme with this key exists.", {"key": key})
        theme = Theme(
            project_id=project_id,
            key=key,
            label=data["label"],
            keywords=_dedupe(data["keywords"]),
            enabled=data.get("enabled", True),
        )
        db.session.add(theme)
        _bump(project_id)
        return theme

    theme = commit_with_retry(work)
    _enqueue_reapply(project_id)
    return theme


def update_theme(project_id: int, theme_id: int, data: dict[str, Any]) -> Theme:
    """Rename, change keywords, switch on or off; a change of what matches re-applies the rules."""
    theme = get_theme(project_id, theme_id)
    matches_change = False
    if "label" in data:
        theme.label = data["label"]
    if "keywords" in data and _dedupe(data["keywords"]) != theme.keywords:
        theme.keywords = _dedupe(data["keywords"])
        matches_change = True
    if "enabled" in data and data["enabled"] != theme.enabled:
        theme.enabled = data["enabled"]
        matches_change = True
    if matches_change:
        _bump(project_id)
    db.session.commit()
    if matches_change:
        _enqueue_reapply(project_id)
    return theme


def delete_theme(project_id: int, theme_id: int) -> None:
    """Delete a theme and its assignments (its per-day counts go with it)."""
    theme = get_theme(project_id, theme_id)
    days = _days_of_theme(theme.id)
    db.session.delete(theme)
    rollups.mark_days_changed(project_id, days)
    _bump(project_id, applied=True)
    db.session.commit()


def merge_theme(project_id: int, theme_id: int, into_id: int) -> Theme:
    """Fold a theme into another: its keywords join the other's, it goes, comments are re-applied."""
    source, target = get_theme(project_id, theme_id), get_theme(project_id, into_id)
    if source.id == target.id:
        raise ApiError(422, "validation_error", "A theme cannot be merged into itself.", {"into": into_id})
    merged = _dedupe([*target.keywords, *source.keywords])
    if len(merged) > MAX_MERGED_KEYWORDS:
        raise ApiError(422, "validation_error", f"A theme has at most {MAX_MERGED_KEYWORDS} keywords.")
    target.keywords = merged
    days = _days_of_theme(source.id)
    db.session.delete(source)
    rollups.mark_days_changed(project_id, days)
    _bump(project_id)
    db.session.commit()
    _enqueue_reapply(project_id)
    return target


def _days_of_theme(theme_id: int) -> list[date]:
    created = db.session.scalars(
        select(Response.created_at)
        .join(ResponseTheme, ResponseTheme.response_id == Response.id)
        .where(ResponseTheme.theme_id == theme_id)
    )
    return sorted({moment.astimezone(UTC).date() for moment in created})


def _bump(project_id: int, *, applied: bool = False) -> None:
    """A new rules version (in the caller's transaction); `applied`: nothing needs re-applying."""
    values: dict[str, Any] = {"version": ThemeRules.version + 1}
    if applied:
        values["applied_version"] = ThemeRules.applied_version + 1
    db.session.execute(update(ThemeRules).where(ThemeRules.project_id == project_id).values(**values))


def _enqueue_reapply(project_id: int) -> None:
    """After the commit: re-apply the rules in the worker; a Redis outage leaves it to the relay."""
    version = db.session.scalar(select(ThemeRules.version).where(ThemeRules.project_id == project_id))
    try:
        queues().queue().enqueue(
            REAPPLY_JOB,
            project_id,
            job_id=f"themes-reapply-{project_id}-{version}",
            retry=Retry(max=3, interval=[10, 60, 300]),
            job_timeout=3600,
        )
    except RedisError:
        log.warning("Redis unavailable: themes of project %s re-applied by the relay later", project_id)


# ---- applying ------------------------------------------------------------------------------------


def matcher(project_id: int) -> matching.Matcher:
    """The compiled enabled rules of a project (cached by their content, so any edit recompiles)."""
    rows = db.session.execute(
        select(Theme.id, Theme.keywords).where(Theme.project_id == project_id, Theme.enabled.is_(True))
    ).all()
    fingerprint = tuple(sorted((row.id, tuple(row.keywords)) for row in rows))
    found = _matchers.get(fingerprint)
    if found is None:
        if len(_matchers) > 64:
            _matchers.clear()
        found = _matchers[fingerprint] = matching.Matcher(
            matching.Rule(row.id, tuple(row.keywords)) for row in rows
        )
    return found


def _rules_version(project_id: int) -> int:
    return int(db.session.scalar(select(ThemeRules.version).where(ThemeRules.project_id == project_id)) or 0)


def _write(project_id: int, rows: Sequence[Any], span: tuple[int, int] | None = None) -> int:
    """Analyse these responses (id, comment, locale, created_at) and store the results (caller commits).

    `span` (first id, last id): the rows are every commented response of the project in it, so the
    old rows go by range (no list of thousands of ids to send and parse).
    """
    ids = [row.id for row in rows]
    if not ids:
        return 0
    compiled, version = matcher(project_id), _rules_version(project_id)
    for model in (ResponseTheme, ResponseAnalysis):
        column = model.response_id
        if span is None:
            db.session.execute(delete(model).where(column.in_(ids)))
        else:
            old = [model.project_id == project_id, column >= span[0], column <= span[1]]
            db.session.execute(delete(model).where(*old))
    analyses: list[dict[str, Any]] = []
    themes: list[dict[str, Any]] = []
    now = clock.now()
    for row in rows:
        if not row.comment or not row.comment.strip():
            continue
        found = analysis.analyse(row.comment, row.locale, compiled)
        analyses.append(
            {
                "response_id": row.id,
                "project_id": project_id,
                "language": found.language.code[:8],
                "language_source": found.language.source,
                "supported": found.language.supported,
                "sentiment": found.sentiment.label,
                "sentiment_score": found.sentiment.score,
                "comment_hash": found.comment_hash,
                "rules_version": version,
                "analysed_at": now,
            }
        )
        themes += [{"response_id": row.id, "theme_id": t, "project_id": project_id} for t in found.theme_ids]
    _insert(ResponseAnalysis, analyses)
    _insert(ResponseTheme, themes)
    rollups.mark_days_changed(project_id, {row.created_at.astimezone(UTC).date() for row in rows})
    return len(analyses)


def _insert(model: Any, rows: list[dict[str, Any]]) -> None:
    """Insert rows in the caller's transaction: PostgreSQL's COPY (a re-apply writes hundreds of
    thousands of rows; COPY is several times faster than a batched INSERT), else one INSERT."""
    if not rows:
        return
    if db.engine.dialect.name != "postgresql":
        db.session.execute(insert(model), rows)
        return
    columns = list(rows[0])
    raw: Any = db.session.connection().connection.driver_connection
    with (
        raw.cursor() as cursor,
        cursor.copy(f"COPY {model.__tablename__} ({', '.join(columns)}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row([row[c] for c in columns])


def _selection() -> Any:
    return select(
        Response.id,
        Response.project_id,
        Response.comment,
        Response.created_at,
        Response.updated_at,
        Person.locale,
    ).join(Person, Person.id == Response.person_id)


def reapply(project_id: int, batch: int = BATCH) -> int:
    """Analyse every comment of a project again under its current rules; the number analysed.

    Run by the worker (jobs.reapply_themes) after a rule change; safe to run twice or concurrently
    with the relay (each batch rewrites exactly its responses' rows in one transaction).
    """
    ensure_project(project_id)
    version = _rules_version(project_id)
    done, after = 0, 0
    while True:
        rows = db.session.execute(
            _selection()
            .where(Response.project_id == project_id, Response.id > after, Response.comment != "")
            .order_by(Response.id)
            .limit(batch)
        ).all()
        if not rows:
            break
        done += _write(project_id, rows, (after + 1, rows[-1].id))
        db.session.commit()
        after = rows[-1].id
    # Analyses of comments blanked since (retention, edits) go too.
    blanked = select(Response.id).where(
        Response.project_id == project_id, func.coalesce(Response.comment, "") == ""
    )
    db.session.execute(delete(ResponseTheme).where(ResponseTheme.response_id.in_(blanked)))
    db.session.execute(delete(ResponseAnalysis).where(ResponseAnalysis.response_id.in_(blanked)))
    db.session.execute(
        update(ThemeRules)
        .where(ThemeRules.project_id == project_id, ThemeRules.version == version)
        .values(applied_version=version)
    )
    db.session.commit()
    return done


def analyse_recent(lag: timedelta = RELAY_LAG, batch: int = BATCH) -> int:
    """The relay's step: analyse responses written since the last pass (new or edited comments);
    the number of responses looked at."""
    cursor = db.session.get(ThemeCursor, RELAY_CURSOR)
    start = (cursor.updated_at, cursor.response_id) if cursor else (datetime(1970, 1, 1, tzinfo=UTC), 0)
    rows = db.session.execute(
        _selection()
        .where(
            tuple_(Response.updated_at, Response.id) > tuple_(*start),
            Response.updated_at <= clock.now() - lag,
        )
        .order_by(Response.updated_at, Response.id)
        .limit(batch)
    ).all()
    if not rows:
        db.session.rollback()
        return 0
    per_project: dict[int, list[Any]] = {}
    for row in rows:
        per_project.setdefault(row.project_id, []).append(row)
    for project_id, project_rows in per_project.items():
        ensure_project(project_id)
        _write(project_id, project_rows)
    last = rows[-1]
    if cursor is None:
        db.session.add(ThemeCursor(name=RELAY_CURSOR, updated_at=last.updated_at, response_id=last.id))
    else:
        cursor.updated_at, cursor.response_id = last.updated_at, last.id
    db.session.commit()
    return len(rows)


def reapply_due() -> int:
    """Relay: re-apply projects whose rules changed but whose job never ran (Redis was away)."""
    stale = db.session.scalars(
        select(ThemeRules.project_id).where(
            ThemeRules.applied_version < ThemeRules.version,
            ThemeRules.updated_at < clock.now() - timedelta(minutes=5),
        )
    ).all()
    queued = 0
    for project_id in stale:
        version = _rules_version(project_id)
        if not Job.exists(f"themes-reapply-{project_id}-{version}", connection=queues().redis):
            _enqueue_reapply(project_id)
            queued += 1
    return queued


def relay_step() -> int:
    """What the relay runs each pass (registered in hooks.relay_tasks)."""
    return analyse_recent() + reapply_due()


# ---- discovery -----------------------------------------------------------------------------------

DISCOVERY_SAMPLE = 20_000


def suggestions(flt: ResponseFilter, limit: int = 10) -> dict[str, Any]:
    """Phrases over-represented among detractors / promoters (the newest analysed comments of the
    filter, at most DISCOVERY_SAMPLE), those existing themes do not already match."""
    ensure_project(flt.project_id)
    rows = db.session.execute(
        select(Response.id, Response.category, Response.comment, ResponseAnalysis.language)
        .join(ResponseAnalysis, ResponseAnalysis.response_id == Response.id)
        .where(*flt.conditions(), Response.category.in_(("detractor", "promoter")), Response.comment != "")
        .order_by(Response.id.desc())
        .limit(DISCOVERY_SAMPLE)
    ).all()
    keywords = [
        k
        for t in db.session.scalars(select(Theme).where(Theme.project_id == flt.project_id))
        for k in t.keywords
    ]
    found = discovery.suggest(
        (discovery.Comment(r.id, r.category, r.comment, r.language) for r in rows),
        discovery.covered_stems(keywords),
        limit,
    )
    texts = {r.id: r.comment for r in rows}
    return {
        "comments": len(rows),
        "detractor_phrases": [_suggestion(s, texts) for s in found["detractor"]],
        "promoter_phrases": [_suggestion(s, texts) for s in found["promoter"]],
    }


def _suggestion(found: discovery.Suggestion, texts: dict[int, str]) -> dict[str, Any]:
    return {
        "phrase": found.phrase,
        "stems": list(found.stems),
        "side": found.side,
        "z": found.z,
        "log_odds": found.log_odds,
        "detractors": found.detractors,
        "promoters": found.promoters,
        "significant": found.significant,
        "examples": [{"response_id": i, "comment": texts[i][:300]} for i in found.example_ids],
    }


def theme_from_suggestion(project_id: int, phrase: str, label: str | None = None) -> Theme:
    """Turn a suggested phrase into a theme (label: the phrase unless given)."""
    return create_theme(project_id, {"label": label or phrase[:80], "keywords": [phrase]})


def theme_id_for_key(project_id: int, key: str) -> int:
    """The id of the project's theme with this key, or 404 (a filter on an unknown theme)."""
    found = db.session.scalar(select(Theme.id).where(Theme.project_id == project_id, Theme.key == key))
    if found is None:
        raise ApiError(404, "not_found", "No such theme.", {"theme": key})
    return int(found)

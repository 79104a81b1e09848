"""What the dashboard shows: its page model (report, pickers, segments, latest comments) read in one call."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select, text

from survey_service.core.clock import now
from survey_service.extensions import db
from survey_service.models import CHANNELS, Person, Project, Response, Survey, TriggerRule
from survey_service.reporting import theme_report
from survey_service.reporting.exports import property_keys
from survey_service.reporting.filters import ResponseFilter, property_text
from survey_service.reporting.follow_through import step_response_rates
from survey_service.reporting.funnel import campaign_progress
from survey_service.reporting.reports import nps_report

MAX_COMMENTS = 100
# Newest first, the search widens through these windows until it has enough comments.
SEARCH_WINDOWS = (timedelta(days=7), timedelta(days=30), timedelta(days=90), timedelta(days=365))
RANGES = {
    "30d": ("Last 30 days", 30),
    "90d": ("Last 90 days", 90),
    "12m": ("Last 12 months", 365),
    "all": ("All time", None),
}
INTERVALS = ("day", "week", "month", "quarter")
DEFAULT_INTERVAL = {"30d": "day", "90d": "week", "12m": "month", "all": "quarter"}
MAX_SEGMENT_VALUES = 50
PICKER_SAMPLE = 5000  # newest responses looked at to fill the property and segment pickers
# Where the responses came from: the report's and the exports' own filters, under the same names.
ORIGIN_KEYS = ("survey_id", "channel", "trigger_id", "event_type")
CHANNEL_LABELS = {"api": "API", "email": "Email", "in_app": "In-app", "link": "Link", "import": "Imported"}


@dataclass(frozen=True)
class Origins:
    """The project's NPS surveys and trigger rules: the pickers' choices, and the ids a query may name."""

    surveys: dict[int, str]
    triggers: dict[int, str]
    event_types: list[str]

    @classmethod
    def of(cls, project_id: int) -> Origins:
        """Two small SELECTs on the project's configuration (no responses read)."""
        surveys = db.session.execute(
            select(Survey.id, Survey.name)
            .where(Survey.project_id == project_id, Survey.kind == "nps")
            .order_by(Survey.name, Survey.id)
        ).all()
        same_name = Counter(s.name for s in surveys)
        rules = db.session.execute(
            select(TriggerRule.id, TriggerRule.event_type, TriggerRule.channel, TriggerRule.enabled)
            .where(TriggerRule.project_id == project_id)
            .order_by(TriggerRule.event_type, TriggerRule.id)
        ).all()
        return cls(
            surveys={s.id: s.name if same_name[s.name] == 1 else f"{s.name} (#{s.id})" for s in surveys},
            triggers={
                r.id: f"{r.event_type} · {CHANNEL_LABELS.get(r.channel, r.channel)} (#{r.id})"
                + ("" if r.enabled else " · off")
                for r in rules
            },
            event_types=sorted({r.event_type for r in rules}),
        )

    def check(self, query: dict[str, Any], invalid: list[str]) -> dict[str, Any]:
        """The query's origin filters; a survey or rule id not of this project is dropped as invalid."""
        if query.get("survey_id") is not None and query["survey_id"] not in self.surveys:
            del query["survey_id"]
            invalid.append("survey_id")
        if query.get("trigger_id") is not None and query["trigger_id"] not in self.triggers:
            del query["trigger_id"]
            invalid.append("trigger_id")
        invalid.sort()
        return {key: query[key] for key in ORIGIN_KEYS if query.get(key) is not None}


@dataclass(frozen=True)
class DashboardPage:
    """Everything the dashboard page shows for one filter bar, read from the database."""

    project: Project | None
    origins: Origins
    origin: dict[str, Any]  # the origin filters in use (ORIGIN_KEYS)
    range_key: str
    interval: str
    keys: list[str]  # property keys among the newest responses
    by: str | None  # the property the segment table groups by
    segment: tuple[str, str] | None
    segment_key: str | None
    segment_values: list[str]
    report: dict[str, Any]  # nps_report's answer
    comments: list[Any]
    themes: dict[str, Any]  # themes_report's answer (no examples: the comments list filters by theme)
    channels: list[str]
    event_types: list[str]
    pickers: dict[str, bool]  # which origin pickers the filter bar shows
    export_args: dict[str, Any]
    first_run: bool  # the project has no responses at all yet: the page shows how to get some
    campaigns: list[dict[str, Any]]  # the latest campaigns' sends: queued, sending, sent, failed, skipped
    # The promoter loop's funnel over the range and origin: promoters, asked, consented, clicked.
    promoter_loop: dict[str, int] | None = None
    # step_response_rates of the range's email first asks; None when the page shows another channel only.
    follow_through: dict[str, Any] | None = None


def project_of(project_id: int) -> Project | None:
    """The dashboard user's project (its name heads every page)."""
    return db.session.get(Project, project_id)


def range_start(range_key: str) -> datetime | None:
    """The first instant of a RANGES key (midnight UTC, today included), None for all time."""
    days = RANGES[range_key][1]
    if days is None:
        return None
    today = now().date()
    return datetime.combine(today - timedelta(days=days - 1), time.min, tzinfo=UTC)


def dashboard_page(project_id: int, query: dict[str, Any], invalid: list[str]) -> DashboardPage:
    """The page model of the dashboard for a parsed filter bar; ids of another project join `invalid`."""
    no_jit()
    origins = Origins.of(project_id)
    origin = origins.check(query, invalid)
    range_key = query["range"]
    interval = query.get("interval") or DEFAULT_INTERVAL[range_key]
    since = range_start(range_key)
    base = ResponseFilter(project_id, since=since)
    keys = property_keys(base, sample=PICKER_SAMPLE)
    by = query.get("by") or ("plan" if "plan" in keys else (keys[0] if keys else None))
    segment = query.get("segment")
    where = (segment,) if segment else ()
    report = nps_report(project_id, since=since, group_by=by, interval=interval, where=where, **origin)
    segment_key = segment[0] if segment else by
    if segment_key and segment_key == by and not segment:
        # The segment table already holds every value of this property: no second scan.
        segment_values = sorted(str(g["key"]) for g in report["groups"] if g["key"] is not None)
    else:
        segment_values = _segment_values(base, segment_key) if segment_key else []
    if segment and segment[1] not in segment_values:
        segment_values.append(segment[1])
    theme_id = theme_report.theme_id_for(project_id, query["theme"]) if query.get("theme") else None
    if query.get("theme") and theme_id is None:
        invalid.append("theme")
    themes = theme_report.themes_report(project_id, since=since, where=where, examples=0, **origin)
    comment_filter = ResponseFilter(
        project_id,
        since=since,
        where=where,
        category=query.get("category"),
        search=query.get("q"),
        followup_status=query.get("followup"),
        with_comment=True,
        theme_id=theme_id,
        **origin,
    )
    export_args = {
        k: v for k, v in {"range": range_key, "segment": ":".join(segment) if segment else None}.items() if v
    } | origin
    # Each picker only when picking can change what the page shows: a survey or channel out of two or
    # more, any rule or event type (the rest of the responses came from none of them); always when in use.
    channels = _channels(base)
    if origin.get("channel") and origin["channel"] not in channels:
        channels.append(origin["channel"])
    event_types = list(origins.event_types)
    if origin.get("event_type") and origin["event_type"] not in event_types:
        event_types.append(origin["event_type"])
    pickers = {
        "survey_id": len(origins.surveys) > 1 or "survey_id" in origin,
        "channel": len(channels) > 1 or "channel" in origin,
        "trigger_id": bool(origins.triggers),
        "event_type": bool(event_types),
    }
    return DashboardPage(
        project=project_of(project_id),
        origins=origins,
        origin=origin,
        range_key=range_key,
        interval=interval,
        keys=keys,
        by=by,
        segment=segment,
        segment_key=segment_key,
        segment_values=segment_values,
        report=report,
        comments=latest_comments(comment_filter),
        themes=themes,
        channels=channels,
        event_types=event_types,
        pickers=pickers,
        export_args=export_args,
        first_run=report["overall"]["responses"] == 0 and not has_responses(project_id),
        campaigns=campaign_progress(project_id),
        promoter_loop=promoter_loop_counts(
            ResponseFilter(project_id, since=since, where=where, **origin), report["overall"]["promoters"]
        ),
        follow_through=follow_through(project_id, since, origin),
    )


def follow_through(project_id: int, since: datetime | None, origin: dict[str, Any]) -> dict[str, Any] | None:
    """The follow-through of the range's email first asks (their survey, rule and event type), unless the
    page is filtered to another channel: reminders follow email asks only. A segment does not narrow it:
    people who never answered have no frozen properties to match."""
    if origin.get("channel") not in (None, "email"):
        return None
    asks = {key: value for key, value in origin.items() if key != "channel"}
    return step_response_rates(ResponseFilter(project_id, since=since, **asks))


def promoter_loop_counts(flt: ResponseFilter, promoters: int) -> dict[str, int]:
    """How many of the filtered promoters were offered a review, agreed, and followed a link.

    Reads only the responses that were offered one (a partial index holds just those), so the page does
    not scan every promoter of the range; the promoters' total comes from the report already built.
    """
    stmt = select(
        func.count().label("asked"),
        func.count(Response.review_consented_at).label("consented"),
        func.count(Response.review_link_clicked_at).label("clicked"),
    ).where(*flt.conditions(), Response.review_asked_at.is_not(None), Response.category == "promoter")
    row = db.session.execute(stmt).one()
    return {
        "promoters": promoters,
        **{key: int(getattr(row, key)) for key in ("asked", "consented", "clicked")},
    }


def no_jit() -> None:
    """Switch PostgreSQL's JIT compiler off for the rest of this transaction (the page's request).

    The page runs short statements (rollups, index ranges, LIMIT 25), but the planner's estimate for a
    comment search or a filtered scan often passes `jit_above_cost`: at 10M responses compiling took
    ~200 ms of a 355 ms comment search that runs in 80 ms without it.
    """
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text("SET LOCAL jit = off"))


def has_responses(project_id: int) -> bool:
    """Whether the project has any response at all (in any range, from any origin)."""
    found = db.session.scalar(select(Response.id).where(Response.project_id == project_id).limit(1))
    return found is not None


def export_filter(project_id: int, query: dict[str, Any], invalid: list[str]) -> ResponseFilter:
    """The responses a dashboard export holds; ids of another project join `invalid` (the caller refuses)."""
    origin = Origins.of(project_id).check(query, invalid)
    segment = query.get("segment")
    return ResponseFilter(
        project_id,
        since=range_start(query["range"]),
        where=(segment,) if segment else (),
        category=query.get("category"),
        **origin,
    )


def _channels(flt: ResponseFilter) -> list[str]:
    """The channels among the newest responses (for the channel picker), in CHANNELS order."""
    newest = (
        select(Response.channel)
        .where(*flt.conditions())
        .order_by(Response.created_at.desc())
        .limit(PICKER_SAMPLE)
        .subquery()
    )
    found = set(db.session.scalars(select(newest.c.channel).distinct()))
    return [channel for channel in CHANNELS if channel in found]


def _segment_values(flt: ResponseFilter, key: str) -> list[str]:
    """Values of a property among the newest responses (for the segment picker)."""
    newest = (
        select(property_text(key).label("value"))
        .where(*flt.conditions())
        .order_by(Response.created_at.desc())
        .limit(PICKER_SAMPLE)
        .subquery()
    )
    stmt = (
        select(newest.c.value)
        .where(newest.c.value.is_not(None))
        .group_by(newest.c.value)
        .order_by(newest.c.value)
        .limit(MAX_SEGMENT_VALUES)
    )
    return [row.value for row in db.session.execute(stmt)]


def latest_comments(flt: ResponseFilter, limit: int = 25) -> list[Any]:
    """The newest responses with a comment matching the filter, with who wrote them.

    PostgreSQL cannot estimate how many rows a text search or a property filter keeps, so for
    `ORDER BY created_at DESC LIMIT 25` it often sorts every matching row of the range. Asking the
    last 7, 30, 90, 365 days first (an index range) and widening only when fewer than `limit` came
    back gives the same rows: a wider window can only add older ones.
    """
    limit = min(limit, MAX_COMMENTS)
    current = now()
    for window in SEARCH_WINDOWS:
        start = current - window
        if flt.since is not None and start <= flt.since:
            break
        rows = _comments(replace(flt, since=start), limit)
        if len(rows) >= limit:
            return rows
    return _comments(flt, limit)


@contextmanager
def _serial() -> Iterator[None]:
    """No parallel workers for the statements inside (PostgreSQL), then the setting as it was.

    A comment search reads an index range backwards and stops after `limit` matches (a few ms), but
    the planner, unable to estimate a text search, plans parallel workers: starting them took ~40 ms
    of a 45 ms search at 10M responses (serial: 2-6 ms).
    """
    if db.engine.dialect.name != "postgresql":
        yield
        return
    previous = db.session.scalar(text("SHOW max_parallel_workers_per_gather"))
    db.session.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
    try:
        yield
    finally:
        db.session.execute(
            text("SELECT set_config('max_parallel_workers_per_gather', :value, true)"), {"value": previous}
        )


def _comments(flt: ResponseFilter, limit: int) -> list[Any]:
    stmt = (
        select(
            Response.id,
            Response.score,
            Response.category,
            Response.comment,
            Response.channel,
            Response.properties,
            Response.created_at,
            Response.followup_status,
            Response.followup_owner,
            Response.followup_notes,
            Response.followup_tags,
            Person.email,
            Person.name,
        )
        .join(Person, Person.id == Response.person_id)
        .where(*flt.conditions())
        .order_by(Response.created_at.desc(), Response.id.desc())
        .limit(limit)
    )
    with _serial():
        return list(db.session.execute(stmt))

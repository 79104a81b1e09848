"""Trigger rules: which events ask which survey, when, of whom (conditions, sampling, send windows)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select

from survey_service.core import cursors, hot_cache, instants, sampling
from survey_service.errors import ApiError
from survey_service.extensions import db
from survey_service.models import Project, TriggerRule
from survey_service.services import reminder_plans
from survey_service.services.surveying import project_survey

DAY = 86400


@dataclass(frozen=True)
class Template:
    """A built-in event type and the rule a project gets when it switches it on."""

    event_type: str
    delay_seconds: int
    description: str
    relative_to: str | None = None


# Delays from the customer-success guides (DOMAIN.md "When to ask").
TEMPLATES: dict[str, Template] = {
    t.event_type: t
    for t in [
        Template("onboarding_completed", 14 * DAY, "NPS about two weeks after onboarding completes"),
        Template("go_live", 35 * DAY, "adoption survey 30-45 days after go-live"),
        Template("ticket_closed", 4 * 3600, "a few hours after a support ticket is closed"),
        Template(
            "renewal_upcoming",
            -45 * DAY,
            "45 days before the renewal_date the event carries, early enough to act",
            relative_to="renewal_date",
        ),
        Template("renewed", 7 * DAY, "a week after renewal"),
        Template("trial_ending", 0, "when the free trial is about to end"),
        Template("upgraded", 7 * DAY, "a week after an upgrade or expansion"),
        Template("qbr_held", 1 * DAY, "one day after a quarterly business review"),
        Template("cancelled", 0, "exit survey on cancellation (pending sends are cancelled first)"),
    ]
}
BUILTIN_EVENT_TYPES = frozenset(TEMPLATES)

OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda have, want: have == want,
    "neq": lambda have, want: have != want,
    "in": lambda have, want: have in want,
    "not_in": lambda have, want: have not in want,
    "gt": lambda have, want: have is not None and have > want,
    "gte": lambda have, want: have is not None and have >= want,
    "lt": lambda have, want: have is not None and have < want,
    "lte": lambda have, want: have is not None and have <= want,
    "exists": lambda have, want: (have is not None) == bool(want),
}


def condition_matches(
    condition: dict[str, Any], person_props: dict[str, Any], event_props: dict[str, Any]
) -> bool:
    """Evaluate one {property, op, value} condition; `event.x` reads the event's properties."""
    name: str = condition["property"]
    source = event_props if name.startswith("event.") else person_props
    have = source.get(name.removeprefix("event."))
    try:
        return bool(OPERATORS[condition["op"]](have, condition.get("value")))
    except TypeError:  # e.g. "pro" > 3: a mismatched type never matches
        return False


def conditions_hold(rule: TriggerRule, person_props: dict[str, Any], event_props: dict[str, Any]) -> bool:
    """Whether every condition of the rule matches (none: it always does)."""
    return all(condition_matches(c, person_props, event_props) for c in rule.conditions)


def in_sample(rule_id: int, person_id: int, percent: int) -> bool:
    """A stable sampling decision: the same person and rule always get the same answer."""
    return sampling.in_sample(f"rule:{rule_id}:person:{person_id}", percent, digest_bytes=8)


def _zone(time_zone: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(time_zone) if time_zone else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def within_send_window(rule: TriggerRule, time_zone: str | None, at: datetime) -> datetime:
    """Move `at` forward to the rule's send window in the person's time zone (UTC if unknown)."""
    if rule.send_window_start is None or rule.send_window_end is None:
        return at
    local = at.astimezone(_zone(time_zone))
    start, end = rule.send_window_start, rule.send_window_end
    if start <= local.hour < end:
        return at
    day = local.date() if local.hour < start else local.date() + timedelta(days=1)
    opening = datetime.combine(day, time(hour=start), tzinfo=local.tzinfo)
    return opening.astimezone(UTC)


def _parse_anchor(value: Any) -> datetime | None:
    """The date an event property names (a renewal date), or None when unreadable or outside
    instants.check_plan's range (a year-9999 renewal would overflow the delay arithmetic)."""
    if not isinstance(value, str):
        return None
    try:
        if len(value) == 10:
            return instants.check_plan(datetime.combine(date.fromisoformat(value), time(hour=9), tzinfo=UTC))
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return instants.check_plan(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))
    except (ValueError, OverflowError):  # OutOfRange is a ValueError; an offset can overflow year 1
        return None


def send_time(
    rule: TriggerRule, time_zone: str | None, occurred_at: datetime, event_props: dict[str, Any]
) -> datetime | None:
    """When this rule asks for this event: delay from the event (or its anchor date), in the window."""
    base = occurred_at
    if rule.relative_to:
        anchor = _parse_anchor(event_props.get(rule.relative_to))
        if anchor is None:
            return None
        base = anchor
    return within_send_window(rule, time_zone, base + timedelta(seconds=rule.delay_seconds))


# core/hot_cache's cache of the enabled rules by (project id, event type).
RULES_BY_EVENT_TYPE = "trigger_rules"


def matching_rules(project_id: int, event_type: str) -> tuple[TriggerRule, ...]:
    """The enabled rules of a project for an event type, read again at most every HOT_CACHE_SECONDS.

    The rules are detached from the session (shared, read-only, by every request of this process); a rule
    created, changed or deleted here clears the cache at once, elsewhere within HOT_CACHE_SECONDS.
    """
    key = (project_id, event_type)
    return hot_cache.cached(RULES_BY_EVENT_TYPE, key, lambda: _rules(project_id, event_type))


def _rules(project_id: int, event_type: str) -> tuple[TriggerRule, ...]:
    rules = tuple(
        db.session.scalars(
            select(TriggerRule)
            .where(
                TriggerRule.project_id == project_id,
                TriggerRule.event_type == event_type,
                TriggerRule.enabled.is_(True),
            )
            .order_by(TriggerRule.id)
        )
    )
    for rule in rules:
        db.session.expunge(rule)  # a rollback of this session must not expire what other requests read
    return rules


def rule_from_template(project_id: int, event_type: str, channel: str = "email") -> dict[str, Any]:
    """The fields of a built-in rule, for a project to switch on."""
    template = TEMPLATES[event_type]
    return {
        "event_type": event_type,
        "channel": channel,
        "delay_seconds": template.delay_seconds,
        "relative_to": template.relative_to,
        "survey_id": project_survey(project_id, None).id,
    }


def project_rule(project_id: int, rule_id: int) -> TriggerRule:
    """One of the project's trigger rules, or 404."""
    rule = db.session.get(TriggerRule, rule_id)
    if rule is None or rule.project_id != project_id:
        raise ApiError(404, "not_found", "No such trigger.")
    return rule


def list_rules(
    project_id: int, *, limit: int = 100, cursor: str | None = None
) -> tuple[list[TriggerRule], str | None]:
    """One page of the project's trigger rules, oldest first, and the cursor of the next page."""
    stmt = select(TriggerRule).where(TriggerRule.project_id == project_id)
    return cursors.page(
        stmt, [TriggerRule.id], scope=f"triggers:{project_id}", descending=False, limit=limit, cursor=cursor
    )


RULE_FIELDS = ("channel", "delay_seconds", "relative_to", "conditions", "sample_percent", "enabled")


def _apply_fields(rule: TriggerRule, data: dict[str, Any]) -> None:
    if "survey_id" in data:
        rule.survey_id = project_survey(rule.project_id, data["survey_id"]).id
    for name in RULE_FIELDS:
        if name in data:
            setattr(rule, name, data[name])
    if "reminders" in data:
        rule.reminders = reminder_plans.stored(data["reminders"])
        reminder_plans.plans_changed()
    if "send_window" in data:
        window = data["send_window"] or {}
        rule.send_window_start, rule.send_window_end = window.get("start_hour"), window.get("end_hour")
    if rule.delay_seconds < 0 and not rule.relative_to:
        raise ApiError(
            422,
            "validation_error",
            "A negative delay needs relative_to (an event date property such as renewal_date).",
            {"delay_seconds": ["Must be >= 0 without relative_to."]},
        )


def create_rule(project: Project, data: dict[str, Any]) -> TriggerRule:
    """Create and commit a trigger rule; a built-in event type without a delay gets the recommended one."""
    if data["event_type"] not in BUILTIN_EVENT_TYPES and not project.allow_custom_events:
        raise ApiError(422, "unknown_event_type", "Custom event types are not enabled for this project.")
    fields: dict[str, Any] = {
        "survey_id": None,
        "delay_seconds": 0,
        "conditions": [],
        "sample_percent": 100,
        "enabled": True,
    }
    if data["event_type"] in TEMPLATES:
        fields |= rule_from_template(project.id, data["event_type"], data["channel"])
    rule = TriggerRule(project_id=project.id, event_type=data["event_type"])
    _apply_fields(rule, fields | data)
    db.session.add(rule)
    db.session.commit()
    hot_cache.invalidate(RULES_BY_EVENT_TYPE)
    return rule


def update_rule(project_id: int, rule_id: int, data: dict[str, Any]) -> TriggerRule:
    """Change some fields of one of the project's rules and commit (404 for another project's id)."""
    rule = project_rule(project_id, rule_id)
    _apply_fields(rule, data)
    if data.get("reminders") is not None and reminder_plans.normalized(data["reminders"]) is None:
        # Reminders switched off ({"count": 0}): the ones not yet sent are cancelled with them.
        reminder_plans.cancel_for_source(project_id, trigger_id=rule.id)
    db.session.commit()
    hot_cache.invalidate(RULES_BY_EVENT_TYPE)
    return rule


def delete_rule(project_id: int, rule_id: int) -> None:
    """Delete one of the project's rules (requests it already scheduled stay scheduled; the reminders
    of its asks not yet sent are cancelled)."""
    rule = project_rule(project_id, rule_id)
    reminder_plans.cancel_for_source(project_id, trigger_id=rule.id)
    db.session.delete(rule)
    db.session.commit()
    reminder_plans.plans_changed()
    hot_cache.invalidate(RULES_BY_EVENT_TYPE)

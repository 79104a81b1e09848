"""Delighted's `unsubscribe.created` webhook: sent from RQ, after the unsubscribe commits, to the
project's Delighted-format alert rules that subscribe to it.

The webhook_deliveries table records response events only (its response id is required), so an
unsubscribe delivery has no row: the committed email_suppressions row is what the job re-reads,
RQ's `Retry` does the retries, and a delivery that never succeeds stays in RQ's failed-job
registry (kept for 30 days) where it can be requeued.
"""

from __future__ import annotations

import http.client
import logging
from datetime import datetime
from typing import Any

from redis import RedisError
from rq import Retry, get_current_job
from sqlalchemy import select

from .. import outbound
from ..extensions import db, queues
from ..models import AlertRule, EmailSuppression, Person
from .alerts import MAX_ATTEMPTS, RETRY_INTERVALS, DeliveryFailed, post_signed

log = logging.getLogger(__name__)

EVENT = "unsubscribe.created"
FAILED_JOB_TTL = 30 * 24 * 3600


def job_id(suppression_id: int, rule_id: int) -> str:
    """The deterministic RQ job id of one unsubscribe webhook to one rule."""
    return f"webhook-unsubscribe-{suppression_id}-{rule_id}"


def subscribed(rule: AlertRule) -> bool:
    """Whether a rule wants unsubscribe.created (only the Delighted format has a body for it)."""
    return rule.enabled and rule.format == "delighted" and EVENT in (rule.events or [])


def dispatch_unsubscribe_event(project_id: int, suppression_id: int) -> list[str]:
    """Enqueue the webhook of a committed unsubscribe for every subscribed rule; never raises."""
    try:
        rules = db.session.scalars(
            select(AlertRule).where(AlertRule.project_id == project_id, AlertRule.enabled.is_(True))
        ).all()
        rule_ids = [rule.id for rule in rules if subscribed(rule)]
    except Exception:
        db.session.rollback()
        log.exception("could not look up unsubscribe webhooks of project %s", project_id)
        return []
    queued = []
    for rule_id in rule_ids:
        try:
            queues().queue().enqueue(
                deliver_unsubscribe_webhook,
                suppression_id,
                rule_id,
                job_id=job_id(suppression_id, rule_id),
                retry=Retry(max=MAX_ATTEMPTS - 1, interval=RETRY_INTERVALS),
                failure_ttl=FAILED_JOB_TTL,
            )
        except RedisError:
            log.warning(
                "Redis unavailable: unsubscribe webhook %s is not sent", job_id(suppression_id, rule_id)
            )
            continue
        queued.append(job_id(suppression_id, rule_id))
    return queued


def unix(moment: datetime) -> int:
    """Seconds since the epoch, as Delighted's webhooks gave every time."""
    return int(moment.timestamp())


def unsubscribe_event(suppression: EmailSuppression, person: Person | None) -> dict[str, Any]:
    """Delighted's webhook body for an unsubscribe; the same on every retry (event_id is stable)."""
    return {
        "event_type": EVENT,
        "event_id": f"unsubscribe-{suppression.id}",
        "event_data": {
            "person_id": str(person.id) if person is not None else None,
            "email": suppression.email,
            "unsubscribed_at": unix(suppression.created_at),
        },
        "event_creation_timestamp": unix(suppression.created_at),
    }


def deliver_unsubscribe_webhook(suppression_id: int, rule_id: int) -> str:
    """RQ job: POST one unsubscribe.created webhook; raises DeliveryFailed so RQ retries it."""
    suppression = db.session.get(EmailSuppression, suppression_id)
    rule = db.session.get(AlertRule, rule_id)
    if suppression is None or rule is None or suppression.reason != "unsubscribed":
        return "skipped"
    if rule.project_id != suppression.project_id or not subscribed(rule):
        return "skipped"
    person = db.session.scalar(
        select(Person).where(Person.project_id == rule.project_id, Person.email == suppression.email)
    )
    document = unsubscribe_event(suppression, person)
    ref = job_id(suppression_id, rule_id)
    try:
        status: int | None = post_signed(rule, document, EVENT, ref)
        error = f"HTTP {status}"
    except outbound.BlockedTarget as exc:
        log.warning("unsubscribe webhook %s blocked: %s", ref, exc)
        return "blocked"
    except (OSError, http.client.HTTPException) as exc:
        status, error = None, f"{exc.__class__.__name__}: {exc}"[:300]
    if status is not None and 200 <= status < 300:
        return "delivered"
    job = get_current_job()
    attempt = MAX_ATTEMPTS - (job.retries_left or 0) if job is not None else 1
    log.warning("unsubscribe webhook %s: attempt %d of %d failed: %s", ref, attempt, MAX_ATTEMPTS, error)
    raise DeliveryFailed(f"unsubscribe webhook {ref}: {error}")

"""Delighted's webhook format: the `survey_response.created/updated` bodies and signature header of the
"delighted" alert format, and the `unsubscribe.created` webhook, sent from RQ after the unsubscribe
commits to the project's Delighted-format alert rules that subscribe to it. `register()` plugs both
into the domain services (services/hooks.py), which never import this package.

The webhook_deliveries table records response events only (its response id is required), so an
unsubscribe delivery has no row: the committed email_suppressions row is what the job re-reads,
RQ's `Retry` does the retries, and a delivery that never succeeds stays in RQ's failed-job
registry (kept for 30 days) where it can be requeued. Every job's hash outlives the relay's
one-day window, so the relay can tell an unsubscribe whose webhook never reached Redis.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import logging
import time
from datetime import datetime, timedelta
from typing import Any

from redis import RedisError
from rq import Retry, get_current_job
from rq.job import Job
from sqlalchemy import select

from survey_service.core import clock, outbound
from survey_service.delighted.serialize import response_json
from survey_service.delighted.service import activity_of
from survey_service.extensions import WEBHOOK_QUEUE, db, queues
from survey_service.models import AlertRule, EmailSuppression, Person, Response, WebhookDelivery
from survey_service.services import hooks
from survey_service.services.alerts import (
    MAX_ATTEMPTS,
    RETRY_INTERVALS,
    DeliveryFailed,
    job_timeout,
    post_signed,
)

log = logging.getLogger(__name__)

EVENT = "unsubscribe.created"
SIGNATURE_HEADER = "X-Delighted-Webhook-Signature"
FAILED_JOB_TTL = 30 * 24 * 3600
RELAY_WINDOW = timedelta(days=1)
RELAY_AFTER = timedelta(seconds=60)  # an unsubscribe younger than this may still be enqueueing
RELAY_EVERY = 60.0
RESULT_TTL = int((RELAY_WINDOW + timedelta(hours=1)).total_seconds())
_next_relay_at = 0.0


def register() -> None:
    """Plug Delighted's format and unsubscribe.created into the alerts, suppressions, privacy and relay."""
    formats = hooks.webhook_formats
    formats["delighted"] = hooks.WebhookFormat(document=response_event, headers=signature_headers)
    hooks.unsubscribe_listeners["delighted"] = dispatch_unsubscribe_event
    hooks.suppression_job_ids["delighted"] = lambda suppressions, rules: [
        job_id(s, r) for s in suppressions for r in rules
    ]
    hooks.relay_tasks["delighted"] = relay_unsent


def response_event(delivery: WebhookDelivery, response: Response) -> dict[str, Any]:
    """Delighted's webhook body: event_type, event_id and the survey response with its person."""
    kind = "created" if delivery.event == "response.created" else "updated"
    return {
        "event_type": f"survey_response.{kind}",
        "event_id": str(delivery.id),
        "event_data": response_json(
            response, "nps", seen=activity_of(response.project_id, response.person_id)
        ),
    }


def signature_headers(secret: str, body: bytes) -> dict[str, str]:
    """Delighted's `sha256=<hex HMAC-SHA256 of the raw body>` with the rule's secret, in its own header."""
    return {SIGNATURE_HEADER: "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


def job_id(suppression_id: int, rule_id: int) -> str:
    """The deterministic RQ job id of one unsubscribe webhook to one rule."""
    return f"webhook-unsubscribe-{suppression_id}-{rule_id}"


def subscribed(rule: AlertRule) -> bool:
    """Whether a rule wants unsubscribe.created (only the Delighted format has a body for it)."""
    return rule.enabled and rule.format == "delighted" and EVENT in (rule.events or [])


def enqueue_delivery(project_id: int, suppression_id: int, rule_id: int) -> None:
    """Queue one webhook (deterministic job id, RQ retries); RedisError propagates."""
    queues().queue(WEBHOOK_QUEUE).enqueue(
        deliver_unsubscribe_webhook,
        suppression_id,
        rule_id,
        job_id=job_id(suppression_id, rule_id),
        retry=Retry(max=MAX_ATTEMPTS - 1, interval=RETRY_INTERVALS),
        job_timeout=job_timeout(),
        result_ttl=RESULT_TTL,
        failure_ttl=FAILED_JOB_TTL,
        meta={"project_id": project_id},  # the project's failed-jobs listing finds it by this
    )


def dispatch_unsubscribe_event(project_id: int, suppression_id: int) -> int:
    """Enqueue the webhooks of a committed unsubscribe for every subscribed rule; never raises."""
    try:
        rules = db.session.scalars(
            select(AlertRule).where(AlertRule.project_id == project_id, AlertRule.enabled.is_(True))
        ).all()
        rule_ids = [rule.id for rule in rules if subscribed(rule)]
    except Exception:
        db.session.rollback()
        log.exception("could not look up unsubscribe webhooks of project %s", project_id)
        return 0
    for done, rule_id in enumerate(rule_ids):
        try:
            enqueue_delivery(project_id, suppression_id, rule_id)
        except RedisError:
            left = len(rule_ids) - done
            log.warning("Redis unavailable: %d unsubscribe webhook(s) left to the relay", left)
            return done
    return len(rule_ids)


def relay_unsent(now: datetime | None = None, every: float = RELAY_EVERY) -> int:
    """Enqueue the unsubscribe webhooks of the last day that never reached Redis; at most once per `every` s.

    Redis was down at the unsubscribe, or lost its jobs. A Redis emptied after a delivery makes it
    send again; receivers drop the repeat by its event_id. RedisError propagates.
    """
    global _next_relay_at
    if time.monotonic() < _next_relay_at:
        return 0
    _next_relay_at = time.monotonic() + every
    now = now or clock.now()
    pairs = db.session.execute(
        select(EmailSuppression.id, AlertRule)
        .join(AlertRule, AlertRule.project_id == EmailSuppression.project_id)
        .where(
            EmailSuppression.reason == "unsubscribed",
            EmailSuppression.created_at >= now - RELAY_WINDOW,
            EmailSuppression.created_at < now - RELAY_AFTER,
            AlertRule.format == "delighted",
            AlertRule.enabled.is_(True),
            # A rule added later does not get the unsubscribes from before it.
            AlertRule.created_at <= EmailSuppression.created_at,
        )
        .order_by(EmailSuppression.id)
    ).all()
    wanted = [
        (rule.project_id, suppression_id, rule.id) for suppression_id, rule in pairs if subscribed(rule)
    ]
    lost = []
    for start in range(0, len(wanted), 1000):
        chunk = wanted[start : start + 1000]
        pipe = queues().redis.pipeline(transaction=False)
        for _, suppression_id, rule_id in chunk:
            pipe.exists(Job.key_for(job_id(suppression_id, rule_id)))
        lost += [pair for pair, found in zip(chunk, pipe.execute(), strict=True) if not found]
    for project_id, suppression_id, rule_id in lost:
        enqueue_delivery(project_id, suppression_id, rule_id)
    return len(lost)


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
    if suppression.email is None:
        return "skipped"  # the person was erased: there is no address left to announce
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

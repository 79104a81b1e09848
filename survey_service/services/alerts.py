"""Alert rules and signed webhooks: match responses, record deliveries, send them from RQ with retries."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import re
import secrets
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

from flask import current_app
from redis import RedisError
from rq import Retry
from sqlalchemy import func, select

from survey_service.core import clock, cursors, hot_cache, keys, outbound
from survey_service.errors import ApiError
from survey_service.extensions import WEBHOOK_QUEUE, db, queues
from survey_service.mail.headers import header_safe
from survey_service.mail.log_only import log_unsent
from survey_service.mail.smtp import DeliveryError, deliver, parse_smtp_url
from survey_service.models import AlertRule, Person, Project, Response, WebhookDelivery
from survey_service.services import hooks
from survey_service.services.outbox import job_alive

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
RETRY_INTERVALS = [10, 60, 300, 1800]  # seconds between attempts 1→2, 2→3, …
# A delivery still waiting this long after it was recorded, with no job in Redis, is enqueued again.
RELAY_AFTER = timedelta(seconds=60)
SIGNATURE_HEADER = "X-Survey-Signature"
# RQ kills a webhook job this long after its delivery deadline: the backstop for what the deadline does
# not cover (a name server that answers slowly).
JOB_TIMEOUT_MARGIN = 30


class DeliveryFailed(RuntimeError):
    """The target answered with an error or could not be reached: RQ retries the job."""


def _allow_private() -> bool:
    return bool(current_app.config.get("WEBHOOK_ALLOW_PRIVATE_TARGETS"))


def _allowed_ports() -> frozenset[int] | None:
    ports: frozenset[int] | None = current_app.config.get("WEBHOOK_ALLOWED_PORTS", outbound.DEFAULT_PORTS)
    return ports


def _deadline() -> float:
    return float(current_app.config.get("WEBHOOK_DEADLINE_SECONDS", 10.0))


def job_timeout() -> int:
    """The RQ timeout of one webhook job: the delivery deadline plus a margin."""
    return int(_deadline()) + JOB_TIMEOUT_MARGIN


def _check_rule_count(project_id: int) -> None:
    """Refuse a rule beyond MAX_ALERT_RULES: each one is a delivery per matching response."""
    limit = int(current_app.config.get("MAX_ALERT_RULES", 20))
    # Lock the project row (PostgreSQL): two creates at once cannot both take the last place.
    db.session.execute(select(Project.id).where(Project.id == project_id).with_for_update())
    count = db.session.scalar(select(func.count()).where(AlertRule.project_id == project_id)) or 0
    if count >= limit:
        db.session.rollback()
        why = f"A project has at most {limit} alert rules; delete one first."
        raise ApiError(409, "limit_reached", why, {"limit": limit})


def create_rule(project_id: int, data: dict[str, Any]) -> tuple[AlertRule, str]:
    """Create an alert rule after checking its target; return it with its signing secret (shown once)."""
    _check_target(data.get("format", "webhook"), data["target_url"])
    _check_rule_count(project_id)
    secret = "whsec_" + secrets.token_urlsafe(32)
    rule = AlertRule(
        project_id=project_id,
        name=data["name"],
        target_url=data["target_url"],
        format=data.get("format", "webhook"),
        secret_encrypted=keys.encrypt_secret(
            secret, current_app.config["SECRET_KEY"], purpose=keys.WEBHOOK_SECRET
        ),
        max_score=data.get("max_score"),
        categories=list(data.get("categories") or []),
        require_comment=bool(data.get("require_comment")),
        events=list(data.get("events") or ["response.created"]),
        enabled=data.get("enabled", True),
    )
    db.session.add(rule)
    db.session.commit()
    hot_cache.invalidate(ENABLED_RULES)
    return rule, secret


def _check_target(format_: str, target_url: str) -> None:
    """An email rule needs mailto:<address> or mailto:owner; others a public http(s) URL (SSRF guard)."""
    if format_ == "email":
        if email_target(target_url) is None:
            why = "An email alert's target is mailto:<one address> or mailto:owner."
            raise ApiError(422, "validation_error", why, {"target_url": [why]})
        return
    try:
        _, host, port = outbound.check_url(target_url, _allowed_ports())
        outbound.resolve_target(host, port, _allow_private())
    except outbound.BlockedTarget as exc:
        raise ApiError(422, "validation_error", str(exc), {"target_url": [str(exc)]}) from None


EDITABLE = ("name", "target_url", "format", "max_score", "categories", "require_comment", "events", "enabled")


def update_rule(project_id: int, rule_id: int, changes: dict[str, Any]) -> AlertRule:
    """Change some of a rule's fields; the result must be as valid as a new rule. The secret stays."""
    rule = project_rule(project_id, rule_id)
    merged = {name: getattr(rule, name) for name in EDITABLE} | changes
    if "unsubscribe.created" in (merged["events"] or []) and merged["format"] != "delighted":
        why = "unsubscribe.created is sent in Delighted's format only."
        raise ApiError(422, "validation_error", why, {"events": [why]})
    if "target_url" in changes or "format" in changes:
        _check_target(merged["format"], merged["target_url"])
    for name, value in changes.items():
        setattr(rule, name, list(value) if isinstance(value, list | tuple) else value)
    db.session.commit()
    hot_cache.invalidate(ENABLED_RULES)
    return rule


def project_rule(project_id: int, rule_id: int) -> AlertRule:
    """One of the project's rules, or 404."""
    rule = db.session.scalar(
        select(AlertRule).where(AlertRule.id == rule_id, AlertRule.project_id == project_id)
    )
    if rule is None:
        raise ApiError(404, "not_found", "No such alert rule.")
    return rule


def list_rules(
    project_id: int, *, limit: int, cursor: str | None = None
) -> tuple[list[AlertRule], str | None]:
    """One page of the project's alert rules, oldest first, and the cursor of the next."""
    query = select(AlertRule).where(AlertRule.project_id == project_id)
    return cursors.page(
        query, [AlertRule.id], scope=f"alert_rules:{project_id}", limit=limit, cursor=cursor, descending=False
    )


def delete_rule(project_id: int, rule_id: int) -> None:
    """Delete a rule (its deliveries go with it)."""
    db.session.delete(project_rule(project_id, rule_id))
    db.session.commit()
    hot_cache.invalidate(ENABLED_RULES)


def rule_deliveries(
    project_id: int, rule_id: int, *, limit: int, cursor: str | None = None
) -> tuple[list[WebhookDelivery], str | None]:
    """One page of a rule's deliveries, newest first, and the cursor of the next (scoped to the rule)."""
    rule = project_rule(project_id, rule_id)
    query = select(WebhookDelivery).where(WebhookDelivery.rule_id == rule.id)
    scope = f"deliveries:{project_id}:{rule.id}"
    return cursors.page(query, [WebhookDelivery.id], scope=scope, limit=limit, cursor=cursor)


def matches(rule: AlertRule, response: Response, event: str) -> bool:
    """Whether a response event meets every condition the rule sets."""
    if not rule.enabled or event not in (rule.events or []):
        return False
    if rule.max_score is not None and response.score > rule.max_score:
        return False
    if rule.categories and response.category not in rule.categories:
        return False
    return not (rule.require_comment and not (response.comment or "").strip())


# core/hot_cache's cache of a project's enabled rules.
ENABLED_RULES = "alert_rules"


def enabled_rules(project_id: int) -> tuple[AlertRule, ...]:
    """The project's enabled rules, read again at most every HOT_CACHE_SECONDS (most projects have none,
    and every response asked). Detached and shared read-only; a change here clears the cache at once."""
    return hot_cache.cached(ENABLED_RULES, project_id, lambda: _enabled_rules(project_id))


def _enabled_rules(project_id: int) -> tuple[AlertRule, ...]:
    rules = tuple(
        db.session.scalars(
            select(AlertRule).where(AlertRule.project_id == project_id, AlertRule.enabled.is_(True))
        )
    )
    for rule in rules:
        db.session.expunge(rule)  # a rollback of this session must not expire what other requests read
    return rules


def dispatch_response_event(project_id: int, response_id: int, event: str) -> list[int]:
    """Record a delivery for every matching rule, commit, then enqueue them; never raises to the caller."""
    try:
        rules = enabled_rules(project_id)
        if not rules:
            return []
        response = db.session.get(Response, response_id)
        if response is None:
            return []
        deliveries = [
            WebhookDelivery(project_id=project_id, rule_id=rule.id, response_id=response_id, event=event)
            for rule in rules
            if matches(rule, response, event)
        ]
        if not deliveries:
            return []
        db.session.add_all(deliveries)
        db.session.commit()
    except Exception:
        db.session.rollback()
        log.exception("could not record webhook deliveries for response %s", response_id)
        return []
    ids = [d.id for d in deliveries]
    for delivery_id in ids:
        enqueue_delivery(delivery_id)
    return ids


OWNER = "owner"
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Where "mailto:owner" looks for the owner: the response's follow-up owner, then these server-set properties.
OWNER_PROPERTIES = ("owner", "csm", "account_owner")
# An email alert's fixed target: exactly one plain address (no list separators, display names, quotes
# or line breaks that would add recipients or headers).
SINGLE_ADDRESS = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@(?=.{4,255}$)"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+"
)


def email_target(target_url: str) -> str | None:
    """An email rule's target: OWNER, or its one address; None when it is neither."""
    target = target_url.removeprefix("mailto:")
    if target == OWNER or SINGLE_ADDRESS.fullmatch(target):
        return target
    return None


def owner_email(response: Response, person: Person) -> str | None:
    """The email of whoever owns this customer, if the response's follow-up or the person's properties say.

    Only server-set data routes: the follow-up owner (set through the API or dashboard) and person.properties
    (the product's server), never the response's frozen properties, which include what a browser sent.
    """
    props = person.properties or {}
    for value in (response.followup_owner, *(props.get(name) for name in OWNER_PROPERTIES)):
        if isinstance(value, str) and EMAIL.match(value.strip()):
            return value.strip()
    return None


def alert_email(rule: AlertRule, response: Response, person: Person, to: str) -> EmailMessage:
    """A plain-text alert email: who answered what, the comment, and where to follow up."""
    from email.utils import formataddr

    project = db.session.get(Project, rule.project_id)
    who = person.name or person.email or person.external_id or f"person {person.id}"
    msg = EmailMessage()
    msg["From"] = formataddr(
        (header_safe(project.name) if project else "Surveys", current_app.config["MAIL_FROM"])
    )
    msg["To"] = to
    # Names are user input: a line break in a header would make the message unsendable.
    msg["Subject"] = header_safe(f"{rule.name}: {who} answered {response.score} ({response.category})")
    lines = [
        f"{who} <{person.email or '-'}> answered {response.score} ({response.category}).",
        "",
        f"Comment: {response.comment}" if response.comment else "No comment.",
        "",
        f"Follow up: {current_app.config['BASE_URL']}/dashboard",
    ]
    msg.set_content("\n".join(lines))
    return msg


def _deliver_email(delivery: WebhookDelivery, rule: AlertRule, response: Response, person: Person) -> str:
    """Send an email alert (to a fixed address or the customer's owner); raises to retry."""
    target = email_target(rule.target_url)
    delivery.attempts += 1
    if target is None:  # a rule stored before targets were checked this strictly
        delivery.status, delivery.last_error = "failed", "the target is not one email address"
        db.session.commit()
        return "failed"
    to = owner_email(response, person) if target == OWNER else target
    if to is None:
        delivery.status, delivery.last_error = "failed", "no owner email on the response or the person"
        db.session.commit()
        return "no_owner"
    smtp_url = current_app.config.get("SMTP_URL")
    try:
        message = alert_email(rule, response, person, to)
    except (ValueError, TypeError):
        # The same data fails the same way on every retry: fail it once instead of retrying forever.
        log.exception("alert email of delivery %s could not be composed", delivery.id)
        delivery.status, delivery.last_error = "failed", "the alert email could not be composed"
        db.session.commit()
        return "failed"
    if not smtp_url:
        # Kept under instance/outbox/, not sent: say so rather than "delivered".
        log_unsent(log, message, f"alert-{delivery.id}", "alert email")
        delivery.status, delivery.delivered_at, delivery.last_error = "logged", None, None
        db.session.commit()
        return "logged"
    try:
        deliver(message, parse_smtp_url(smtp_url))
    except DeliveryError as exc:
        delivery.last_error = str(exc)[:300]
        if exc.permanent or delivery.attempts >= MAX_ATTEMPTS:
            delivery.status = "failed"
            db.session.commit()
            return "failed"
        delivery.status = "retrying"
        db.session.commit()
        raise DeliveryFailed(f"delivery {delivery.id}: {delivery.last_error}") from exc
    delivery.status, delivery.delivered_at, delivery.last_error = "delivered", clock.now(), None
    db.session.commit()
    return "delivered"


def relay_pending(now: datetime | None = None) -> int:
    """Enqueue deliveries left waiting with no job in Redis (down at dispatch, or restarted empty)."""
    now = now or clock.now()
    waiting = db.session.scalars(
        select(WebhookDelivery.id)
        .where(
            WebhookDelivery.status.in_(("pending", "retrying")),
            WebhookDelivery.created_at < now - RELAY_AFTER,
        )
        .order_by(WebhookDelivery.id)
        .limit(500)
    ).all()
    lost = [delivery_id for delivery_id in waiting if not job_alive(f"webhook-delivery-{delivery_id}")]
    for delivery_id in lost:
        enqueue_delivery(delivery_id)
    return len(lost)


def enqueue_delivery(delivery_id: int) -> None:
    """Queue the send after the delivery row is committed; a Redis outage leaves it pending, logged."""
    try:
        queues().queue(WEBHOOK_QUEUE).enqueue(
            deliver_webhook,
            delivery_id,
            job_id=f"webhook-delivery-{delivery_id}",
            retry=Retry(max=MAX_ATTEMPTS - 1, interval=RETRY_INTERVALS),
            job_timeout=job_timeout(),
        )
    except RedisError:
        log.warning("Redis unavailable: webhook delivery %s stays pending", delivery_id)


def payload(delivery: WebhookDelivery, rule: AlertRule, response: Response, person: Person) -> dict[str, Any]:
    """The JSON body of a webhook."""
    return {
        "id": delivery.id,
        "event": delivery.event,
        "created_at": delivery.created_at.isoformat().replace("+00:00", "Z"),
        "project_id": delivery.project_id,
        "rule": {"id": rule.id, "name": rule.name},
        "response": {
            "id": response.id,
            "score": response.score,
            "category": response.category,
            "comment": response.comment,
            "channel": response.channel,
            "properties": response.properties or {},
            "created_at": response.created_at.isoformat().replace("+00:00", "Z"),
            "followup_status": response.followup_status,
            "followup_owner": response.followup_owner,
            "followup_tags": response.followup_tags or [],
            "person": {
                "id": person.id,
                "email": person.email,
                "name": person.name,
                "external_id": person.external_id,
            },
        },
    }


def slack_message(delivery: WebhookDelivery, response: Response, person: Person) -> dict[str, Any]:
    """Slack's incoming-webhook format: a text fallback plus one section block (mrkdwn, user text escaped)."""

    def esc(text: str) -> str:
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    who = esc(person.name or person.email or person.external_id or f"person {person.id}")
    verb = "answered" if delivery.event == "response.created" else "updated their answer"
    text = f"{who} {verb}: *{response.score}* ({response.category})"
    if response.comment:
        text += "\n> " + esc(response.comment[:1500]).replace("\n", "\n> ")
    return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """`t=<unix time>,v1=<hex HMAC-SHA256 of "<t>." + body>`: receivers recompute it and check t is recent."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def post_signed(rule: AlertRule, document: dict[str, Any], event: str, delivery_ref: str) -> int:
    """POST a JSON document signed with the rule's secret (and Delighted's header for that format).

    Returns the HTTP status; raises outbound.BlockedTarget, OSError or HTTPException.
    """
    cfg = current_app.config
    secret = keys.decrypt_secret(
        rule.secret_encrypted, cfg["SECRET_KEY"], cfg["SECRET_KEY_FALLBACKS"], purpose=keys.WEBHOOK_SECRET
    )
    body = json.dumps(document, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "survey-service-webhooks/1",
        "X-Survey-Event": event,
        "X-Survey-Delivery": delivery_ref,
        SIGNATURE_HEADER: signature(secret, int(clock.real_now().timestamp()), body),
    }
    if rule.format in hooks.webhook_formats:
        headers.update(hooks.webhook_formats[rule.format].headers(secret, body))
    return outbound.post(
        rule.target_url,
        body,
        headers,
        timeout=cfg.get("WEBHOOK_TIMEOUT", 5.0),
        allow_private=_allow_private(),
        deadline=_deadline(),
        allowed_ports=_allowed_ports(),
    )


def deliver_webhook(delivery_id: int) -> str:
    """RQ job: send one delivery; idempotent (a finished one is left alone); raises to retry."""
    delivery = db.session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.status in ("delivered", "logged", "failed"):
        return "skipped"
    rule = db.session.get(AlertRule, delivery.rule_id)
    response = db.session.get(Response, delivery.response_id)
    person = db.session.get(Person, response.person_id) if response is not None else None
    if rule is None or response is None or person is None:
        delivery.status, delivery.last_error = "failed", "the rule or response no longer exists"
        db.session.commit()
        return "failed"
    if rule.format == "email":
        return _deliver_email(delivery, rule, response, person)
    if rule.format == "slack":
        document = slack_message(delivery, response, person)
    elif rule.format in hooks.webhook_formats:  # "delighted", registered by delighted/webhooks.py
        document = hooks.webhook_formats[rule.format].document(delivery, response)
    else:
        document = payload(delivery, rule, response, person)
    delivery.attempts += 1
    error: str | None = None
    try:
        status = post_signed(rule, document, delivery.event, str(delivery.id))
    except outbound.BlockedTarget as exc:
        delivery.status, delivery.last_error = "failed", str(exc)[:300]
        db.session.commit()
        return "blocked"
    except (OSError, http.client.HTTPException) as exc:
        status, error = None, f"{exc.__class__.__name__}: {exc}"[:300]
    delivery.last_status_code = status
    if status is not None and 200 <= status < 300:
        delivery.status, delivery.delivered_at, delivery.last_error = "delivered", clock.now(), None
        db.session.commit()
        return "delivered"
    delivery.last_error = error or f"HTTP {status}"
    if delivery.attempts >= MAX_ATTEMPTS:
        delivery.status = "failed"
        db.session.commit()
        return "failed"
    delivery.status = "retrying"
    db.session.commit()
    raise DeliveryFailed(f"delivery {delivery_id}: {delivery.last_error}")

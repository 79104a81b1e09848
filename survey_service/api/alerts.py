"""Alert rule endpoints: signed webhooks when a response matches (close the loop)."""

from __future__ import annotations

from typing import Any

from survey_service.api import api_blueprint, current_project_id
from survey_service.schemas.alerts import (
    AlertRuleCreated,
    AlertRuleIn,
    AlertRuleList,
    AlertRuleOut,
    AlertRulePatch,
    WebhookDeliveryList,
)
from survey_service.schemas.common import PageQuery
from survey_service.services import alerts

bp = api_blueprint("alerts", __name__, "Alert rules delivered by signed webhook")


@bp.post("/alert_rules")
@bp.arguments(AlertRuleIn)
@bp.response(201, AlertRuleCreated)
def create_alert_rule(data: dict[str, Any]) -> dict[str, Any]:
    """Create a rule; the answer carries the signing secret, shown only this once."""
    rule, secret = alerts.create_rule(current_project_id(), data)
    return {**{name: getattr(rule, name) for name in AlertRuleOut._declared_fields}, "secret": secret}


@bp.get("/alert_rules")
@bp.arguments(PageQuery, location="query")
@bp.response(200, AlertRuleList)
def list_alert_rules(query: dict[str, Any]) -> dict[str, Any]:
    """List the project's alert rules, oldest first, with cursor paging."""
    rows, next_cursor = alerts.list_rules(current_project_id(), **query)
    return {"data": rows, "next_cursor": next_cursor}


@bp.get("/alert_rules/<int:rule_id>")
@bp.response(200, AlertRuleOut)
def get_alert_rule(rule_id: int) -> Any:
    """One rule (never its secret)."""
    return alerts.project_rule(current_project_id(), rule_id)


@bp.patch("/alert_rules/<int:rule_id>")
@bp.arguments(AlertRulePatch)
@bp.response(200, AlertRuleOut)
def update_alert_rule(data: dict[str, Any], rule_id: int) -> Any:
    """Change a rule: conditions, target, format, events, or pause it with `enabled: false`."""
    return alerts.update_rule(current_project_id(), rule_id, data)


@bp.delete("/alert_rules/<int:rule_id>")
@bp.response(204)
def delete_alert_rule(rule_id: int) -> None:
    """Delete a rule and its delivery log."""
    alerts.delete_rule(current_project_id(), rule_id)


@bp.get("/alert_rules/<int:rule_id>/deliveries")
@bp.arguments(PageQuery, location="query")
@bp.response(200, WebhookDeliveryList)
def list_deliveries(query: dict[str, Any], rule_id: int) -> dict[str, Any]:
    """A rule's deliveries, newest first, with status, attempts and the last error; cursor paging."""
    rows, next_cursor = alerts.rule_deliveries(current_project_id(), rule_id, **query)
    return {"data": rows, "next_cursor": next_cursor}

"""Extension points: how a feature package adds to the domain services without the services importing it.

The Delighted compatibility layer (delighted/) registers its webhook format and its `unsubscribe.created`
event here when the app is created (delighted.init_app); every process runs create_app first (web,
worker, CLI). Hooks are keyed by name, so registering again replaces rather than duplicates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from survey_service.models import Response, WebhookDelivery


@dataclass(frozen=True)
class WebhookFormat:
    """A body format of alert webhooks, chosen by AlertRule.format (beside the built-in ones in alerts.py)."""

    # The JSON document of a response.created/updated delivery.
    document: Callable[[WebhookDelivery, Response], dict[str, Any]]
    # Extra signature headers, from the rule's secret and the exact body sent.
    headers: Callable[[str, bytes], dict[str, str]]


webhook_formats: dict[str, WebhookFormat] = {}
# (project_id, suppression_id) of a committed unsubscribe; must not raise.
unsubscribe_listeners: dict[str, Callable[[int, int], object]] = {}
# RQ job ids queued for (suppression ids, alert rule ids): cancelled when a person is erased.
suppression_job_ids: dict[str, Callable[[list[int], list[int]], list[str]]] = {}
# Run by each relay pass (services/relay.py); each returns how many jobs it enqueued.
relay_tasks: dict[str, Callable[[], int]] = {}

"""Where a reminder goes: by email, in the product (the widget saw the person recently), or both.

Minimal version (the in-app fallback's own helper owns the full one): the plan's mode decides, and a
person counts as present when the widget identified them within the plan's `in_app_window_days`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from survey_service.models import Person

EMAIL = ("email",)


def channels_for(plan: dict[str, Any], person: Person, now: datetime) -> tuple[str, ...]:
    """The channels of a reminder step due now: a subset of ("email", "in_app"), never empty."""
    mode = plan.get("mode", "email")
    if mode == "email":
        return EMAIL
    seen = person.widget_seen_at
    window = timedelta(days=int(plan.get("in_app_window_days", 7)))
    if seen is None or seen < now - window:
        return EMAIL
    return ("in_app",) if mode == "in_app_first" else ("email", "in_app")

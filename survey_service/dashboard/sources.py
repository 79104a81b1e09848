"""The dashboard's event sources page: each source, its URL, when it last received, its recent failures."""

from __future__ import annotations

from typing import Any

from flask import render_template

from survey_service.dashboard.auth import admin_required, current_user
from survey_service.reporting.dashboard import project_of
from survey_service.sources.service import list_sources, recent_failures, source_url


@admin_required
def sources() -> Any:
    """List the project's event sources (admins: a source's URL is half of what a delivery needs)."""
    user = current_user()
    assert user is not None
    found = list_sources(user.project_id)
    failures = recent_failures([source.id for source in found])
    rows = [
        {"source": source, "url": source_url(source), "failures": failures[source.id]} for source in found
    ]
    return render_template(
        "dashboard_sources.html", user=user, project=project_of(user.project_id), rows=rows
    )

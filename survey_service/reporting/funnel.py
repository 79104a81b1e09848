"""The funnel per channel: requests → sent → delivered → opened → clicked → responded (one GROUP BY)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from survey_service.extensions import db
from survey_service.models import RequestStatus, SurveyRequest


def funnel_by_channel(
    project_id: int, since: datetime | None = None, until: datetime | None = None
) -> list[dict[str, Any]]:
    """Counts of each funnel step per channel, with the response rate (responded / sent)."""
    where: list[Any] = [SurveyRequest.project_id == project_id]
    if since:
        where.append(SurveyRequest.created_at >= since)
    if until:
        where.append(SurveyRequest.created_at < until)
    rows = db.session.execute(
        select(
            SurveyRequest.channel,
            func.count().label("requests"),
            func.count(SurveyRequest.sent_at).label("sent"),
            func.count(SurveyRequest.delivered_at).label("delivered"),
            func.count(SurveyRequest.opened_at).label("opened"),
            func.count(SurveyRequest.clicked_at).label("clicked"),
            func.count(SurveyRequest.responded_at).label("responded"),
            func.count().filter(SurveyRequest.status == RequestStatus.BOUNCED).label("bounced"),
        )
        .where(*where)
        .group_by(SurveyRequest.channel)
        .order_by(SurveyRequest.channel)
    ).all()
    return [
        {
            "channel": row.channel,
            "requests": row.requests,
            "sent": row.sent,
            "delivered": row.delivered,
            "opened": row.opened,
            "clicked": row.clicked,
            "responded": row.responded,
            "bounced": row.bounced,
            "response_rate": round(100 * row.responded / row.sent, 1) if row.sent else None,
        }
        for row in rows
    ]

"""The funnel per channel (requests → sent → delivered → opened → clicked → responded) and per campaign."""

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


# How campaign progress groups the request statuses.
CAMPAIGN_STEPS: dict[str, tuple[str, ...]] = {
    "queued": (RequestStatus.PENDING, RequestStatus.SCHEDULED),
    "sending": (RequestStatus.SENDING,),
    "sent": (RequestStatus.SENT, RequestStatus.RESPONDED, RequestStatus.DISMISSED),
    "failed": (RequestStatus.FAILED, RequestStatus.BOUNCED),
    "skipped": (
        RequestStatus.SKIPPED,
        RequestStatus.SUPPRESSED,
        RequestStatus.EXPIRED,
        RequestStatus.CANCELLED,
        RequestStatus.SUPERSEDED,
    ),
}


def campaign_progress(project_id: int, campaign: str | None = None, limit: int = 5) -> list[dict[str, Any]]:
    """Per campaign (newest first; one when named): requests queued, sending, sent, failed, skipped.

    One GROUP BY over the campaign index. `done` is the share no longer queued or sending.
    """
    where: list[Any] = [SurveyRequest.project_id == project_id, SurveyRequest.campaign.is_not(None)]
    if campaign is not None:
        where.append(SurveyRequest.campaign == campaign)
    steps = [
        func.count().filter(SurveyRequest.status.in_(statuses)).label(step)
        for step, statuses in CAMPAIGN_STEPS.items()
    ]
    rows = db.session.execute(
        select(
            SurveyRequest.campaign,
            func.min(SurveyRequest.created_at).label("started_at"),
            func.max(SurveyRequest.delivered_at).label("last_sent_at"),
            func.count().label("requests"),
            func.count(SurveyRequest.responded_at).label("responded"),
            *steps,
        )
        .where(*where)
        .group_by(SurveyRequest.campaign)
        .order_by(func.min(SurveyRequest.created_at).desc())
        .limit(limit)
    ).all()
    out = []
    for row in rows:
        counts = {step: int(getattr(row, step)) for step in CAMPAIGN_STEPS}
        waiting = counts["queued"] + counts["sending"]
        out.append(
            {
                "campaign": row.campaign,
                "started_at": row.started_at,
                "last_sent_at": row.last_sent_at,
                "requests": row.requests,
                **counts,
                "responded": row.responded,
                "done": round(1 - waiting / row.requests, 4) if row.requests else 1.0,
                "response_rate": round(100 * row.responded / counts["sent"], 1) if counts["sent"] else None,
            }
        )
    return out

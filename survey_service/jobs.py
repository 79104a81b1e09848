"""RQ job functions: primitive arguments, re-read state from the database, safe to run twice."""

from __future__ import annotations

from rq import get_current_job

from survey_service.services.email_sends import send_due, send_request
from survey_service.themes import service as themes


def _is_last_attempt() -> bool | None:
    """True on the job's last try, False when RQ will retry, None outside a worker."""
    job = get_current_job()
    if job is None:
        return None
    return not job.retries_left


def send_survey_email(request_id: int) -> str:
    """Send one request's survey email at most once (with other due ones, in batches); returns a status.

    A temporary failure of this request raises, so RQ retries the job (services/email_sends.py).
    """
    return send_request(request_id, _is_last_attempt())


def send_due_emails() -> int:
    """A wake-up: send the due email requests nobody has claimed, in batches; returns how many it claimed."""
    return send_due()


def reapply_themes(project_id: int) -> int:
    """Apply a project's current theme rules to all its comments (after a rule change); idempotent."""
    return themes.reapply(project_id)

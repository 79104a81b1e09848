"""RQ's failed-job registry, read per project (for the API) or whole (for the operator's CLI)."""

from __future__ import annotations

from typing import Any

from flask import current_app
from rq.job import Job
from rq.registry import FailedJobRegistry

from survey_service.extensions import queues


def failed_jobs(project_id: int | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """The failed jobs (newest registry entries first), optionally only one project's."""
    handle = queues()
    ids = [
        job_id
        for name in current_app.config["RQ_QUEUES"]
        for job_id in reversed(FailedJobRegistry(queue=handle.queue(name)).get_job_ids())
    ]
    rows: list[dict[str, Any]] = []
    for job in Job.fetch_many(ids, connection=handle.redis):
        if job is None or (project_id is not None and job.meta.get("project_id") != project_id):
            continue
        result = job.latest_result()
        error = (result.exc_string if result is not None else "") or ""
        rows.append(
            {
                "job_id": job.id,
                "queue": job.origin,
                "request_id": job.meta.get("request_id"),
                "function": job.func_name,
                "failed_at": job.ended_at,
                # Only the last line: the exception type and message, never the whole traceback.
                "error": error.strip().splitlines()[-1] if error.strip() else "",
            }
        )
        if len(rows) >= limit:
            break
    return rows


def requeue_failed(project_id: int | None = None) -> int:
    """Put failed jobs back on their queue; returns how many."""
    handle = queues()
    count = 0
    for row in failed_jobs(project_id):
        FailedJobRegistry(queue=handle.queue(row["queue"])).requeue(row["job_id"])
        count += 1
    return count

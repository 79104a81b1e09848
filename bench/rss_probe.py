"""Child process: build the app, compute the grouped report once, print peak RSS before and after."""

from __future__ import annotations

import json
import resource
import sys

from survey_service import create_app
from survey_service.reporting.reports import nps_report


def main(argv: list[str]) -> None:
    """Arguments: database URL, app secret, instance path, project id."""
    database_url, secret, instance, project_id = argv
    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": secret, "INSTANCE_PATH": instance}
    )
    with app.app_context():
        # Import and connect first, so the "before" figure already holds the app and the driver.
        from sqlalchemy import text

        from survey_service.extensions import db

        db.session.execute(text("SELECT 1"))
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        report = nps_report(int(project_id), group_by="plan", interval="month")
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"before_kb": before, "peak_kb": after, "responses": report["overall"]["responses"]}))


if __name__ == "__main__":
    main(sys.argv[1:])

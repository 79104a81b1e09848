"""Delighted compatibility: the /v1/ API the official clients call, and the CSV importer."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the /v1/ blueprint and the `import-delighted` command."""
    from survey_service.delighted.importer import register_commands
    from survey_service.delighted.views import bp

    app.register_blueprint(bp)
    register_commands(app)

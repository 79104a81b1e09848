"""Delighted compatibility: the /v1/ API the official clients call, and the CSV importer."""

from __future__ import annotations

from flask import Flask

from survey_service.delighted import webhooks
from survey_service.delighted.importer import register_commands
from survey_service.delighted.views import bp


def init_app(app: Flask) -> None:
    """Register the /v1/ blueprint, the `import-delighted` command and Delighted's webhook hooks."""
    app.register_blueprint(bp)
    register_commands(app)
    webhooks.register()

"""Themes and sentiment of comments, computed on the project's own server (no network, no model
download): matching on word stems (text, matching), sentiment (sentiment), discovery of new themes
(discovery), and the rules and their application (service). Reports read the tables through
reporting/themes.py; nothing below the feature layer imports this package.
"""

from __future__ import annotations

from survey_service.services import hooks
from survey_service.themes import service


def init_app() -> None:
    """Let the worker's relay pass analyse new and edited comments (and re-queue lost re-applies)."""
    hooks.relay_tasks["themes"] = service.relay_step

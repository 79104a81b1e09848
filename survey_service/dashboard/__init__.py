"""The CS team's dashboard: its blueprint and route table (auth.py: the door; views.py: the pages)."""

from __future__ import annotations

from flask import Blueprint

from survey_service.core import compression
from survey_service.dashboard import auth, sources, themes, views

bp = Blueprint("dashboard", __name__)
bp.before_request(compression.private)  # CSRF tokens and team data beside reflected filters: BREACH
bp.before_request(auth.check_csrf)
bp.after_request(auth.security_headers)
bp.app_context_processor(views.template_helpers)
bp.add_url_rule("/login", view_func=auth.login, methods=["GET", "POST"])
bp.add_url_rule("/logout", view_func=auth.logout, methods=["POST"])
bp.add_url_rule("/dashboard", view_func=views.dashboard, methods=["GET"])
bp.add_url_rule("/dashboard/exports/<name>", view_func=views.export, methods=["GET"])
bp.add_url_rule("/dashboard/responses/<int:response_id>/followup", view_func=views.followup, methods=["POST"])
bp.add_url_rule("/dashboard/users", view_func=views.users, methods=["GET", "POST"])
bp.add_url_rule("/dashboard/users/<int:member_id>/role", view_func=views.member_role, methods=["POST"])
bp.add_url_rule("/dashboard/users/<int:member_id>/remove", view_func=views.member_remove, methods=["POST"])
bp.add_url_rule(
    "/dashboard/users/<int:member_id>/password", view_func=views.member_password, methods=["POST"]
)
bp.add_url_rule("/dashboard/account", view_func=views.account, methods=["GET", "POST"])
bp.add_url_rule("/dashboard/sources", view_func=sources.sources, methods=["GET"])
bp.add_url_rule("/dashboard/themes", view_func=themes.themes, methods=["GET", "POST"])
bp.add_url_rule("/dashboard/themes/suggestions", view_func=themes.theme_from_suggestion, methods=["POST"])
for _action, _view in (
    ("edit", themes.theme_edit),
    ("enabled", themes.theme_enabled),
    ("merge", themes.theme_merge),
):
    bp.add_url_rule(f"/dashboard/themes/<int:theme_id>/{_action}", view_func=_view, methods=["POST"])
bp.add_url_rule("/dashboard/keys/secret-key", view_func=views.rotate_secret_key, methods=["POST"])
bp.add_url_rule("/dashboard/keys/identity-secret", view_func=views.rotate_identity_secret, methods=["POST"])
bp.add_url_rule("/forgot-password", view_func=auth.forgot_password, methods=["GET", "POST"])
bp.add_url_rule("/r/<token>", view_func=auth.reset_password, methods=["GET", "POST"])

"""Registers every /api/v1 blueprint: the package's __init__ holds what the blueprints import (auth,
limits), this module imports them, so neither imports the other lazily."""

from __future__ import annotations

from flask_smorest import Api

from survey_service.api import (
    BASIC,
    BEARER,
    alerts,
    email_surveys,
    exports,
    followups,
    lifecycle,
    people,
    privacy,
    promoters,
    reports,
    responses,
    widget,
)


def register_api(api: Api) -> None:
    """Register every server API blueprint and the security schemes."""
    api.spec.components.security_scheme(BEARER, {"type": "http", "scheme": "bearer"})
    api.spec.components.security_scheme(BASIC, {"type": "http", "scheme": "basic"})
    api.spec.options["security"] = [{BEARER: []}, {BASIC: []}]
    for module in (
        people,
        responses,
        reports,
        lifecycle,
        email_surveys,
        widget,
        exports,
        followups,
        alerts,
        privacy,
        promoters,
    ):
        api.register_blueprint(module.bp)

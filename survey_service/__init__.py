"""The NPS survey service: create_app() wires config, extensions, blueprints, errors and CLI."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask
from flask_smorest import Api
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from survey_service import dashboard, delighted, public
from survey_service.api.routes import register_api
from survey_service.cli import register_commands
from survey_service.config import load_config
from survey_service.core import request_limits, security
from survey_service.core.log_redaction import install_log_redaction
from survey_service.core.ratelimit import init_limiter
from survey_service.errors import from_http_exception, register_error_handlers
from survey_service.extensions import db, init_queues, migrate
from survey_service.public import promoter_pages, site, survey_pages
from survey_service.schemas.common import ErrorOut
from survey_service.widget import views as widget_views


class BoundedIntConverter(IntegerConverter):
    """`<int:…>` limited to the range of a 32-bit database id."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:  # noqa: A002 (werkzeug's name)
        kwargs.setdefault("max", 2**31 - 1)
        super().__init__(map, *args, **kwargs)


class SurveyApi(Api):
    """flask-smorest's Api with its error payload (and its documentation) the service's one shape."""

    ERROR_SCHEMA = ErrorOut

    def handle_http_exception(self, error: HTTPException) -> Any:
        return from_http_exception(error)


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Create and configure the Flask application."""
    config = load_config(test_config)
    app = Flask(__name__, instance_path=config["INSTANCE_PATH"])
    app.config.from_mapping(config)
    # Ids in paths are database integers: a larger number is simply not found (404), never a 500.
    app.url_map.converters["int"] = BoundedIntConverter
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_log_redaction()  # link tokens in paths are credentials: no log line of this process keeps one
    hops = app.config["TRUSTED_PROXY_HOPS"]
    if hops:
        # Only as many X-Forwarded-* entries as there are proxies we run: a client can prepend any it likes.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]

    db.init_app(app)
    migrate.init_app(app, db)
    init_queues(app)

    api = SurveyApi(app, spec_kwargs={"info": {"description": "Record NPS responses, report by segment."}})
    register_api(api)
    app.register_blueprint(public.bp)
    app.register_blueprint(site.bp)  # `/` and the API reference at /docs/api
    init_limiter(app)  # the one Flask-Limiter of the app: survey pages and widget add their limits to it
    survey_pages.init_app(app)
    promoter_pages.init_app(app)
    widget_views.init_app(app)
    app.register_blueprint(dashboard.bp)
    register_error_handlers(app)
    request_limits.init_app(app)
    security.init_app(app)
    register_commands(app)
    delighted.init_app(app)
    return app

"""WSGI entry point: `gunicorn wsgi:app`."""

from survey_service import create_app

app = create_app()

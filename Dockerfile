# One image for web and worker:
#   docker run IMAGE                                   → gunicorn web server on :8000
#   docker run IMAGE survey-service worker             → RQ worker + scheduler
#   docker run IMAGE survey-service db upgrade         → migrations (one-off, before rolling out)
# docker-compose.yml runs exactly these three; tests/ops/test_packaging.py runs its commands locally.
#
# The base is a build argument: the default is the official Python image; any Debian-like base with
# python3, its venv module and useradd works too (a machine that cannot pull from a registry builds one
# from Debian's packages: README "Docker", tests/ops/test_docker.py), e.g.
#   docker build --build-arg BASE_IMAGE=survey-base:bookworm -t survey-service:local .
# pip inside the build reads the usual PIP_* settings when they are passed as build arguments
# (PIP_INDEX_URL, PIP_EXTRA_INDEX_URL, PIP_TRUSTED_HOST, PIP_CERT); unset, pip uses PyPI.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG PIP_TRUSTED_HOST
ARG PIP_CERT
# The service lives in its own virtual environment: the same on the official image and on a Debian
# base whose python3 refuses system-wide pip installs (PEP 668).
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH \
    SURVEY_ENV=production INSTANCE_PATH=/app/instance

WORKDIR /app
RUN useradd --create-home --uid 10001 --user-group survey && python3 -m venv /opt/venv
COPY pyproject.toml README.md ./
COPY survey_service ./survey_service
COPY widget ./widget
COPY migrations ./migrations
# A normal install: the wheel carries the widget script and the migrations (widget/build.py), so the
# sources go and the service runs from site-packages, exactly as `pip install survey-service` would.
RUN pip install . && rm -rf survey_service widget migrations build survey_service.egg-info \
    && mkdir -p /app/instance && chown survey:survey /app/instance
COPY wsgi.py gunicorn.conf.py ./

# Numeric, so orchestrators can verify it is not root (Kubernetes runAsNonRoot).
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"
CMD ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]

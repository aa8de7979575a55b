# The collector as a container: `telemetry-collector serve` on port 4318.
#
#   docker build -t telemetry-collector .
#   docker run -p 4318:4318 -e TELEMETRY_DATABASE_URL=postgresql://user:pass@db:5432/telemetry \
#       telemetry-collector
#
# The project is installed in editable mode on purpose: app/db/migrate.py finds alembic.ini
# and migrations/ two directories above its own file (PROJECT_ROOT), so the package must run
# from this source tree, not from a copy in site-packages.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/telemetry-collector

# Dependencies first, in their own layer: it is rebuilt only when pyproject.toml changes.
# The editable install maps the top-level `app` package to ./app, so a placeholder package
# is enough here and the real source copied below is what runs.
COPY pyproject.toml README.md ./
RUN mkdir app && touch app/__init__.py && pip install -e .

COPY alembic.ini ./
COPY migrations ./migrations
COPY app ./app

# Unprivileged user. Its data directory is only used when TELEMETRY_DATABASE_URL is unset
# (embedded PostgreSQL, which refuses to run as root anyway); mount a volume there to keep it.
RUN useradd --system --uid 10001 --home-dir /var/lib/telemetry-collector --create-home \
        --shell /usr/sbin/nologin collector
ENV TELEMETRY_DATA_DIR=/var/lib/telemetry-collector
USER collector

EXPOSE 4318

# curl is not in the slim image; Python is. Exits non-zero on refusal, timeout or non-2xx.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('TELEMETRY_PORT', '4318') + '/healthz', timeout=4)"]

# `serve` applies migrations before listening (under an advisory lock, so replicas starting
# together are safe). Add `--workers N` for more processes per container.
CMD ["telemetry-collector", "serve"]

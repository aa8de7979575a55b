# The collector as a container: `telemetry-collector serve` on ports 4318 (OTLP/HTTP and the
# REST API) and 4317 (OTLP/gRPC).
#
#   docker build -t telemetry-collector .
#   docker run -p 4318:4318 -p 4317:4317 -e TELEMETRY_DATABASE_URL=postgresql://user:pass@db:5432/telemetry \
#       telemetry-collector
#
# The image needs TELEMETRY_DATABASE_URL: it leaves out the embedded PostgreSQL (the optional
# `embedded` extra), and without a URL every command stops with a message saying so.
#
# The project is installed in editable mode on purpose: app/db/migrate.py finds alembic.ini
# and migrations/ two directories above its own file (PROJECT_ROOT), so the package must run
# from this source tree, not from a copy in site-packages.
FROM python:3.11.13-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/telemetry-collector

# Dependencies first, in their own layer (rebuilt only when the lock changes), exactly as
# locked: requirements.lock (`make lock`) pins every package and the build backend with
# their hashes, so every build installs the same files, or fails.
COPY requirements.lock ./
RUN pip install --require-hashes --no-deps -r requirements.lock

COPY pyproject.toml README.md alembic.ini ./
COPY migrations ./migrations
COPY app ./app
# The project itself, resolving nothing: everything it needs is installed above.
RUN pip install --no-deps --no-build-isolation -e .

# Unprivileged user.
RUN useradd --system --uid 10001 --home-dir /var/lib/telemetry-collector --create-home \
        --shell /usr/sbin/nologin collector
USER collector

EXPOSE 4318 4317

# Healthy = ready: the database answers and its schema is this version's (/readyz), so
# `depends_on: condition: service_healthy` waits for a collector that can take data.
# curl is not in the slim image; Python is. Exits non-zero on refusal, timeout or non-2xx.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('TELEMETRY_PORT', '4318') + '/readyz', timeout=4)"]

# `serve` applies migrations before listening (under an advisory lock, so replicas starting
# together are safe). Add `--workers N` for more processes per container.
CMD ["telemetry-collector", "serve"]

# syntax=docker/dockerfile:1

# Customer Scorer image.
#   docker build -t customer-scorer .
#   docker run -p 8000:8000 -e DATABASE_URL=postgresql://user:pass@db:5432/scorer customer-scorer
#
# Layout inside the image: the application lives at /app (/app/service, /app/migrations,
# /app/models) and is installed *editable* into the venv at /opt/venv, so that
# Path(service.__file__).parent.parent == /app and the service finds /app/migrations.

ARG PYTHON_IMAGE=python:3.11-slim

# ---------------------------------------------------------------- builder ----
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH="/opt/venv/bin:${PATH}"

RUN python -m venv /opt/venv

WORKDIR /app

# Dependencies first (cached layer): exactly the pinned lock file, nothing resolved here.
COPY requirements.lock ./
RUN pip install --no-cache-dir -r requirements.lock

# Then the project itself, without touching the dependency set.
COPY pyproject.toml README.md ./
COPY service/ ./service/
RUN pip install --no-cache-dir --no-deps -e /app \
    && python -c "import service"

# ---------------------------------------------------------------- runtime ----
FROM ${PYTHON_IMAGE} AS runtime

# libgomp1: OpenMP runtime that LightGBM's wheel links against (scorer train).
# Not version-pinned on purpose: the Debian release follows the base image tag.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 scorer \
    && useradd --system --uid 10001 --gid scorer --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin scorer \
    && mkdir -p /var/lib/scorer \
    && chown scorer:scorer /var/lib/scorer

ENV VIRTUAL_ENV=/opt/venv \
    PATH="/opt/venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SCORER_HOST=0.0.0.0 \
    SCORER_PORT=8000 \
    SCORER_DATA_DIR=/var/lib/scorer

WORKDIR /app

COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /app/service ./service
COPY pyproject.toml ./
COPY migrations/ ./migrations/
# The shipped default models, read-only: `scorer train` writes under SCORER_DATA_DIR/models.
COPY models/ ./models/

USER 10001:10001

EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('SCORER_PORT', '8000'), timeout=4)"]

CMD ["scorer", "serve"]

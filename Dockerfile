# syntax=docker/dockerfile:1
# Image for the billing engine: `python worker.py` (default), `billing db upgrade`, `billing api ...`.

# ---- build: install the project (runtime dependencies only, no test extras) into a venv ----
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv
RUN python -m venv "$VIRTUAL_ENV"
ENV PATH="$VIRTUAL_ENV/bin:$PATH"

WORKDIR /src
COPY . .
RUN pip install .

# ---- runtime ----
FROM python:3.11-slim AS runtime

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH="/opt/venv/bin:$PATH"

RUN groupadd --system --gid 10001 billing \
 && useradd --system --uid 10001 --gid billing --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin billing

WORKDIR /app
COPY --from=build /opt/venv /opt/venv
# The worker's entry point script; the packages themselves come from the venv.
COPY --chown=billing:billing worker.py ./
RUN mkdir -p /app/data && chown billing:billing /app /app/data

USER billing

CMD ["python", "worker.py"]

# kpi-stream worker / simulator image.
#   docker build -t kpi-stream .
#   docker run --rm kpi-stream kpi-stream --help
#
# Every Python package comes from the hash-pinned locks in infra/requirements (regenerated
# by infra/lock.sh): two builds of one commit install the same files, or fail.

# Stage 1: compile the hot modules of tables/ (mypyc) and build a wheel that
# carries them; the compiler stays out of the final image. The project's own
# dependencies are installed here too: mypy reads their types (and the pydantic
# plugin of pyproject.toml) exactly as `make native` does.
FROM python:3.11-slim AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY infra/requirements/runtime.lock infra/requirements/build.lock ./infra/requirements/
RUN pip install --no-cache-dir --require-hashes -r infra/requirements/runtime.lock \
    && pip install --no-cache-dir --require-hashes -r infra/requirements/build.lock
COPY pyproject.toml README.md ./
COPY stream_app ./stream_app
COPY agents ./agents
COPY tables ./tables
COPY connectors ./connectors
COPY infra/build_native.py ./infra/build_native.py
RUN python infra/build_native.py \
    && pip wheel --no-cache-dir --no-deps --no-build-isolation -w /wheels .

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

COPY infra/requirements/runtime.lock /tmp/runtime.lock
COPY --from=build /wheels /wheels
RUN pip install --require-hashes -r /tmp/runtime.lock \
    && pip install --no-deps /wheels/*.whl \
    && rm -rf /wheels /tmp/runtime.lock \
    && useradd --system --uid 10001 --home-dir /var/lib/kpi-stream --create-home kpi

USER kpi
WORKDIR /var/lib/kpi-stream
# Listen on every interface of the container (the default is loopback only); faust's
# working files stay in the user's home (no state lives there: it is in Kafka).
ENV KPI_WEB_HOST=0.0.0.0 \
    KPI_WEB_PORT=6066 \
    KPI_DATA_DIR=/var/lib/kpi-stream/worker-data
EXPOSE 6066

# Healthy = alive (/healthz: the fetcher runs, no stall while input waits) and ready
# (/readyz: the whole-center view is loaded, partitions are assigned, no error that needs
# an operator). Both answer without the API token; a 503 makes urlopen raise.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import os, urllib.request as u; port = os.environ.get('KPI_WEB_PORT', '6066'); [u.urlopen(f'http://127.0.0.1:{port}/{p}', timeout=2) for p in ('healthz', 'readyz')]"

CMD ["kpi-stream", "worker", "--loglevel", "info"]

# kpi-stream worker / simulator image.
#   docker build -t kpi-stream .
#   docker run --rm kpi-stream kpi-stream --help

# Stage 1: compile the hot modules of tables/ (mypyc) and build a wheel that
# carries them; the compiler stays out of the final image.
FROM python:3.11-slim AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY stream_app ./stream_app
COPY agents ./agents
COPY tables ./tables
COPY infra/build_native.py ./infra/build_native.py
RUN pip install --no-cache-dir "mypy>=1.10" setuptools wheel \
    && python infra/build_native.py \
    && pip wheel --no-cache-dir --no-deps -w /wheels .

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

COPY --from=build /wheels /wheels
RUN pip install /wheels/*.whl \
    && rm -rf /wheels \
    && useradd --system --uid 10001 --home-dir /var/lib/kpi-stream --create-home kpi

USER kpi
WORKDIR /var/lib/kpi-stream
# Listen on every interface of the container (the default is loopback only); faust's
# working files stay in the user's home (no state lives there: it is in Kafka).
ENV KPI_WEB_HOST=0.0.0.0 \
    KPI_WEB_PORT=6066 \
    KPI_DATA_DIR=/var/lib/kpi-stream/worker-data
EXPOSE 6066

HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:6066/api/status', timeout=4)"

CMD ["kpi-stream", "worker", "--loglevel", "info"]

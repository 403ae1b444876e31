# kpi-stream worker / simulator image.
#   docker build -t kpi-stream .
#   docker run --rm kpi-stream kpi-stream --help
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# Metadata first: the dependency layer is rebuilt only when pyproject.toml changes.
COPY pyproject.toml README.md ./
COPY stream_app ./stream_app
COPY agents ./agents
COPY tables ./tables
RUN pip install . \
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

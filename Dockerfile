# jobstatus: `docker build -t jobstatus .` then
# `docker run -p 3000:3000 --env-file jobstatus.env -v $PWD/jobstatus.yaml:/config/jobstatus.yaml:ro \
#   -v jobstatus-data:/data jobstatus` (README: Docker says what jobstatus.env holds; the config must be
#   readable by uid 10001)
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md ./
# The product only: .dockerignore leaves out bot/offline/ (the fake Slack, the vendor simulators and the
# demo), so `jobstatus-bot demo` in this image says the demo is not installed and exits 2.
COPY bot ./bot
RUN pip install ".[postgres]" \
    && useradd --system --uid 10001 --home-dir /data jobstatus \
    && mkdir -p /data /config && chown jobstatus /data

USER jobstatus
ENV PORT=3000 \
    JOBSTATUS_CONFIG=/config/jobstatus.yaml \
    DATABASE_URL=sqlite:////data/jobstatus.db
VOLUME ["/data"]
EXPOSE 3000
# liveness (/healthz: the process answers); an orchestrator's readiness probe asks /readyz
HEALTHCHECK --interval=30s --timeout=5s \
  CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '3000'), timeout=4)"
STOPSIGNAL SIGTERM
# the bot is gone within 5 s of SIGTERM, inside `docker stop`'s default 10 s
CMD ["jobstatus-bot", "run"]

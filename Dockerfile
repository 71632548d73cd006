# rankbot as a container: `docker compose up -d` (compose.yaml, which also keeps RANKBOT_DB and
# RANKBOT_LOG_FILE below over what a .env says). One process, `rankbot run`; the database on
# the /data volume; logs on stdout/stderr only.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md LICENSE ./
COPY bot ./bot
COPY adapters ./adapters
COPY storage ./storage
COPY shell ./shell
RUN pip install --no-cache-dir . \
    && useradd --system --uid 10001 --user-group --no-log-init --no-create-home \
       --home-dir /data --shell /usr/sbin/nologin rankbot \
    && mkdir /data && chown 10001:10001 /data

# RANKBOT_LOG_FILE set but empty: no log file, tracebacks too go to stderr (`docker logs`).
ENV RANKBOT_DB=/data/rankbot.db \
    RANKBOT_LOG_FILE=""
# A new named volume takes /data's owner from the image: the rankbot user may write it.
VOLUME /data
# A relative RANKBOT_DB in an --env-file (.env.example's ./rankbot.db) lands on the volume too.
WORKDIR /data
# Numeric, so that Kubernetes' runAsNonRoot can tell it is not root.
USER 10001:10001
# RANKBOT_HTTP_PORT: /healthz and the feeds, and /slack/events in Slack HTTP mode.
EXPOSE 3000

# Exit 0 healthy, 1 degraded, 2 down; the one line why is in `docker inspect`. The first poll
# runs at start; the start period covers a slow first fetch.
HEALTHCHECK --interval=60s --timeout=30s --start-period=2m --retries=3 \
    CMD ["rankbot", "status", "--check"]

# `docker run rankbot poll`, `... ask rank qwen` and the other commands work too.
ENTRYPOINT ["rankbot"]
CMD ["run"]

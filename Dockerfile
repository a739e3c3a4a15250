FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DATABASE_PATH=/data/fluxbot.db \
    METRICS_PORT=9090

WORKDIR /app

# Dependencies first, so a code change does not reinstall them: exactly the locked versions, each file checked
# against its hash.
COPY requirements.txt ./
RUN pip install --require-hashes -r requirements.txt

# A fixed uid and gid (10001), so a host folder mounted on /data can be given to this user: see README, "Docker".
RUN groupadd --gid 10001 fluxbot \
    && useradd --create-home --uid 10001 --gid 10001 fluxbot \
    && mkdir -p /data \
    && chown fluxbot:fluxbot /data

COPY bot.py ./
COPY fluxbot ./fluxbot
COPY cogs ./cogs

USER fluxbot
VOLUME ["/data"]
EXPOSE 9090
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ['METRICS_PORT']}/healthz\", timeout=4)"]
STOPSIGNAL SIGTERM
CMD ["python", "bot.py"]

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DATABASE_PATH=/data/fluxbot.db

WORKDIR /app

# Dependencies first, so a code change does not reinstall them.
COPY requirements.txt ./
RUN pip install -r requirements.txt

RUN useradd --create-home --uid 10001 fluxbot \
    && mkdir -p /data \
    && chown fluxbot:fluxbot /data

COPY bot.py ./
COPY fluxbot ./fluxbot
COPY cogs ./cogs

USER fluxbot
VOLUME ["/data"]
CMD ["python", "bot.py"]

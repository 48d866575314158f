# The bot, migrations and the admin CLI: no torch, no CUDA (a few hundred MB). Build from the repository root:
#   docker build -f docker/bot.Dockerfile -t imagine-bot:bot .
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY bot bot
COPY db db
COPY domain domain
COPY imagine imagine
COPY inference inference
COPY migrations migrations
# The core dependencies only: importing the bot never imports torch (tests/test_layering.py).
RUN pip install .
RUN useradd --create-home --uid 10001 imagine && mkdir -p /data && chown imagine /data
USER 10001
EXPOSE 9100
ENTRYPOINT ["imagine"]
CMD ["bot"]

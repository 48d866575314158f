# One image for the bot, the workers and migrations; the command picks the role.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 HF_HOME=/data/hf
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 && rm -rf /var/lib/apt/lists/*
RUN pip install torch==2.14.1 torchvision==0.29.1
COPY pyproject.toml README.md alembic.ini ./
COPY bot bot
COPY db db
COPY domain domain
COPY imagine imagine
COPY inference inference
COPY migrations migrations
RUN pip install .
RUN useradd --create-home --uid 1000 imagine && mkdir -p /data && chown imagine /data
USER imagine
ENTRYPOINT ["imagine"]

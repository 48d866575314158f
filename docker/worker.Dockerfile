# A GPU worker: the project with its `worker` extra (torch, diffusers, spandrel). PyPI's Linux torch wheels carry
# their CUDA libraries, so the host needs only an NVIDIA driver and the NVIDIA Container Toolkit. Build:
#   docker build -f docker/worker.Dockerfile -t imagine-bot:worker .
FROM python:3.11-slim
ARG TORCH="torch==2.14.1 torchvision==0.29.1"
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HOME=/models/hf \
    NVIDIA_VISIBLE_DEVICES=all NVIDIA_DRIVER_CAPABILITIES=compute,utility
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*
# torch first, pinned, so that the project's ranges never pull another build.
RUN pip install ${TORCH}
COPY pyproject.toml README.md alembic.ini ./
COPY bot bot
COPY db db
COPY domain domain
COPY imagine imagine
COPY inference inference
COPY migrations migrations
RUN pip install ".[worker]"
RUN useradd --create-home --uid 10001 imagine && mkdir -p /data /models/hf && chown -R imagine /data /models
USER 10001
EXPOSE 9101
ENTRYPOINT ["imagine"]
CMD ["worker"]

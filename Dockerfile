# canarist: the image the Kubernetes Job/CronJob pods run (`canarist k run ...`).
# Build from the repository root:  docker build -t canarist:latest .
# It installs canarist with no extras: no sandbox, no proto compiler (docs/install.md).
FROM python:3.11-slim AS build
WORKDIR /src
RUN pip install --no-cache-dir --upgrade pip build
COPY pyproject.toml README.md ./
COPY src ./src
RUN python -m build --wheel --outdir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    HOME=/tmp \
    TMPDIR=/tmp
# curl and bash: `run` tasks execute bash scripts, and download tasks use curl.
RUN apt-get update \
 && apt-get install -y --no-install-recommends curl bash ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /wheels /wheels
RUN pip install /wheels/*.whl && rm -rf /wheels \
 && groupadd --gid 65532 canarist \
 && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin canarist
USER 65532:65532
WORKDIR /tmp
ENTRYPOINT ["canarist"]
CMD ["--help"]

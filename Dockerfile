# remediator — container image.
# Build: docker build -t remediator .
#        (labels: --build-arg VERSION=… --build-arg REVISION="$(git rev-parse HEAD)")
# Run:   docker run -p 8080:8080 -e REMEDIATOR_WEBHOOK_TOKEN=… remediator
#        docker run remediator migrate      (any command: the entrypoint is `remediator`, `serve` the default)
# The build context is only what .dockerignore lets through: pyproject.toml, uv.lock, README.md, LICENSE,
# service/ and rules/.
# Kubernetes: helm/remediator (read-only root filesystem; /var/lib/remediator and /tmp are emptyDirs there).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- build: resolve nothing, install exactly uv.lock into /opt/venv ------------------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /src
# dependencies first (cached while only the code changes), then the project itself, non-editable
COPY pyproject.toml uv.lock README.md LICENSE ./
RUN uv sync --frozen --no-dev --no-editable --no-install-project
COPY service ./service
RUN uv sync --frozen --no-dev --no-editable

# ---- runtime: the same Python, the venv and the rules; no uv, no pip cache, no compilers -----------------------
FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 remediator \
    && useradd --system --uid 10001 --gid remediator --no-create-home --home-dir /var/lib/remediator \
       --shell /usr/sbin/nologin remediator \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/remediator
COPY --from=build /opt/venv /opt/venv
COPY rules/*.yaml /etc/remediator/rules/
COPY LICENSE /usr/share/doc/remediator/LICENSE
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    REMEDIATOR_LISTEN=0.0.0.0:8080 \
    REMEDIATOR_RULES_DIR=/etc/remediator/rules \
    REMEDIATOR_STORE_URL=sqlite:////var/lib/remediator/remediator.db \
    REMEDIATOR_LOG_FORMAT=json
USER 10001:10001
WORKDIR /var/lib/remediator
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status != 200)"]
# OCI labels, last so that a new REVISION rebuilds no layer. VERSION must equal pyproject.toml's (checked by
# tests/test_dockerfile.py); SOURCE is the repository the chart's image (ghcr.io/aitbc/remediator) comes from.
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE=https://github.com/aitbc/remediator
LABEL org.opencontainers.image.title="remediator" \
      org.opencontainers.image.description="Event-driven alert remediation: Alertmanager webhook, diagnosis, safe recovery under guardrails, human handoff" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0"
ENTRYPOINT ["remediator"]
CMD ["serve"]

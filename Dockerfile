# remediator — first image (finished with the Helm chart in a later issue).
# Build: docker build -t remediator .   Run: docker run -p 8080:8080 -e REMEDIATOR_WEBHOOK_TOKEN=… remediator
FROM python:3.11-slim AS build
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PROJECT_ENVIRONMENT=/opt/venv
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /src
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY service ./service
RUN uv sync --frozen --no-dev --no-editable

FROM python:3.11-slim
RUN groupadd --system --gid 10001 remediator \
    && useradd --system --uid 10001 --gid remediator --home-dir /var/lib/remediator --create-home remediator
COPY --from=build /opt/venv /opt/venv
COPY rules /etc/remediator/rules
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    REMEDIATOR_LISTEN=0.0.0.0:8080 \
    REMEDIATOR_RULES_DIR=/etc/remediator/rules \
    REMEDIATOR_STORE_URL=sqlite:////var/lib/remediator/remediator.db
USER 10001:10001
WORKDIR /var/lib/remediator
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status != 200)"]
ENTRYPOINT ["remediator"]
CMD ["serve"]

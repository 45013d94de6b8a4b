# syntax=docker/dockerfile:1
# Build: a venv with trailboss and its runtime dependencies only.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/trailboss
COPY pyproject.toml README.md /src/
COPY operator /src/operator
RUN /opt/trailboss/bin/pip install /src

# Run: the venv on a slim base, as a non-root user, read-only root filesystem friendly.
FROM python:3.11-slim
LABEL org.opencontainers.image.title="trailboss" \
      org.opencontainers.image.description="Kubernetes operator for the ML model lifecycle" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /opt/trailboss /opt/trailboss
ENV PATH=/opt/trailboss/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
USER 65532:65532
EXPOSE 9090 8081
ENTRYPOINT ["trailboss"]
CMD ["run", "--all-namespaces"]

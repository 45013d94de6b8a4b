# syntax=docker/dockerfile:1
# Build: a venv with trailboss and its runtime dependencies only.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/trailboss
COPY pyproject.toml README.md /src/
COPY operator /src/operator
RUN /opt/trailboss/bin/pip install /src

# Model server image (`docker build --target serve .`): the same venv plus the serve extra.
# One ModelVersion per pod; the only writes go to TMPDIR (mount an emptyDir at /tmp).
FROM build AS build-serve
RUN /opt/trailboss/bin/pip install '/src[serve]'

FROM python:3.11-slim AS serve
LABEL org.opencontainers.image.title="trailboss-serve" \
      org.opencontainers.image.description="Trailboss model server: MLflow and v2 inference, per-version metrics, prediction logs" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build-serve /opt/trailboss /opt/trailboss
ENV PATH=/opt/trailboss/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["trailboss", "serve"]

# Run: the venv on a slim base, as a non-root user, read-only root filesystem friendly.
# The last stage is the default target: the operator.
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

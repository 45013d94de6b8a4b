# syntax=docker/dockerfile:1
# The one base image of every stage. For reproducible builds pin it by digest, here or
# with --build-arg PYTHON_IMAGE=python:3.11-slim@sha256:<digest> (the digest
# `docker buildx imagetools inspect python:3.11-slim` prints).
ARG PYTHON_IMAGE=python:3.11-slim

# Build: a venv with trailboss and its runtime dependencies only, exactly as locked in
# requirements/ (`make lock`): every package pinned and checked against its hashes.
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/trailboss
COPY requirements/operator.txt /src/requirements/
RUN /opt/trailboss/bin/pip install --require-hashes -r /src/requirements/operator.txt
COPY pyproject.toml README.md /src/
COPY operator /src/operator
RUN /opt/trailboss/bin/pip install --no-deps /src

# What every image runs on: the slim base, a non-root user, the venv on PATH, and
# writes only to /tmp (read-only root filesystem friendly).
FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/trailboss/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp
USER 65532:65532
ENTRYPOINT ["trailboss"]

# Model server image (`docker build --target serve .`): the same venv plus the serve extra.
# One ModelVersion per pod; the only writes go to TMPDIR (mount an emptyDir at /tmp).
FROM build AS build-serve
COPY requirements/serve.txt /src/requirements/
RUN /opt/trailboss/bin/pip install --require-hashes -r /src/requirements/serve.txt

FROM runtime AS serve
LABEL org.opencontainers.image.title="trailboss-serve" \
      org.opencontainers.image.description="Trailboss model server: MLflow and v2 inference, per-version metrics, prediction logs" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build-serve /opt/trailboss /opt/trailboss
EXPOSE 8080
ENTRYPOINT ["trailboss", "serve"]

# Drift image (`docker build --target drift .`): the same venv plus the drift engine
# (numpy, scipy, pyarrow), for the reference-profile and drift check Jobs.
FROM build AS build-drift
COPY requirements/drift.txt /src/requirements/
RUN /opt/trailboss/bin/pip install --require-hashes -r /src/requirements/drift.txt

FROM runtime AS drift
LABEL org.opencontainers.image.title="trailboss-drift" \
      org.opencontainers.image.description="Trailboss reference-profile and drift check Jobs" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build-drift /opt/trailboss /opt/trailboss

# The operator. The last stage is the default target.
FROM runtime
LABEL org.opencontainers.image.title="trailboss" \
      org.opencontainers.image.description="Kubernetes operator for the ML model lifecycle" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /opt/trailboss /opt/trailboss
EXPOSE 9090 8081
CMD ["run", "--all-namespaces"]

# The modelrollout operator image (also runs the smoke-test Jobs: `modelrollout smoke`).
#   docker build -t ghcr.io/modelrollout/modelrollout:0.1.0 .
# Two stages: the build stage turns pyproject.toml into a wheel and installs it
# with its dependencies into a virtualenv; the final stage copies only that
# virtualenv, runs as uid 65532, and writes nothing at run time except /tmp
# (an emptyDir in the manifests), so it runs with a read-only root filesystem.
# Pin the base image by digest in release builds.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# Only what the wheel needs (see .dockerignore): source changes elsewhere do not bust the cache.
COPY pyproject.toml README.md* LICENSE* ./
COPY operator ./operator
RUN python -m pip wheel --no-deps --wheel-dir /wheels . \
 && python -m venv /opt/venv \
 && /opt/venv/bin/pip install /wheels/*.whl \
 # Byte-compile now: the root filesystem is read-only at run time.
 && /opt/venv/bin/python -m compileall -q /opt/venv/lib

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="modelrollout" \
      org.opencontainers.image.description="Kubernetes operator that rolls ML models out safely" \
      org.opencontainers.image.source="https://github.com/modelrollout/modelrollout" \
      org.opencontainers.image.licenses="Apache-2.0"
# A named user for uid 65532, so libraries that look the user up (getpass) work.
RUN groupadd --gid 65532 modelrollout \
 && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin modelrollout
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:${PATH} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
USER 65532:65532
WORKDIR /tmp
# 8000: Prometheus metrics; 8080: kopf's liveness endpoint (/healthz).
EXPOSE 8000 8080
ENTRYPOINT ["modelrollout"]
CMD ["run", "--all-namespaces"]

# The gateway's image, in two stages (README, "Deployment"):
# - build: has a compiler and turns the project and every dependency into wheels. gunicorn_h1c (gunicorn's C
#   HTTP parser) is published as source only, so it is compiled here; everything else comes as a wheel.
# - the image: installs those wheels and nothing else (--no-index --only-binary), so it needs no compiler;
#   runs as the unprivileged user `phr`, which owns the instance folder (secrets, SQLite) it writes.
# Both stages start from the same Python on the same Debian, so the wheel built in one runs in the other;
# bookworm's postgresql-client is 15, the version of docker-compose.yml's PostgreSQL (pg_dump, pg_restore).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gateway gateway
COPY mappings mappings
COPY conformance conformance
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-client \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 phr \
 && useradd --system --uid 10001 --gid phr --home-dir /var/lib/phr --no-create-home --shell /usr/sbin/nologin phr \
 && install -d -o phr -g phr -m 0700 /var/lib/phr
COPY --from=build /wheels /tmp/wheels
RUN pip install --no-cache-dir --no-index --only-binary=:all: --find-links=/tmp/wheels phr-fhir-gateway \
 && rm -rf /tmp/wheels
ENV PHR_INSTANCE_PATH=/var/lib/phr \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
# A named volume starts as a copy of this folder, owner included: `phr` can write its secrets there.
VOLUME ["/var/lib/phr"]
WORKDIR /var/lib/phr
USER phr:phr
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
CMD ["phr-gateway", "serve", "--host", "0.0.0.0", "--port", "8080"]

# One image for every B2X Monitoring process; docker-compose.yml picks the command per service.
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY protos ./protos
COPY services ./services
COPY gateway ./gateway
COPY b2c ./b2c
RUN pip install . \
    && useradd --system --uid 10001 --no-create-home b2x

USER b2x
# The gateway by default; the services override the command (see docker-compose.yml).
EXPOSE 8080 50051 50052 50053 9101 9102 9103
CMD ["python", "-m", "gateway"]

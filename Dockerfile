# One image for every B2X Monitoring process; docker-compose.yml picks the command per service.

# The dashboard: built once with Node.js, only its output (gateway/webapp/) goes into the image.
FROM node:20-slim AS dashboard
WORKDIR /src/frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend/ ./
RUN npm run build

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
COPY --from=dashboard /src/gateway/webapp ./gateway/webapp
COPY b2c ./b2c
RUN pip install . \
    && useradd --system --uid 10001 --no-create-home b2x

USER b2x
# The gateway by default; the services override the command (see docker-compose.yml).
EXPOSE 8080 50051 50052 50053 9101 9102 9103
CMD ["python", "-m", "gateway"]

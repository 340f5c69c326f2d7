# syntax=docker/dockerfile:1
# Multi-stage: install and compile with dev dependencies, then ship the production dependencies, the
# compiled app, CLI and migrations (dist/) and the entrypoint. Node 26 is the Active LTS line (since
# 2026-10-28); the code runs on Node 20.10 and later too (CI runs it on 20): to build on another line,
#   docker build --build-arg NODE_IMAGE=node:20-bookworm-slim .
ARG NODE_IMAGE=node:26-trixie-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY migrations ./migrations
RUN npm run build

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    DATA_DIR=/data
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force \
 && mkdir -p /data && chown node:node /data
COPY --from=build /app/dist ./dist
COPY --chmod=755 docker/entrypoint.sh /usr/local/bin/ledger
USER node
EXPOSE 3000
STOPSIGNAL SIGTERM
# `docker run IMAGE` serves; `docker run IMAGE <cli command>` (migrate, verify, export, ...) runs the CLI.
ENTRYPOINT ["ledger"]
CMD ["serve"]

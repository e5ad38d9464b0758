# keygate's container image. Build: docker build -t keygate .   (or podman build)
# Run:   docker run -e KEYGATE_PEPPER=… -e KEYGATE_ADMIN_TOKEN=… -p 8080:8080 keygate
# See README "Run in a container" for ports, volume and configuration.
ARG NODE_IMAGE=node:22-bookworm-slim

# 1. Build: every dependency, then the TypeScript compile to dist/ and the admin console's
#    bundle to dist/console.
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY console ./console
COPY src ./src
RUN npm run build

# 2. Production dependencies only (no install scripts: none of them needs one).
FROM ${NODE_IMAGE} AS deps
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# 3. The image: node, tini, production dependencies, dist/ and the default config.
FROM ${NODE_IMAGE}
# tini is PID 1: it forwards SIGTERM to keygate (which drains and exits 0) and reaps orphans;
# -s (subreaper) keeps it reaping where it is not PID 1 (a pod sharing its process namespace).
# A numeric non-root user, so Kubernetes' runAsNonRoot can verify it.
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
 && groupadd --system --gid 10001 keygate \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/keygate --no-create-home \
      --shell /usr/sbin/nologin keygate \
 && install -d -o 10001 -g 10001 -m 0700 /var/lib/keygate
WORKDIR /opt/keygate
COPY --from=deps /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json LICENSE ./
COPY config/container.yaml /etc/keygate/gateway.yaml
ENV NODE_ENV=production
USER 10001:10001
# The embedded store's files. Nothing else is written: the root filesystem may be read-only.
VOLUME ["/var/lib/keygate"]
# gateway, admin (never public), status (/healthz, /readyz, /metrics)
EXPOSE 8080 8081 8082
# Healthy while the status port's /healthz answers (KEYGATE_STATUS_PORT moves it).
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.KEYGATE_STATUS_PORT || 8082}/healthz`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["/usr/bin/tini", "-s", "--", "node", "/opt/keygate/dist/cli.js"]
CMD ["serve", "--config", "/etc/keygate/gateway.yaml"]

# syntax=docker/dockerfile:1
# weir: JobManager, TaskManager and CLI in one image; `weir` is the entrypoint.
#   docker build -t weir:dev .
#   docker run --rm weir:dev --help
#
# node:20-slim is Debian bookworm (glibc 2.36, libstdc++ from GCC 12). The RocksDB binding's
# linux-x64 prebuild needs glibc >= 2.34 and GLIBCXX_3.4.30, so bookworm works and
# bullseye-based or Alpine (musl) images do not.

FROM node:20-slim AS build
WORKDIR /src
# dependencies first, so source changes do not reinstall them
COPY package.json package-lock.json ./
COPY packages/api/package.json packages/api/
COPY packages/connectors/package.json packages/connectors/
COPY packages/core/package.json packages/core/
COPY packages/jobmanager/package.json packages/jobmanager/
COPY packages/taskmanager/package.json packages/taskmanager/
COPY packages/client/package.json packages/client/
COPY packages/cli/package.json packages/cli/
RUN npm ci --no-audit --no-fund
COPY tsconfig.base.json tsconfig.json ./
COPY proto proto
COPY packages packages
# proto types are generated, then `tsc -b` compiles every package; dev dependencies go afterwards
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund \
 && rm -rf packages/*/src packages/*/tsconfig*.json \
 && find packages -name '*.map' -delete

FROM node:20-slim
ENV NODE_ENV=production
WORKDIR /opt/weir
COPY --from=build /src/package.json /src/package-lock.json ./
COPY --from=build /src/node_modules node_modules
COPY --from=build /src/packages packages
COPY --from=build /src/proto proto
COPY examples examples
# the image runs as the unprivileged `node` user (uid 1000) of the base image; its state, work
# and checkpoint directories live under /var/lib/weir; /etc/weir/certs is where compose's
# weir-certs volume goes (an empty named volume takes this directory's owner and mode)
RUN ln -s /opt/weir/packages/cli/bin/weir.js /usr/local/bin/weir \
 && mkdir -p /var/lib/weir/out /var/lib/weir/work /var/lib/weir/state /etc/weir/certs \
 && chown -R node:node /var/lib/weir /etc/weir/certs \
 && chmod 700 /etc/weir/certs
USER node
WORKDIR /var/lib/weir
# two glibc malloc arenas: fewer arenas fragment less with RocksDB's threads (see taskManagerEnv)
ENV WEIR_PROCESS_TASKMANAGER_WORKING_DIR=/var/lib/weir/work \
    WEIR_STATE_BACKEND_ROCKSDB_LOCALDIR=/var/lib/weir/state \
    MALLOC_ARENA_MAX=2
EXPOSE 6123 6122
ENTRYPOINT ["weir"]
CMD ["--help"]

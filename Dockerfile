# syntax=docker/dockerfile:1.7
# One image for every role: `apogee serve` (default), `gateway`, `auth`, `messaging`, `presence`.
#   docker build -t apogee .
#   docker build --build-arg APOGEE_FEATURES=mongodb -t apogee .   # with the MongoDB store

# The builder's Rust matches rust-toolchain.toml (1.95); that file is left out of the context
# (.dockerignore) so rustup does not fetch clippy and rustfmt into the build.
FROM rust:1.95-slim-bookworm AS build
ARG APOGEE_FEATURES=""
WORKDIR /src
COPY . .
# Cache mounts keep the registry and the target dir between builds; the binary is copied out of
# the cached target dir because a cache mount is not part of the layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p apogee --bin apogee \
        ${APOGEE_FEATURES:+--features "$APOGEE_FEATURES"} \
    && install -D -m 0755 target/release/apogee /out/apogee

FROM debian:bookworm-slim AS runtime
# ca-certificates for TLS to MongoDB, Redis and NATS; bash (already in the base) runs the probe.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 apogee \
    && useradd --system --uid 10001 --gid apogee --home-dir /data --shell /usr/sbin/nologin apogee \
    && install -d -o apogee -g apogee -m 0750 /data
COPY --from=build /out/apogee /usr/local/bin/apogee
COPY --chmod=0755 deploy/probe /usr/local/bin/apogee-probe
USER 10001:10001
WORKDIR /data
# Mount a volume on /data for the roles that keep SQLite there (serve, auth, messaging): a new
# named volume takes this directory's ownership, so the non-root user can write to it.
# No VOLUME line: it would leave an anonymous volume behind every gateway container.
ENV APOGEE_DATA_DIR=/data \
    PORT=3000 \
    APOGEE_LOG_FORMAT=json
# 3000 HTTP (serve, gateway); 50051/50052 gRPC (auth, messaging); 9101-9103 health (auth,
# messaging, presence).
EXPOSE 3000 50051 50052 9101 9102 9103
# No HEALTHCHECK: the port to probe depends on the role. Compose and Kubernetes probe /readyz
# and /livez per role (`apogee-probe PORT [PATH]` for compose).
ENTRYPOINT ["apogee"]
CMD ["serve"]

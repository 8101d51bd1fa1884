# syntax=docker/dockerfile:1
# orthanc-edge container image: build with the Rust toolchain, run on a slim Debian as a non-root
# user. The root filesystem can (and in k8s/ does) stay read-only: the edge writes only to its
# cache folder. Config and cache are volumes:
#
#   docker build -t orthanc-edge:0.1.0 .
#   docker run --read-only -p 8080:8080 \
#     -v ./edge.toml:/etc/orthanc-edge/edge.toml:ro \
#     -v ./orthanc-password:/run/secrets/orthanc/password:ro \
#     -v edge-cache:/var/cache/orthanc-edge orthanc-edge:0.1.0
#
# Port 8080 serves images and probes; 9721 (admin) serves /metrics: publish it only to the scraper;
# 9722 is the cluster peer listener (cluster.listen): reachable by the other edges only.

ARG RUST_VERSION=1.95
ARG DEBIAN=bookworm

FROM rust:${RUST_VERSION}-slim-${DEBIAN} AS build
WORKDIR /src
# libwebp-sys and ring compile C with the image's gcc; nothing else is needed.
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY config ./config
COPY benches ./benches
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin orthanc-edge \
 && install -D -m 0755 target/release/orthanc-edge /out/orthanc-edge

FROM debian:${DEBIAN}-slim AS runtime
# ca-certificates: for an https:// Orthanc signed by a private CA mounted into the system store.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 edge \
 && useradd --system --uid 10001 --gid edge --home-dir /nonexistent --shell /usr/sbin/nologin edge \
 && install -d -o edge -g edge -m 0750 /var/cache/orthanc-edge \
 && install -d -m 0755 /etc/orthanc-edge
COPY --from=build /out/orthanc-edge /usr/local/bin/orthanc-edge
# A container default: listen on all interfaces, cache on the volume. A mounted file replaces it.
COPY k8s/base/edge.toml /etc/orthanc-edge/edge.toml
USER 10001:10001
VOLUME ["/var/cache/orthanc-edge"]
EXPOSE 8080 9721 9722
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/orthanc-edge"]
CMD ["serve", "--config", "/etc/orthanc-edge/edge.toml"]

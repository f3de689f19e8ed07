# Augury's container image: a Rust build stage and a small runtime stage.
#
#   docker build -t augury:dev --build-arg AUGURY_COMMIT="$(git rev-parse --short HEAD)" .
#
# docs/container.md says how to run it (read-only root file system, volume, ports,
# tokens, probes). The base images are build arguments: BUILD_IMAGE must have cargo on
# PATH, a C compiler and the CA bundle at /etc/ssl/certs/ca-certificates.crt (the
# official Rust images do); RUNTIME_IMAGE must have glibc and libgcc_s (distroless "cc"
# or a slim Debian) of the same Debian release as BUILD_IMAGE or a later one.
ARG BUILD_IMAGE=docker.io/library/rust:1.95-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM ${BUILD_IMAGE} AS build
# The commit `augury --version` shows: the build context has no .git (.dockerignore).
ARG AUGURY_COMMIT=
ENV AUGURY_BUILD_COMMIT=${AUGURY_COMMIT}
WORKDIR /src
COPY . .
# The registry and target caches make rebuilds incremental where the builder keeps cache
# mounts; the binary is copied out of the cache in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bin augury \
    && mkdir -p /out/usr/local/bin /out/etc/augury /out/etc/ssl/certs /out/var/lib/augury \
    && cp target/release/augury /out/usr/local/bin/augury \
    && cp scripts/image/augury.yaml /out/etc/augury/augury.yaml \
    && cp /etc/ssl/certs/ca-certificates.crt /out/etc/ssl/certs/ca-certificates.crt

FROM ${RUNTIME_IMAGE}
COPY --from=build /out/usr/local/bin/augury /usr/local/bin/augury
COPY --from=build /out/etc/augury/augury.yaml /etc/augury/augury.yaml
# HTTPS notifiers verify servers against the system CA bundle: the build stage's, so a
# runtime base without one (slim Debian) still has it.
COPY --from=build /out/etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build --chown=65532:65532 /out/var/lib/augury /var/lib/augury
ENV AUGURY_CONFIG=/etc/augury/augury.yaml
USER 65532:65532
# The SQLite database; the working directory, so relative paths land there too.
WORKDIR /var/lib/augury
VOLUME ["/var/lib/augury"]
# API (with /healthz and /readyz), OTLP/gRPC, OTLP/HTTP.
EXPOSE 8080 4317 4318
ENTRYPOINT ["/usr/local/bin/augury"]
CMD ["serve"]

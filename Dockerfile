# syntax=docker/dockerfile:1
# scimctl in a container: build with the locked dependencies, run as a non-root user on a small
# runtime image. No secret is part of any layer: give them at run time (`-e VAR`), see docs/deployment.md
# "Container".

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked \
 && install -D -m 0755 target/release/scimctl /out/scimctl

# distroless/cc (Debian 12, as the build stage): glibc and libgcc for the Rust binary, no shell.
# https needs no system CA store: reqwest's rustls-tls bundles the webpki root certificates.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/scimctl /usr/local/bin/scimctl
USER nonroot:nonroot
WORKDIR /work
# watch's /healthz, /readyz and /metrics (with --listen 0.0.0.0:9464).
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/scimctl"]
CMD ["--help"]

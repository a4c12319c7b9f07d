# syntax=docker/dockerfile:1
# approval-gate: one static binary (webhook + operator) on an empty base image.
#   make image                 # docker build -t ghcr.io/approval-gate/approval-gate:<version> .
#   make image CONTAINER_ENGINE=podman IMAGE=registry.example.com/approval-gate:dev
# The same layout as `make image-oci` (no daemon): one layer with /approval-gate
# built with the `image` profile, user 65532:65532, entrypoint and command.

FROM rust:1.91-alpine AS build
# The native target of this image is x86_64/aarch64-unknown-linux-musl, which
# links statically; ring's C and assembly parts need the musl headers.
RUN apk add --no-cache musl-dev
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
# Every target Cargo.toml declares must exist for cargo to read it.
COPY src ./src
COPY benches ./benches
# The workspace's other members (the test harness, the image and pause tools).
COPY crates ./crates
COPY tools ./tools
# BuildKit cache mounts keep the registry and the build directory between
# builds, so a source change rebuilds only the crate; the binary is copied out
# of the cache within the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --profile image --locked --bin approval-gate \
 && cp target/image/approval-gate /approval-gate \
 && /approval-gate --version

FROM scratch
COPY --from=build /approval-gate /approval-gate
USER 65532:65532
ENTRYPOINT ["/approval-gate"]
CMD ["serve"]

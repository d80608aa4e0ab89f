# Build stage: compile the release binary.
FROM rust:1-bookworm AS build
WORKDIR /src
# The whole context (see .dockerignore): Cargo.toml names the benches, build.rs watches the
# migrations and the API page includes assets/, so copying only src/ cannot build.
# scripts/check-docker-context checks this file set in CI without a Docker engine.
COPY . .
# No default features: the image carries no AWS sandbox and refuses `--sandbox`.
RUN cargo build --release --locked --no-default-features --bin zeroscale \
 && strip target/release/zeroscale

# The AWS sandbox on its own (docker-compose.yml's `sandbox` service, `--target sandbox`): a
# separate image, so the service's image never contains it.
FROM build AS sandbox-build
RUN cargo build --release --locked -p zeroscale-sandbox && strip target/release/zeroscale-sandbox

FROM debian:bookworm-slim AS sandbox
RUN useradd --system --uid 10001 --no-create-home sandbox
COPY --from=sandbox-build /src/target/release/zeroscale-sandbox /usr/local/bin/zeroscale-sandbox
USER sandbox
EXPOSE 4566
ENTRYPOINT ["zeroscale-sandbox"]
CMD ["--listen", "0.0.0.0:4566", "--demo"]

# Runtime stage (the default target): the service, a slim image with a non-root user.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home zeroscale
COPY --from=build /src/target/release/zeroscale /usr/local/bin/zeroscale
USER zeroscale
ENV ZEROSCALE_LISTEN=0.0.0.0:8080 ZEROSCALE_LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["zeroscale"]
CMD ["serve"]

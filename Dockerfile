# syntax=docker/dockerfile:1
# The retainwise image: one binary for every role. `docker run IMAGE` serves (API + worker on the
# embedded default); `api`, `worker`, `migrate` and every other command run from the same image:
#   docker run IMAGE worker        docker run IMAGE migrate        docker run IMAGE --help
# Where base images cannot be pulled, scripts/image.sh builds the equivalent image FROM scratch
# from a binary built on the host.

# ---- build: dependencies first (cargo-chef), so a change of our code rebuilds only our crates
FROM rust:1.95-slim-bookworm AS chef
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json --bin retainwise
COPY . .
# The build's identity, answered by GET /__version (pass --build-arg from git and date).
ARG RETAINWISE_GIT_COMMIT=""
ARG RETAINWISE_BUILD_TIME=""
ENV RETAINWISE_GIT_COMMIT=${RETAINWISE_GIT_COMMIT} RETAINWISE_BUILD_TIME=${RETAINWISE_BUILD_TIME}
RUN cargo build --release --locked --bin retainwise \
    && install -D -m 0755 target/release/retainwise /out/retainwise

# ---- run: glibc, libgcc, CA certificates and a non-root user, nothing else (no shell)
FROM gcr.io/distroless/cc-debian12:nonroot
#checkov:skip=CKV_DOCKER_2:The image has no shell or HTTP client to probe with, and the worker serves no HTTP; the load balancer checks GET /health of the API (deploy/aws) and Kubernetes probes it (deploy/kubernetes)
COPY --from=builder /out/retainwise /usr/local/bin/retainwise
WORKDIR /home/nonroot
# distroless "nonroot" (uid 65532), numeric so the runtime need not resolve the name
USER 65532:65532
# Listen on every interface inside the container; `serve`/`api` still refuse to start without
# sign-in configured (RETAINWISE_JWT_SECRET, RETAINWISE_JWKS_URL or CLERK_FRONTEND_API) unless
# given --insecure-no-auth.
ENV RETAINWISE_BIND=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/retainwise"]
CMD ["serve"]

# Build: docker build -t sanctum .
# Run:   docker run -p 127.0.0.1:8000:8000 -e SANCTUM_AUTH_TOKEN="$(openssl rand -hex 32)" sanctum
#        (it binds 0.0.0.0 inside the container, so sanctum requires bearer tokens; see
#        docs/deployment.md, deploy/compose.yaml and deploy/kubernetes/sanctum.yaml)

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --profile dist -p sanctum --locked
# The only writable places: the compile cache, and the tool-pin file and jobs directory (mount
# volumes there when the root filesystem is read-only). Made here because the runtime image has no shell.
RUN mkdir -p /out/var/cache/sanctum /out/var/lib/sanctum

FROM gcr.io/distroless/cc-debian12:nonroot
WORKDIR /app
COPY --from=build /src/target/dist/sanctum /app/sanctum
COPY --from=build /src/plugins /app/plugins
COPY --from=build --chown=65532:65532 /out/var /var
ENV SANCTUM_HOST=0.0.0.0 \
    SANCTUM_PORT=8000 \
    SANCTUM_PLUGINS_DIR=/app/plugins \
    SANCTUM_CACHE_DIR=/var/cache/sanctum \
    SANCTUM_PINS=/var/lib/sanctum/pins.json \
    SANCTUM_JOBS_DIR=/var/lib/sanctum/jobs \
    SANCTUM_LOG_FORMAT=json
EXPOSE 8000
USER nonroot
ENTRYPOINT ["/app/sanctum"]
CMD ["serve"]

# Build: docker build -t sanctum .
# Run:   docker run -p 8000:8000 sanctum            (binds 0.0.0.0 inside the container)

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --profile dist -p sanctum --locked

FROM gcr.io/distroless/cc-debian12:nonroot
WORKDIR /app
COPY --from=build /src/target/dist/sanctum /app/sanctum
COPY --from=build /src/plugins /app/plugins
ENV SANCTUM_HOST=0.0.0.0 \
    SANCTUM_PORT=8000 \
    SANCTUM_PLUGINS_DIR=/app/plugins
EXPOSE 8000
USER nonroot
ENTRYPOINT ["/app/sanctum"]
CMD ["serve"]

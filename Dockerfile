FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked

FROM debian:bookworm-slim
WORKDIR /app
COPY --from=build /src/target/release/steward /usr/local/bin/steward
COPY policies policies
COPY ingest ingest
EXPOSE 8080
ENTRYPOINT ["steward", "serve"]

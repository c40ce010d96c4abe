# The image the Helm chart runs: the release binary on a small Debian base, as a non-root user
# (10001, matching the chart's securityContext), with nothing writable but /var/lib/sinergi.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin sinergi

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/sinergi sinergi \
    && mkdir -p /var/lib/sinergi && chown sinergi:sinergi /var/lib/sinergi
COPY --from=build /src/target/release/sinergi /usr/local/bin/sinergi
USER 10001:10001
ENV SINERGI_DATA_DIR=/var/lib/sinergi
EXPOSE 50051 50052 9464
ENTRYPOINT ["/usr/local/bin/sinergi"]
CMD ["serve"]

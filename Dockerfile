# syntax=docker/dockerfile:1
# Multi-stage build: the dashboard bundle with Node, a static Go binary, and
# a minimal non-root runtime image with a data volume.

FROM node:20-bookworm-slim AS web
WORKDIR /src/web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY web/ ./
RUN npm run --silent build

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
COPY --from=web /src/web/dist/ ./web/dist/
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/pulse ./cmd/pulse && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/pulse /usr/local/bin/pulse
# An empty /data owned by the runtime user, so a fresh volume is writable.
COPY --from=build --chown=65532:65532 /out/data /data
# The local stream, tokens and local archive live here.
VOLUME ["/data"]
ENV PULSE_DATA=/data PULSE_ADDR=:8080
EXPOSE 8080
USER nonroot:nonroot
HEALTHCHECK --interval=10s --timeout=4s --start-period=20s --retries=3 \
  CMD ["/usr/local/bin/pulse", "health", "--url", "http://127.0.0.1:8080/healthz"]
ENTRYPOINT ["/usr/local/bin/pulse"]
CMD ["serve"]

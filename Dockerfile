# syntax=docker/dockerfile:1
#
# The evflow image: one static binary on a distroless base, running as a
# non-root user. Built by compose/docker-compose.yml (go tool task compose-up)
# or on its own:
#
#   docker build -t evflow .
#   docker run --rm -p 8080:8080 evflow              # everything embedded
#   docker run --rm evflow serve --nats-url nats://… --mongo-uri … --redis-sentinels … --redis-master-set …
#
# compose/dockerfile_test.go runs this file's `go build` line (same flags, same
# package) and checks that the result is a static binary: keep it in one RUN.

# The Go version is go.mod's `go` line (the golang images set GOTOOLCHAIN=local,
# so an older image could not build the module); dockerfile_test.go checks it.
ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION} AS build
WORKDIR /src
# Modules first, in their own layer and a cache mount: a source change does
# not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/evflow ./cmd/evflow

# No shell, no package manager: healthchecks run the binary itself
# (evflow status --addr http://127.0.0.1:8080).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/evflow /evflow
# 65532, the image's "nonroot" user; its home is the working directory, where
# the embedded default keeps ./evflow-data when no external NATS/MongoDB is given.
USER nonroot:nonroot
WORKDIR /home/nonroot
# Listen on every interface: 127.0.0.1, the binary's default, is unreachable
# from outside the container. A --http-addr flag still wins.
ENV EVFLOW_HTTP_ADDR=:8080
EXPOSE 8080
ENTRYPOINT ["/evflow"]
CMD ["serve"]

# Multi-stage build: a static binary (CGO off) on a distroless nonroot base.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION
ARG REVISION=unknown
ARG BRANCH=unknown
RUN REVISION=${REVISION} BRANCH=${BRANCH} scripts/build-static.sh /out/autodiscover_exporter ${VERSION}

FROM gcr.io/distroless/static-debian12:nonroot
LABEL org.opencontainers.image.title="autodiscover_exporter" \
      org.opencontainers.image.description="Prometheus exporter that runs the Exchange Autodiscover chain for configured mailboxes" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/autodiscover_exporter /bin/autodiscover_exporter
USER nonroot:nonroot
EXPOSE 10057
ENTRYPOINT ["/bin/autodiscover_exporter"]
CMD ["--config.file=/etc/autodiscover_exporter/config.yml"]

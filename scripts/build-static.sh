#!/usr/bin/env bash
# Builds the static exporter binary with version information, the same way
# for the Dockerfile and for CI. Usage: scripts/build-static.sh OUTPUT [VERSION]
set -euo pipefail
out=${1:?output path}
version=${2:-${VERSION:-$(cat VERSION 2>/dev/null || echo dev)}}
revision=${REVISION:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
branch=${BRANCH:-$(git rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)}
pkg=github.com/prometheus/common/version
CGO_ENABLED=0 go build -trimpath -o "$out" -ldflags "-s -w \
  -X $pkg.Version=$version -X $pkg.Revision=$revision -X $pkg.Branch=$branch \
  -X $pkg.BuildUser=${BUILD_USER:-autodiscover_exporter} -X $pkg.BuildDate=${BUILD_DATE:-$(date -u +%Y%m%d-%H:%M:%S)}" \
  ./cmd/autodiscover_exporter

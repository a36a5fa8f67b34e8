#!/usr/bin/env bash
# Builds Prometheus 3 (the Go module github.com/prometheus/prometheus at
# v0.316.0, which is Prometheus 3.16.0) for the tests that run a real
# Prometheus: Debian ships 2.x, most users run 3.x.
#
#   scripts/build-prometheus3.sh [OUTDIR]
#
# OUTDIR defaults to ${XDG_CACHE_HOME:-$HOME/.cache}/autodiscover_exporter/prometheus-v0.316.0.
# A prometheus already there that reports 3.x is kept. promtool is not
# built: it would add about two thirds to a cold build (4 of 10 minutes on
# two cores), and the tests check files with Debian's. The last line on
# stdout is the path of the binary, for
#   export PROMETHEUS3_BINARY=$(scripts/build-prometheus3.sh)
set -euo pipefail

module=github.com/prometheus/prometheus
version=v0.316.0
outdir=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/autodiscover_exporter/prometheus-$version}
bin=$outdir/prometheus

is_v3() { [ -x "$1" ] && "$1" --version 2>&1 | head -1 | grep -q '^[a-z]*, version 3\.'; }

if is_v3 "$bin"; then
  echo "prometheus $version already built in $outdir" >&2
  echo "$bin"
  exit 0
fi

export PATH="$PATH:/usr/local/go/bin"
# The module's go.mod may ask for a newer Go than the one installed.
export GOTOOLCHAIN=auto
# The pure-Go resolver, as Prometheus' own release builds use (netgo), and
# no C compiler needed.
export CGO_ENABLED=0

start=$(date +%s)
echo "== building prometheus $version into $outdir" >&2
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work" "$outdir"/.partial-*-$$' EXIT
# Run outside any module, so that no go.mod or go.sum here is touched.
dir=$(cd "$work" && go mod download -json "$module@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
if [ -z "$dir" ] || [ ! -f "$dir/go.mod" ]; then
  echo "go mod download $module@$version gave no module directory" >&2
  exit 1
fi
# go install pkg@version refuses a module whose go.mod has replace or
# exclude directives, and the module cache is read-only: build a copy, as
# a checkout of the tag would be built. Its go.work names nested modules
# that the module zip leaves out: build the main module alone.
cp -R "$dir/." "$work/src"
chmod -R u+w "$work/src"
release=$(cat "$work/src/VERSION")

pkg=github.com/prometheus/common/version
ldflags="-s -w -X $pkg.Version=$release -X $pkg.Revision=$version -X $pkg.Branch=$version"
ldflags="$ldflags -X $pkg.BuildUser=build-prometheus3.sh -X $pkg.BuildDate=$(date -u +%Y%m%d-%H:%M:%S)"
# No builtinassets tag: the web UI is not embedded (the tests use the API
# only). remove_all_sd keeps the file and HTTP service discoveries, the
# only ones the tests use, and skips compiling the others and their SDKs.
tags=netgo,remove_all_sd
mkdir -p "$outdir"
# Built beside the final name and renamed: an interrupted build leaves no
# half binary that the check above would take for a finished one.
(cd "$work/src" && GOWORK=off GOFLAGS="${GOFLAGS:-} -mod=mod" go build -trimpath -tags "$tags" -ldflags "$ldflags" \
  -o "$outdir/.partial-prometheus-$$" ./cmd/prometheus)
mv -f "$outdir/.partial-prometheus-$$" "$bin"
is_v3 "$bin" || { echo "$bin does not report version 3.x:" >&2; "$bin" --version >&2; exit 1; }
"$bin" --version 2>&1 | head -1 >&2
echo "built in $(($(date +%s) - start))s" >&2
echo "$bin"

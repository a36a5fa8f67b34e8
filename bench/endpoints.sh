#!/usr/bin/env bash
# Measures what the endpoint checks cost: the same on-premises estate
# (Exchange with EWS, MAPI/HTTP, OAB and OWA on mail.<domain>) probed by
# the real binary without endpoints and with endpoints: [ews, mapi, oab,
# owa], reporting CPU per chain, allocations, durations and peak RSS for
# both. Results are also written to bench/results/.
#
#   bench/endpoints.sh [flags for bench/scale]   e.g. bench/endpoints.sh -mailboxes 200
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
scripts/build-static.sh "$work/autodiscover_exporter" bench >/dev/null
go build -o "$work/scale" ./bench/scale

mkdir -p bench/results
out="bench/results/endpoints-$(date -u +%Y%m%dT%H%M%SZ).md"
{
  echo "# bench/endpoints.sh $*"
  echo "$(nproc) CPUs, $(go version | cut -d' ' -f3)"
  for endpoints in "" "ews,mapi,oab,owa"; do
    "$work/scale" -exporter "$work/autodiscover_exporter" -scenario onprem -mailboxes 500 -domains 50 -endpoints "$endpoints" "$@" 2> "$work/stderr" \
      || { cat "$work/stderr" >&2; exit 1; }
  done
} | tee "$out"
echo "(written to $out)"

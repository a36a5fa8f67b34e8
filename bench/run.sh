#!/usr/bin/env bash
# Reproduces the scale table of the README: autodiscover_exporter probing
# N hybrid mailboxes (four TLS hosts, three redirects each) spread over one
# scrape cycle against the simulated estate with injected latency, then
# the floor (bench/floor, a minimal client walking the same chains) and
# Debian's blackbox_exporter on the same endpoints for the CPU ratios, and
# the growth rows: 100, 1,000 and 10,000 mailboxes over 60 s, each with a
# fresh exporter ($BENCH_GROWTH and $BENCH_GROWTH_CYCLE change them; an
# empty BENCH_GROWTH skips them).
#
#   bench/run.sh [flags for bench/scale]   e.g. bench/run.sh -mailboxes 200 -cycle 5s
#
# Defaults: 1000 mailboxes over 50 domains, 20ms per DNS and HTTP answer,
# a 10s cycle. Installs prometheus-blackbox-exporter with apt when run as
# root and it is missing. Results are also written to bench/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

blackbox=$(command -v prometheus-blackbox-exporter || command -v blackbox_exporter || true)
if [ -z "$blackbox" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus-blackbox-exporter >/dev/null
  blackbox=$(command -v prometheus-blackbox-exporter || true)
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
scripts/build-static.sh "$work/autodiscover_exporter" bench >/dev/null
go build -o "$work/scale" ./bench/scale
go build -o "$work/floor" ./bench/floor
growth=${BENCH_GROWTH-100,1000,10000}

mkdir -p bench/results
out="bench/results/$(date -u +%Y%m%dT%H%M%SZ).md"
{
  echo "# bench/run.sh $*"
  echo "$(nproc) CPUs, $(go version | cut -d' ' -f3), blackbox: ${blackbox:-none}"
  "$work/scale" -exporter "$work/autodiscover_exporter" -floor "$work/floor" ${blackbox:+-blackbox "$blackbox"} "$@" 2> "$work/stderr"
  if [ -n "$growth" ]; then
    "$work/scale" -exporter "$work/autodiscover_exporter" -floor "$work/floor" -growth "$growth" -growth-cycle "${BENCH_GROWTH_CYCLE:-60s}" 2>> "$work/stderr"
  fi
} | tee "$out"
echo "(written to $out)"

#!/usr/bin/env bash
# Fires N concurrent /probe requests (default 1000) at an exporter serving
# the simulated demo estate, in one process, and reports how many were
# answered, the wall time, peak goroutines and peak RSS.
# Usage: bench/concurrent.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
n=${1:-${CONCURRENT_PROBES:-1000}}
CONCURRENT_PROBES=$n go test -count=1 -run '^TestThousandConcurrentProbeRequestsAreAllAnswered$' -v ./internal/server \
  | grep -E 'concurrent probes:|failed steps|^(ok|FAIL|---)' 

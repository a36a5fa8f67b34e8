#!/usr/bin/env bash
# Runs every Go fuzz target of the module, one after another.
#
#   scripts/fuzz.sh [DURATION]
#
# DURATION is a -fuzztime value ("30s", "5m", or "10000x" executions); it
# defaults to $FUZZTIME, then to 30s. Targets are found with
# `go test -list` in every package, so new ones are picked up without
# editing this script. The first failing target stops the run; its failing
# input is written by go test under <package>/testdata/fuzz/<Target>/.
# New coverage is minimized for at most $FUZZMINIMIZETIME (default 5s, Go's
# own default is 60s, which can leave a short run minimizing instead of
# fuzzing). Extra `go test` flags may be passed in $FUZZFLAGS (e.g.
# "-parallel=4").
set -euo pipefail

duration="${1:-${FUZZTIME:-30s}}"
minimize="${FUZZMINIMIZETIME:-5s}"
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log="$(mktemp)"
trap 'rm -f "$log"' EXIT

summary=()
print_summary() {
	echo
	echo "== fuzz summary (fuzztime $duration)"
	local line
	for line in "${summary[@]}"; do
		echo "$line"
	done
}

# Fuzz targets per package: "<import path> <FuzzName>" lines.
# Command substitutions, not process substitutions, so that a package that
# does not build stops the script (set -e) instead of hiding its targets.
targets=()
pkgs="$(go list ./...)"
for pkg in $pkgs; do
	listed="$(go test -list '^Fuzz' "$pkg")"
	for name in $(grep -E '^Fuzz[A-Za-z0-9_]*$' <<<"$listed" || true); do
		targets+=("$pkg $name")
	done
done

if [ "${#targets[@]}" -eq 0 ]; then
	echo "no fuzz targets found" >&2
	exit 1
fi
echo "== ${#targets[@]} fuzz targets, $duration each"

module="$(go list -m)"
total_start=$SECONDS
for t in "${targets[@]}"; do
	pkg="${t% *}"
	name="${t#* }"
	echo
	echo "== $name ($pkg)"
	start=$SECONDS
	rc=0
	# shellcheck disable=SC2086 # FUZZFLAGS is a list of flags.
	go test -run='^$' -fuzz="^${name}\$" -fuzztime="$duration" -fuzzminimizetime="$minimize" ${FUZZFLAGS:-} "$pkg" 2>&1 | tee "$log" || rc=$?
	took=$((SECONDS - start))
	execs="$(grep -Eo 'execs: [0-9]+' "$log" | tail -n 1 | awk '{print $2}' || true)"
	if [ "$rc" -eq 0 ]; then
		result=PASS
	else
		result="FAIL (exit $rc)"
	fi
	rel="./${pkg#"$module"}"
	rel="${rel/#.\/\//./}"
	summary+=("$(printf '%-24s %-16s %6ss  execs %-11s %s' "$name" "$rel" "$took" "${execs:-?}" "$result")")
	if [ "$rc" -ne 0 ]; then
		print_summary
		echo "== $name failed; reproduce with: go test -run='^${name}\$' $pkg" >&2
		exit "$rc"
	fi
done
summary+=("total: ${#targets[@]} targets in $((SECONDS - total_start))s")
print_summary

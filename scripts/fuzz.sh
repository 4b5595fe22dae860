#!/usr/bin/env bash
# Runs Go fuzz targets one at a time: scripts/fuzz.sh TIME MINIMIZETIME
# PACKAGE:FuzzName... A target fails when its run fails with a failing
# input written to PACKAGE/testdata/fuzz/FuzzName/. Go 1.26's coordinator
# may also end a clean run with a bare "context deadline exceeded" at the
# -fuzztime deadline (golang/go#75804, fixed in Go 1.27): that one is
# reported and passes.
set -uo pipefail
cd "$(dirname "$0")/.."
time=$1 minimize=$2
shift 2
failed=()
for t in "$@"; do
	pkg=${t%%:*} fn=${t##*:}
	corpus=$pkg/testdata/fuzz/$fn
	before=$(ls "$corpus" 2>/dev/null | sort)
	echo "fuzz $fn in ./$pkg for $time"
	log=$(mktemp)
	${GO:-go} test -ldflags=-extldflags=-Wl,-z,lazy -run '^$' -fuzz "^$fn\$" \
		-fuzztime "$time" -fuzzminimizetime "$minimize" "./$pkg" 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	after=$(ls "$corpus" 2>/dev/null | sort)
	if [ "$rc" -ne 0 ]; then
		if [ "$before" == "$after" ] && grep -q '^    context deadline exceeded$' "$log" && ! grep -q 'Failing input' "$log"; then
			echo "fuzz $fn: no failing input; the run ended on Go's -fuzztime race (golang/go#75804)"
		else
			failed+=("$fn")
		fi
	fi
	rm -f "$log"
done
if [ ${#failed[@]} -gt 0 ]; then
	echo "fuzz: failed: ${failed[*]}"
	exit 1
fi

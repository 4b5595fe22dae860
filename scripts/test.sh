#!/usr/bin/env bash
# Runs every test of lego: installs what is missing (Go, make, containerd,
# runc, debootstrap), starts containerd on a private socket with its root
# and state in a temporary directory and a one-machine Buildbarn (the REAPI
# execution service, built from the Go module proxy once per machine),
# runs `make test` against them, and stops them by PID. The tests start
# their own bazel-remote servers (built the same way). Then each fuzz
# target runs for ten seconds (make fuzz-short).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh

. scripts/containerd.sh
export LEGO_TEST_CONTAINERD="$LEGO_CONTAINERD"
. scripts/buildbarn.sh

make test
make fuzz-short

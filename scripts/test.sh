#!/usr/bin/env bash
# Runs every test of lego: installs what is missing (Go, make, containerd,
# runc, debootstrap), starts containerd on a private socket with its root
# and state in a temporary directory, runs `make test` against it, and
# stops it by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh

. scripts/containerd.sh
export LEGO_TEST_CONTAINERD="$LEGO_CONTAINERD"

make test

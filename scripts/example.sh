#!/usr/bin/env bash
# The main job: builds lego and the example workspaces, offline (no model
# endpoint; Debian's mirror for the base image), on the embedded defaults:
# examples/basics, then the SWE-Lego example's synthetic task set, whose
# tests run in containerd (started on a private socket, stopped after).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
make build
(cd examples/basics && ../../bin/lego build //... "$@")
. scripts/containerd.sh
cd examples/swe-lego
../../bin/lego build //tasks:synthetic --containerd_address="$LEGO_CONTAINERD" "$@"
echo "tasks: examples/swe-lego/lego-out/tasks/synthetic/tasks.jsonl ($(wc -l < lego-out/tasks/synthetic/tasks.jsonl) validated), report.json beside it"

#!/usr/bin/env bash
# The main job: builds lego and the example workspaces, offline (no model
# endpoint; Debian's mirror for the base image), on the embedded defaults:
# examples/basics, then the SWE-Lego example's synthetic and real task
# sets, whose tests run in containerd (started on a private socket,
# stopped after).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
make build
(cd examples/basics && ../../bin/lego build //... "$@")
. scripts/containerd.sh
cd examples/swe-lego
../../bin/lego build //tasks:synthetic //tasks:real --containerd_address="$LEGO_CONTAINERD" "$@"
for set in synthetic real; do
  echo "tasks: examples/swe-lego/lego-out/tasks/$set/tasks.jsonl ($(wc -l < lego-out/tasks/$set/tasks.jsonl) validated), report.json beside it"
done

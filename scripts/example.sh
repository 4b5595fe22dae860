#!/usr/bin/env bash
# The main job: builds lego and the example workspace, offline, on the
# embedded defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
make build
cd examples/basics
../../bin/lego build //... "$@"
